"""Image-caption pairs from the scenes world (:mod:`mmtutor.data.scenes`), ready for chapter 7.

* :func:`sample_scenes`: scenes like :func:`mmtutor.data.scenes.make_scenes` (same things, same
  rules for placing them, one true caption each), much faster: all scenes are placed at once with
  NumPy;
* :func:`training_pairs`: scenes with several true captions each and, for every caption, a hard
  negative (a near-copy that is false for the scene), for training with
  :func:`mmtutor.alignment.clip_loss_with_negatives`;
* :func:`distinct_gallery`: held-out scenes in which every caption is true of its own scene and of
  no other, so "did the search return *the* right image" has one answer. In a plain random gallery
  it often has several: of 500 random two- or three-object scenes, a caption is true of about two of
  them on average (two objects and a relation are not rare), and recall@1 could not reach 1;
* :func:`hard_negative_pairs`: for each held-out scene, its caption and one hard negative of a kind;
* :func:`holds_matrix` (with :func:`scene_table`, :func:`caption_table` and their mirror images): which captions
  are true of which scenes, for a whole batch at once, as tensors: the several true pairs of a batch
  (:func:`mmtutor.alignment.clip_loss` with ``positives``) and of a gallery.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import bool_mask, has_shape, instance, positive_int
from .scenes import (
    COLORS,
    MARGIN,
    RELATIONS,
    SHAPES,
    SIZES,
    Caption,
    Scene,
    SceneObject,
    Thing,
    apart,
    describe,
    hard_negative,
    position_bounds,
    radius,
)

KINDS: tuple[str, ...] = ("swap", "colors", "relation", "attribute")


def sample_scenes(n: int, seed: int, min_objects: int = 1, max_objects: int = 3) -> tuple[list[Scene], list[Caption]]:
    """``n`` seeded scenes and one true caption each, drawn by vectorised rejection sampling.

    As in ``make_scenes``: a uniform number of objects in ``[min_objects, max_objects]``, distinct
    (colour, shape) kinds, uniform sizes, and the scenes' placement rule (:func:`~mmtutor.data.scenes.apart`,
    :func:`~mmtutor.data.scenes.position_bounds`); each thing is placed uniformly where it fits among
    those placed before it (100 tries, else the scene starts again). A negative ``n`` or object counts outside
    1..3 raise ``ValueError``.
    """
    positive_int("n", n, minimum=0)
    if not 1 <= min_objects <= max_objects <= 3:
        raise ValueError(f"need 1 <= min_objects <= max_objects <= 3, got {min_objects}, {max_objects}")
    gen = np.random.default_rng(seed)
    kinds = [(c, s) for c in COLORS for s in SHAPES]
    size_names = tuple(SIZES)
    counts = gen.integers(min_objects, max_objects + 1, size=n)  # (n,)
    chosen = gen.random((n, len(kinds))).argsort(axis=1)[:, :3]  # (n, 3) distinct kinds
    sizes = gen.integers(0, len(size_names), size=(n, 3))  # (n, 3)
    r = np.array([radius(name) for name in size_names])[sizes]  # (n, 3) radii, fraction of the image
    xy = np.zeros((n, 3, 2))
    todo = np.arange(n)
    while len(todo):  # place the things one at a time, as make_scenes does, for all scenes at once
        failed = np.zeros(len(todo), dtype=bool)
        for j in range(3):
            rows = np.flatnonzero(~failed & (counts[todo] > j))  # scenes still being placed with a j-th thing
            idx = todo[rows]
            lo, hi = position_bounds(r[idx, j])  # (m,), (m,)
            cand = lo[:, None, None] + gen.random((len(idx), 100, 2)) * (hi - lo)[:, None, None]  # (m, 100, 2)
            ok = np.ones((len(idx), 100), dtype=bool)
            for i in range(j):  # apart from every thing already placed
                d = cand - xy[idx, i][:, None, :]  # (m, 100, 2)
                ok &= apart(d[..., 0], d[..., 1], r[idx, i][:, None], r[idx, j][:, None])
            found = ok.any(axis=1)
            xy[idx[found], j] = cand[found, ok[found].argmax(axis=1)]
            failed[rows[~found]] = True  # boxed in by the earlier things: start the scene again
        todo = todo[failed]
    things = {(j, z): Thing(kinds[j][1], kinds[j][0], size_names[z]) for j in range(len(kinds)) for z in range(2)}
    scenes = [Scene(tuple(SceneObject(things[int(chosen[i, j]), int(sizes[i, j])], float(xy[i, j, 0]),
                                      float(xy[i, j, 1])) for j in range(k))) for i, k in enumerate(counts)]
    rng = random.Random(seed)
    return scenes, [describe(scene, rng) for scene in scenes]


@dataclass
class ScenePairs:
    scenes: list[Scene]
    captions: list[list[Caption]]  # captions[i][k]: the k-th true caption of scene i
    negatives: list[list[Caption]]  # negatives[i][k]: a hard negative of captions[i][k], false for scene i


def any_hard_negative(caption: Caption, scene: Scene, rng: random.Random,
                      kinds: Sequence[str] = KINDS) -> Caption:
    """A hard negative of a kind drawn at random among those that exist for this caption. Kinds outside ``KINDS``
    raise ``ValueError``; a caption without any hard negative ``RuntimeError``."""
    unknown = set(kinds) - set(KINDS)
    if not kinds or unknown:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds!r}")
    for _ in range(20):  # "attribute" always exists but may, rarely, describe another object of the scene
        for kind in rng.sample(list(kinds), len(kinds)):
            negative = hard_negative(caption, scene, kind, rng)
            if negative is not None:
                return negative
    raise RuntimeError(f"found no hard negative of kinds {kinds} for {caption.text!r}")


def training_pairs(n: int, seed: int, captions_per_scene: int = 4, min_objects: int = 1,
                   max_objects: int = 3) -> ScenePairs:
    """``n`` seeded scenes, ``captions_per_scene`` true captions of each (drawn with ``describe``,
    repeats possible) and one hard negative per caption; ``captions_per_scene`` must be a positive int."""
    positive_int("captions_per_scene", captions_per_scene)
    scenes, first = sample_scenes(n, seed, min_objects, max_objects)
    rng = random.Random(seed + 1)
    captions = [[c] + [describe(s, rng) for _ in range(captions_per_scene - 1)]
                for s, c in zip(scenes, first, strict=True)]
    negatives = [[any_hard_negative(c, s, rng) for c in cs] for s, cs in zip(scenes, captions, strict=True)]
    return ScenePairs(scenes, captions, negatives)


def distinct_gallery(n: int, seed: int, min_objects: int = 2,
                     max_objects: int = 3) -> tuple[list[Scene], list[Caption]]:
    """``n`` seeded scenes and one caption each, such that caption ``i`` is true of scene ``i`` only.

    Scenes are drawn in order and a scene is kept only if its caption is false for every scene kept
    so far and no caption kept so far is true of it. Two or more objects by default: a one-object
    caption ("a small red circle") is true of every scene that has that thing. ``n`` must be a positive int.
    """
    positive_int("n", n)
    kept_scenes: list[Scene] = []
    kept_captions: list[Caption] = []
    scenes_with: dict[Thing, list[Scene]] = {}  # thing -> kept scenes that contain it
    captions_about: dict[Thing, list[Caption]] = {}  # thing -> kept captions whose subject it is
    batch = 0
    while len(kept_scenes) < n:
        if batch > 50:
            raise RuntimeError(f"could not find {n} scenes with distinct captions; ask for fewer")
        scenes, captions = sample_scenes(2 * n, seed * 1000 + batch, min_objects, max_objects)
        batch += 1
        for s, c in zip(scenes, captions, strict=True):
            if len(kept_scenes) == n:
                break
            things = [o.thing for o in s.objects]
            if any(c.holds(other) for other in scenes_with.get(c.subject, ())) or any(
                    k.holds(s) for t in things for k in captions_about.get(t, ())):
                continue
            kept_scenes.append(s)
            kept_captions.append(c)
            for t in things:
                scenes_with.setdefault(t, []).append(s)
            captions_about.setdefault(c.subject, []).append(c)
    return kept_scenes, kept_captions


def hard_negative_pairs(scenes: Sequence[Scene], captions: Sequence[Caption], kind: str, seed: int
                        ) -> tuple[list[int], list[Caption], list[Caption]]:
    """For each scene whose caption has a hard negative of ``kind``: ``(indices, positives, negatives)``. An
    unknown kind, or not one caption per scene, raises ``ValueError``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if len(scenes) != len(captions):
        raise ValueError(f"need one caption per scene, got {len(scenes)} scenes and {len(captions)} captions")
    rng = random.Random(seed)
    indices, positives, negatives = [], [], []
    for i, (s, c) in enumerate(zip(scenes, captions, strict=True)):
        negative = hard_negative(c, s, kind, rng)
        if negative is not None:
            indices.append(i)
            positives.append(c)
            negatives.append(negative)
    return indices, positives, negatives


