"""A small world of scenes: coloured shapes at positions, rendered as images and described in words.

A scene holds one to three objects, each a ``Thing`` (shape, colour, size) at a position. A
``Caption`` names one thing ("a small red circle") or two things and a spatial relation
("a small red circle left of a large blue square"). Because the relation is strict, swapping the
two things, or their colours, turns a true caption into a false one with exactly the same bag of
words: the test a bag-of-words encoder cannot pass and an order-aware one can.

Everything is generated from a seed with Python's ``random.Random`` and rendered with plain torch
on the CPU, so the same seed gives the same scenes, captions and pixels on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import positive_int
from .text import encode_words

COLORS: dict[str, tuple[float, float, float]] = {  # name -> RGB in [0, 1]
    "red": (0.90, 0.15, 0.15),
    "green": (0.15, 0.75, 0.25),
    "blue": (0.20, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.15),
    "purple": (0.65, 0.25, 0.85),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: dict[str, float] = {"small": 4.0, "large": 7.0}  # radius in pixels of a 32 x 32 image
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
OPPOSITE: dict[str, str] = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
MARGIN = 0.12  # a relation holds only if the centres differ by more than this (fraction of the image)
BACKGROUND = 0.05
# The placement rule (random_scene, and scene_pairs.sample_scenes for many scenes at once):
BORDER = 0.02  # a thing's edge stays this far inside the image
GAP = 1.5 / 32  # two things never overlap: 1.5 pixels to spare between their edges
SEPARATION = MARGIN + 0.02  # every pair is this far apart along some axis, so some relation holds

PAD = "<pad>"
# The whole language of the captions; id 0 is padding.
VOCAB: tuple[str, ...] = (PAD, "a", *SIZES, *COLORS, *SHAPES, "left", "right", "of", "above", "below")
WORD_TO_ID: dict[str, int] = {word: i for i, word in enumerate(VOCAB)}


@dataclass(frozen=True)
class Thing:
    """What an object is, without where: ``Thing("circle", "red", "small")``; an unknown shape, colour or size
    raises ``ValueError``."""

    shape: str
    color: str
    size: str

    def __post_init__(self) -> None:
        for field, value, allowed in (("shape", self.shape, SHAPES), ("color", self.color, tuple(COLORS)),
                                      ("size", self.size, tuple(SIZES))):
            if value not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {value!r}")

    @property
    def text(self) -> str:
        return f"a {self.size} {self.color} {self.shape}"


@dataclass(frozen=True)
class SceneObject:
    """A thing at a position; ``x`` grows to the right and ``y`` downwards, both in [0, 1]."""

    thing: Thing
    x: float
    y: float


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def find(self, thing: Thing) -> SceneObject | None:
        """The object that is ``thing``, if the scene has one (things are unique within a scene)."""
        return next((o for o in self.objects if o.thing == thing), None)


def relation_holds(a: SceneObject, relation: str, b: SceneObject, margin: float = MARGIN) -> bool:
    """Whether ``a <relation> b`` holds, e.g. ``a`` is left of ``b`` by more than ``margin``; an unknown relation
    raises ``ValueError``."""
    if relation not in OPPOSITE:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    gap = {"left of": b.x - a.x, "right of": a.x - b.x, "above": b.y - a.y, "below": a.y - b.y}[relation]
    return gap > margin


@dataclass(frozen=True)
class Caption:
    """``subject`` alone, or ``subject relation obj``: "a small red circle left of a large blue square". A relation
    without an object (or the reverse), or an unknown relation, raises ``ValueError``."""

    subject: Thing
    relation: str | None = None
    obj: Thing | None = None

    def __post_init__(self) -> None:
        if (self.relation is None) != (self.obj is None):
            raise ValueError("a caption has both a relation and an object, or neither")
        if self.relation is not None and self.relation not in OPPOSITE:
            raise ValueError(f"relation must be one of {RELATIONS}, got {self.relation!r}")

    @property
    def text(self) -> str:
        if self.relation is None:
            return self.subject.text
        return f"{self.subject.text} {self.relation} {self.obj.text}"

    def holds(self, scene: Scene) -> bool:
        """True if the scene contains the subject (and the object, in that relation)."""
        a = scene.find(self.subject)
        if a is None or self.relation is None:
            return a is not None
        b = scene.find(self.obj)
        return b is not None and b is not a and relation_holds(a, self.relation, b)


def radius(size: str) -> float:
    """A thing's radius as a fraction of the image: ``SIZES[size] / 32``."""
    return SIZES[size] / 32


