r"""The scenes of :mod:`mmtutor.data.scenes` described in Chinese, and a world whose statistics are not symmetric.

**The Chinese grammar.** A thing is ``一个 <colour> 的 <size> <shape>`` ("a red 的 small circle": the colour comes
before the size, joined by the particle 的); a relation is ``<subject> 在 <object> 的 <side>`` ("the subject is at
the object's left"): the relation word comes *after* the object, where English puts it between the two things::

    a small red circle left of a large blue square
    一个 红色 的 小 圆形 在 一个 蓝色 的 大 方形 的 左边

Words are separated by spaces (the segmentation a Chinese tokenizer would produce), so every caption is a list
of words from :data:`ZH_VOCAB`. :data:`EN_TO_ZH` pairs the English content words with their Chinese ones; the
function words (``a``, ``of``; ``一个``, ``的``, ``在``) have no one-to-one counterpart.

**A skewed world.** In :func:`mmtutor.data.scene_pairs.sample_scenes` every colour goes with every shape equally
often, so no statistic of the captions can tell "red" from "blue": the words are exchangeable. Real languages
describe a world that is not symmetric. :func:`skewed_scenes` redraws each thing's shape from its size and its
colour from its shape by the tables :data:`SHAPE_GIVEN_SIZE` and :data:`COLOR_GIVEN_SHAPE` (mixed with the
uniform choice by ``skew``: 0 is the symmetric world, 1 the tables), keeping every position (so every
relation stays true) and the rule that two things of one scene differ in colour or shape.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from .._checks import number
from .scene_pairs import sample_scenes
from .scenes import COLORS, PAD, SHAPES, Caption, Scene, SceneObject, Thing, describe, encode_words

ZH_COLORS: dict[str, str] = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色"}
ZH_SHAPES: dict[str, str] = {"circle": "圆形", "square": "方形", "triangle": "三角形"}
ZH_SIZES: dict[str, str] = {"small": "小", "large": "大"}
ZH_SIDES: dict[str, str] = {"left of": "左边", "right of": "右边", "above": "上面", "below": "下面"}
ZH_FUNCTION_WORDS: tuple[str, ...] = ("一个", "的", "在")
EN_FUNCTION_WORDS: tuple[str, ...] = ("a", "of")

ZH_VOCAB: tuple[str, ...] = (PAD, *ZH_FUNCTION_WORDS, *ZH_SIZES.values(), *ZH_COLORS.values(), *ZH_SHAPES.values(),
                             *ZH_SIDES.values())
# English content word -> its Chinese translation (the relations by their first word: "left" of "left of")
EN_TO_ZH: dict[str, str] = {**ZH_SIZES, **ZH_COLORS, **ZH_SHAPES,
                            **{side.split()[0]: word for side, word in ZH_SIDES.items()}}

# The skewed world: P(shape | size), then P(colour | shape), in the orders of SHAPES and COLORS.
SHAPE_GIVEN_SIZE: dict[str, tuple[float, ...]] = {"small": (0.7, 0.1, 0.2), "large": (0.1, 0.6, 0.3)}
COLOR_GIVEN_SHAPE: dict[str, tuple[float, ...]] = {
    "circle": (0.55, 0.05, 0.05, 0.30, 0.05),  # red, green, blue, yellow, purple
    "square": (0.05, 0.10, 0.60, 0.05, 0.20),
    "triangle": (0.10, 0.60, 0.05, 0.10, 0.15),
}


def zh_thing(thing: Thing) -> str:
    """``一个 <colour> 的 <size> <shape>``: ``Thing("circle", "red", "small")`` -> ``"一个 红色 的 小 圆形"``."""
    return f"一个 {ZH_COLORS[thing.color]} 的 {ZH_SIZES[thing.size]} {ZH_SHAPES[thing.shape]}"


def zh_caption(caption: Caption) -> str:
    """The Chinese caption: a thing, or ``<subject> 在 <object> 的 <side>``."""
    if not isinstance(caption, Caption):
        raise TypeError(f"caption must be a Caption, got {type(caption).__name__}")
    if caption.relation is None:
        return zh_thing(caption.subject)
    return f"{zh_thing(caption.subject)} 在 {zh_thing(caption.obj)} 的 {ZH_SIDES[caption.relation]}"


def encode_zh(texts: Sequence[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Chinese captions to padded ids in :data:`ZH_VOCAB` ``(N, T)`` (0 pads) and their lengths ``(N,)``."""
    return encode_words(texts, ZH_VOCAB, max_len, "Chinese scene")


def _mix(table: tuple[float, ...], skew: float) -> list[float]:
    return [skew * p + (1 - skew) / len(table) for p in table]


def _redraw(scene: Scene, rng: random.Random, skew: float) -> Scene:
    while True:  # redraw every thing until the kinds (colour, shape) of the scene are distinct again
        objects = []
        for o in scene.objects:
            shape = rng.choices(SHAPES, _mix(SHAPE_GIVEN_SIZE[o.thing.size], skew))[0]
            color = rng.choices(tuple(COLORS), _mix(COLOR_GIVEN_SHAPE[shape], skew))[0]
            objects.append(SceneObject(Thing(shape, color, o.thing.size), o.x, o.y))
        if len({(o.thing.color, o.thing.shape) for o in objects}) == len(objects):
            return Scene(tuple(objects))


def skewed_scenes(n: int, seed: int, skew: float = 1.0) -> tuple[list[Scene], list[Caption]]:
    """``n`` seeded scenes of the skewed world and one true caption each (see the module's docstring).

    Positions and sizes come from ``sample_scenes(n, seed)``; shapes and colours are redrawn from the tables
    mixed with the uniform choice by ``skew`` in [0, 1]; the caption is ``describe`` of the redrawn scene.
    """
    number("skew", skew, 0.0, 1.0)
    base, _ = sample_scenes(n, seed)
    rng = random.Random(seed)
    scenes = [_redraw(s, rng, skew) for s in base]
    return scenes, [describe(s, rng) for s in scenes]


def caption_corpus(n: int, seed: int, language: str, skew: float = 1.0,
                   drop_function_words: bool = True) -> list[list[str]]:
    """The words of one caption of each of ``n`` skewed scenes, in ``"en"`` or ``"zh"``, for chapter 1's skip-gram.

    With ``drop_function_words`` the words without a counterpart in the other language go (``a``, ``of``;
    ``一个``, ``的``, ``在``), so that both corpora speak of the same things with the same number of words.
    """
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    _, captions = skewed_scenes(n, seed, skew)
    drop = set(EN_FUNCTION_WORDS + ZH_FUNCTION_WORDS) if drop_function_words else set()
    texts = (c.text if language == "en" else zh_caption(c) for c in captions)
    return [[w for w in text.split() if w not in drop] for text in texts]