# ------------------------------------------------------------------- which captions hold, as tensors

THINGS: tuple[Thing, ...] = tuple(Thing(shape, color, size) for color in COLORS for shape in SHAPES for size in SIZES)
_THING_ID: dict[Thing, int] = {thing: i for i, thing in enumerate(THINGS)}
_MIRROR = torch.tensor([RELATIONS.index("right of"), RELATIONS.index("left of"), RELATIONS.index("above"),
                        RELATIONS.index("below")])  # relation id -> its mirror image's id


def scene_table(scenes: Sequence[Scene]) -> torch.Tensor:
    """Scenes as a tensor ``(N, len(THINGS), 3)`` float64: for each thing of :data:`THINGS`, ``[present, x, y]``
    (zeros where absent). Anything but scenes raises ``TypeError``."""
    table = torch.zeros(len(scenes), len(THINGS), 3, dtype=torch.float64)
    for i, scene in enumerate(scenes):
        for o in instance("scenes[i]", scene, Scene).objects:
            table[i, _THING_ID[o.thing]] = torch.tensor([1.0, o.x, o.y], dtype=torch.float64)
    return table


def caption_table(captions: Sequence[Caption]) -> torch.Tensor:
    """Captions as a tensor ``(M, 3)`` long: ``[subject, relation, object]``, things as indices into
    :data:`THINGS`, the relation as an index into ``RELATIONS``; ``-1`` for the relation and object of a
    one-thing caption. Anything but captions raises ``TypeError``."""
    rows = [(_THING_ID[c.subject], -1, -1) if instance("captions[j]", c, Caption).relation is None
            else (_THING_ID[c.subject], RELATIONS.index(c.relation), _THING_ID[c.obj]) for c in captions]
    return torch.tensor(rows, dtype=torch.long).reshape(len(rows), 3)