def position_bounds(r: float | np.ndarray) -> tuple[float | np.ndarray, float | np.ndarray]:
    r"""Where the centre of a thing of radius ``r`` may lie (along x and along y): $[r + b,\ 1 - b - r]$,
    $b$ = ``BORDER``; for one radius or an array of them."""
    return r + BORDER, 1 - BORDER - r


def apart(dx: float | np.ndarray, dy: float | np.ndarray, r_a: float | np.ndarray,
          r_b: float | np.ndarray) -> bool | np.ndarray:
    r"""The placement rule for two things of radii ``r_a``, ``r_b`` whose centres differ by ``|dx|``, ``|dy|``:
    they do not overlap, $\sqrt{dx^2 + dy^2} > r_a + r_b + \mathrm{GAP}$, and they are apart along some axis,
    $\max(|dx|, |dy|) > \mathrm{SEPARATION}$. Elementwise on NumPy arrays."""
    dx, dy = np.abs(dx), np.abs(dy)
    return (np.sqrt(dx * dx + dy * dy) > r_a + r_b + GAP) & (np.maximum(dx, dy) > SEPARATION)


def random_scene(rng: random.Random, n_objects: int) -> Scene:
    """One scene of ``n_objects`` things with distinct (colour, shape), placed by the placement rule
    (:func:`apart`, :func:`position_bounds`). ``n_objects`` outside 1..3 raises ``ValueError``."""
    if not 1 <= n_objects <= 3:
        raise ValueError(f"n_objects must be 1, 2 or 3, got {n_objects}")
    kinds = rng.sample([(c, s) for c in COLORS for s in SHAPES], n_objects)
    things = [Thing(shape, color, rng.choice(tuple(SIZES))) for color, shape in kinds]
    while True:  # place one thing at a time, each where it is apart from those already placed
        placed: list[SceneObject] = []
        for thing in things:
            lo, hi = position_bounds(radius(thing.size))
            for _ in range(100):  # rejection sampling for this thing alone
                candidate = SceneObject(thing, rng.uniform(lo, hi), rng.uniform(lo, hi))
                if all(_apart(candidate, other) for other in placed):
                    placed.append(candidate)
                    break
            else:  # boxed in by the earlier things (rare): start the scene again
                break
        if len(placed) == len(things):
            return Scene(tuple(placed))


def _apart(a: SceneObject, b: SceneObject) -> bool:
    return bool(apart(a.x - b.x, a.y - b.y, radius(a.thing.size), radius(b.thing.size)))


def describe(scene: Scene, rng: random.Random) -> Caption:
    """A true caption of the scene: the single thing, or a random pair and a relation that holds."""
    if len(scene.objects) == 1:
        return Caption(scene.objects[0].thing)
    a, b = rng.sample(scene.objects, 2)
    relations = [rel for rel in RELATIONS if relation_holds(a, rel, b)]
    return Caption(a.thing, rng.choice(relations), b.thing)


def hard_negative(caption: Caption, scene: Scene, kind: str, rng: random.Random) -> Caption | None:
    """A false caption that differs from a true one only a little, or ``None`` if none exists.

    kinds: ``"swap"`` exchanges subject and object (same bag of words); ``"colors"`` exchanges their
    colours (same bag of words); ``"relation"`` uses the opposite relation; ``"attribute"`` changes
    one attribute of one thing. The result is checked to be false for ``scene``. An unknown kind raises
    ``ValueError``.
    """
    c = caption
    if kind in ("swap", "colors", "relation") and c.relation is None:
        return None
    if kind == "swap":
        negative = Caption(c.obj, c.relation, c.subject)
    elif kind == "colors":
        negative = Caption(Thing(c.subject.shape, c.obj.color, c.subject.size), c.relation,
                           Thing(c.obj.shape, c.subject.color, c.obj.size))
    elif kind == "relation":
        negative = Caption(c.subject, OPPOSITE[c.relation], c.obj)
    elif kind == "attribute":
        target = rng.choice(["subject", "obj"] if c.relation else ["subject"])
        thing = getattr(c, target)
        field = rng.choice(["shape", "color", "size"])
        options = {"shape": SHAPES, "color": tuple(COLORS), "size": tuple(SIZES)}[field]
        value = rng.choice([v for v in options if v != getattr(thing, field)])
        changed = Thing(**{**thing.__dict__, field: value})
        if target == "subject":
            negative = Caption(changed, c.relation, c.obj)
        else:
            negative = Caption(c.subject, c.relation, changed)
    else:
        raise ValueError(f"kind must be 'swap', 'colors', 'relation' or 'attribute', got {kind!r}")
    if negative == caption or negative.holds(scene):
        return None
    return negative


