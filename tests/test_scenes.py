"""The scenes generator: deterministic, captions true, hard negatives false with the same words.

covers: mmtutor.data.scenes (and mmtutor.data.text.encode_words through scenes.encode)
"""

import random

import numpy as np
import pytest
import torch

from mmtutor.data.scenes import (
    COLORS,
    VOCAB,
    Caption,
    Thing,
    apart,
    encode,
    hard_negative,
    make_scenes,
    position_bounds,
    radius,
    random_scene,
    relation_holds,
    render,
    render_batch,
)


def test_same_seed_same_scenes_captions_and_pixels():
    a_scenes, a_caps = make_scenes(20, seed=7)
    b_scenes, b_caps = make_scenes(20, seed=7)
    assert a_scenes == b_scenes and a_caps == b_caps
    assert torch.equal(render_batch(a_scenes), render_batch(b_scenes))
    assert make_scenes(20, seed=8)[0] != a_scenes


def test_captions_hold_and_describe_the_scene():
    scenes, captions = make_scenes(300, seed=0)
    assert all(c.holds(s) for s, c in zip(scenes, captions, strict=True))
    counts = {n: sum(len(s.objects) == n for s in scenes) for n in (1, 2, 3)}
    assert all(v > 50 for v in counts.values())
    for scene, caption in zip(scenes, captions, strict=True):
        assert (caption.relation is None) == (len(scene.objects) == 1)


@pytest.mark.parametrize("kind", ["swap", "colors", "relation", "attribute"])
def test_hard_negatives_are_false(kind):
    scenes, captions = make_scenes(200, seed=1, min_objects=2)
    rng = random.Random(0)
    made = 0
    for scene, caption in zip(scenes, captions, strict=True):
        negative = hard_negative(caption, scene, kind, rng)
        if negative is None:
            continue
        made += 1
        assert not negative.holds(scene) and negative != caption
        if kind in ("swap", "colors"):
            assert sorted(negative.text.split()) == sorted(caption.text.split())
    assert made > 100


def test_relations_are_strict_and_opposite():
    scene = random_scene(random.Random(3), 2)
    a, b = scene.objects
    for relation, opposite in (("left of", "right of"), ("above", "below")):
        assert not (relation_holds(a, relation, b) and relation_holds(a, opposite, b))
        assert relation_holds(a, relation, b) == relation_holds(b, opposite, a)


def test_render_draws_each_object_in_its_colour():
    scenes, _ = make_scenes(30, seed=2)
    for scene in scenes:
        image = render(scene)
        assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
        for obj in scene.objects:
            x, y = int(obj.x * 32), int(obj.y * 32)
            rgb = torch.tensor(COLORS[obj.thing.color])
            assert torch.allclose(image[:, y, x], rgb), f"{obj} not drawn at its centre"


def test_encode_pads_and_rejects_unknown_words():
    ids, lengths = encode(["a small red circle", "a large blue square left of a small red circle"])
    assert ids.shape == (2, 10) and lengths.tolist() == [4, 10]
    assert ids[0, 4:].eq(0).all() and VOCAB[ids[1, 4]] == "left"
    with pytest.raises(ValueError, match="vocabulary"):
        encode(["a pink circle"])
    with pytest.raises(ValueError, match="max_len"):
        encode(["a small red circle"], max_len=3)


def test_bad_things_and_captions():
    with pytest.raises(ValueError, match="color"):
        Thing("circle", "pink", "small")
    with pytest.raises(ValueError, match="relation"):
        Caption(Thing("circle", "red", "small"), "near", Thing("square", "blue", "large"))
    with pytest.raises(ValueError, match="both"):
        Caption(Thing("circle", "red", "small"), "above")
    with pytest.raises(ValueError, match="n_objects"):
        random_scene(random.Random(0), 4)


def test_one_placement_rule_for_one_scene_and_for_arrays_of_them():
    scenes, _ = make_scenes(200, seed=7)
    pairs = [(a, b) for s in scenes for i, a in enumerate(s.objects) for b in s.objects[i + 1:]]
    assert all(apart(a.x - b.x, a.y - b.y, radius(a.thing.size), radius(b.thing.size)) for a, b in pairs)
    for s in scenes:
        for o in s.objects:
            lo, hi = position_bounds(radius(o.thing.size))
            assert lo <= o.x <= hi and lo <= o.y <= hi
    g = np.random.default_rng(0)
    dx, dy, r = g.uniform(-0.5, 0.5, 1000), g.uniform(-0.5, 0.5, 1000), g.choice([4 / 32, 7 / 32], 1000)
    together = apart(dx, dy, r, r[::-1])  # elementwise on arrays, as scene_pairs.sample_scenes uses it
    assert together.tolist() == [bool(apart(*v)) for v in zip(dx, dy, r, r[::-1], strict=True)]
    assert 0 < together.mean() < 1
    assert apart(0.0, 0.5, 0.1, 0.1) and not apart(0.1, 0.1, 0.05, 0.05)  # far apart; too close along both axes