def mirror_scene_table(table: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """The scenes with ``where (N,)`` True mirrored left to right (``x -> 1 - x``), as ``image.flip(-1)`` mirrors
    their pictures; a table or mask of the wrong shape raises ``ValueError`` / ``TypeError``."""
    has_shape("table", table, "(N, K, 3)", K=len(THINGS))
    flip = bool_mask("where", where, table.device)[:, None]  # (N, 1)
    x = torch.where(flip, 1.0 - table[..., 1], table[..., 1])  # (N, K)
    return torch.stack([table[..., 0], x, table[..., 2]], dim=-1)


def mirror_caption_table(table: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """The captions with ``where (M,)`` True mirrored: "left of" and "right of" exchanged; a table or mask of the
    wrong shape raises ``ValueError`` / ``TypeError``."""
    has_shape("table", table, "(M, 3)")
    flip = bool_mask("where", where, table.device)
    relation = table[:, 1]
    mirrored = torch.where(relation >= 0, _MIRROR.to(table.device)[relation.clamp(min=0)], relation)
    return torch.stack([table[:, 0], torch.where(flip, mirrored, relation), table[:, 2]], dim=1)


def holds_matrix(scenes: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
    r"""``(N, M)`` bool: entry ``(i, j)`` says whether caption ``j`` is true of scene ``i``, as
    :meth:`~mmtutor.data.scenes.Caption.holds` decides, for tables made by :func:`scene_table` and
    :func:`caption_table`. The subject must be present and, for a relation, the object too, another thing, with
    the relation's gap above ``MARGIN`` (left of: $x_b - x_a$; right of: $x_a - x_b$; above: $y_b - y_a$;
    below: $y_a - y_b$). Tables of the wrong shape raise ``ValueError``.
    """
    has_shape("scenes", scenes, "(N, K, 3)", K=len(THINGS))
    has_shape("captions", captions, "(M, 3)")
    subject, relation, obj = captions.to(scenes.device).unbind(dim=1)  # (M,) each
    a = scenes[:, subject]  # (N, M, 3): [present, x, y] of each caption's subject in each scene
    b = scenes[:, obj.clamp(min=0)]  # (N, M, 3): the object's (any thing, for one-thing captions)
    gx, gy = b[..., 1] - a[..., 1], b[..., 2] - a[..., 2]  # (N, M)
    gaps = torch.stack([gx, -gx, gy, -gy], dim=-1)  # (N, M, 4): the gap of each relation, in RELATIONS' order
    gap = gaps.gather(-1, relation.clamp(min=0).expand(len(scenes), -1)[..., None])[..., 0]  # (N, M)
    related = (b[..., 0] > 0) & (obj != subject) & (gap > MARGIN)
    return (a[..., 0] > 0) & ((relation < 0) | related)