def make_scenes(n: int, seed: int, min_objects: int = 1, max_objects: int = 3) -> tuple[list[Scene], list[Caption]]:
    """``n`` seeded scenes, each with one true caption; a negative ``n`` or object counts outside 1..3 raise
    ``ValueError``."""
    positive_int("n", n, minimum=0)
    if not 1 <= min_objects <= max_objects <= 3:
        raise ValueError(f"need 1 <= min_objects <= max_objects <= 3, got {min_objects}, {max_objects}")
    rng = random.Random(seed)
    scenes = [random_scene(rng, rng.randint(min_objects, max_objects)) for _ in range(n)]
    captions = [describe(scene, rng) for scene in scenes]
    return scenes, captions


def render(scene: Scene, size: int = 32) -> torch.Tensor:
    """The scene as an RGB image ``(3, size, size)`` with values in [0, 1]; ``size`` must be an int >= 8 pixels."""
    positive_int("size", size, minimum=8)
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    py, px = torch.meshgrid(centres, centres, indexing="ij")  # (S, S) pixel centres
    image = torch.full((3, size, size), BACKGROUND)
    for o in scene.objects:
        cx, cy, r = o.x * size, o.y * size, SIZES[o.thing.size] * size / 32
        dx, dy = px - cx, py - cy
        if o.thing.shape == "circle":
            inside = dx**2 + dy**2 <= r**2
        elif o.thing.shape == "square":  # same area as the circle: half-side r * sqrt(pi) / 2
            inside = torch.maximum(dx.abs(), dy.abs()) <= r * 0.886
        else:  # triangle, apex up: from (cx, cy - r) down to a base at cy + 0.8 r of half-width r
            inside = (dy <= 0.8 * r) & (dx.abs() <= (dy + r) / 1.8)
        image[:, inside] = torch.tensor(COLORS[o.thing.color]).unsqueeze(1)
    return image


def render_batch(scenes: Sequence[Scene], size: int = 32) -> torch.Tensor:
    """Images of many scenes: ``(N, 3, size, size)``, equal to stacking :func:`render` of each, computed for all
    scenes at once (one object slot at a time, in the order of the objects, as :func:`render` paints them);
    ``size`` must be an int >= 8 pixels."""
    positive_int("size", size, minimum=8)
    n, slots = len(scenes), max((len(s.objects) for s in scenes), default=0)
    images = torch.full((n, 3, size, size), BACKGROUND)
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    py, px = torch.meshgrid(centres, centres, indexing="ij")  # (S, S) pixel centres
    shape_ids = {shape: k for k, shape in enumerate(SHAPES)}
    for j in range(slots):  # the j-th object of every scene that has one
        rows = [i for i, s in enumerate(scenes) if len(s.objects) > j]
        objects = [scenes[i].objects[j] for i in rows]
        # The scalars render() combines in Python (float64), rounded to float32 as torch rounds a Python number.
        r = [SIZES[o.thing.size] * size / 32 for o in objects]
        cx = torch.tensor([o.x * size for o in objects]).float()[:, None, None]  # (m, 1, 1)
        cy = torch.tensor([o.y * size for o in objects]).float()[:, None, None]
        r2, r_sq, r_tri = (torch.tensor(v).float()[:, None, None] for v in
                           ([x**2 for x in r], [x * 0.886 for x in r], [0.8 * x for x in r]))
        r32 = torch.tensor(r).float()[:, None, None]
        dx, dy = px - cx, py - cy  # (m, S, S)
        kind = torch.tensor([shape_ids[o.thing.shape] for o in objects])[:, None, None]
        inside = torch.where(kind == shape_ids["circle"], dx**2 + dy**2 <= r2,
                             torch.where(kind == shape_ids["square"], torch.maximum(dx.abs(), dy.abs()) <= r_sq,
                                         (dy <= r_tri) & (dx.abs() <= (dy + r32) / 1.8)))  # (m, S, S)
        colour = torch.tensor([COLORS[o.thing.color] for o in objects])[:, :, None, None]  # (m, 3, 1, 1)
        idx = torch.tensor(rows, dtype=torch.long)
        images[idx] = torch.where(inside[:, None], colour, images[idx])
    return images


def encode(texts: Sequence[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption texts to padded word ids ``(N, T)`` (id 0 pads the end) and their lengths ``(N,)``
    (:func:`mmtutor.data.text.encode_words` with the scene vocabulary ``VOCAB``, which raises on unknown words)."""
    return encode_words(texts, VOCAB, max_len, "scene")
