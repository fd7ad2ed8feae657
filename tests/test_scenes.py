"""The scenes generator: deterministic, captions true, hard negatives false with the same words.

covers: mmtutor.data.scenes (and mmtutor.data.text.encode_words through scenes.encode), mmtutor.data.scene_pairs
"""

import random

import numpy as np
import pytest
import torch

from mmtutor.data import scene_pairs
from mmtutor.data.scenes import (
    COLORS,
    SIZES,
    VOCAB,
    Caption,
    Scene,
    SceneObject,
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


# ------------------------------------------------------------------------------ scene_pairs


def test_scenes_are_seeded_and_their_captions_and_hard_negatives_hold_or_fail() -> None:
    s1, c1 = make_scenes(40, seed=5, min_objects=2)
    s2, c2 = make_scenes(40, seed=5, min_objects=2)
    assert s1 == s2 and c1 == c2
    assert all(c.holds(s) for s, c in zip(s1, c1, strict=True))
    rng = random.Random(0)
    for s, c in zip(s1, c1, strict=True):
        for kind in ("swap", "colors", "relation", "attribute"):
            negative = hard_negative(c, s, kind, rng)
            assert negative is None or not negative.holds(s)


def test_sampled_scenes_follow_the_placement_rules_and_are_seeded() -> None:
    s1, c1 = scene_pairs.sample_scenes(300, seed=4)
    s2, c2 = scene_pairs.sample_scenes(300, seed=4)
    assert s1 == s2 and c1 == c2
    assert {len(s.objects) for s in s1} == {1, 2, 3}
    for s, c in zip(s1, c1, strict=True):
        assert c.holds(s)
        assert all(apart(a.x - b.x, a.y - b.y, radius(a.thing.size), radius(b.thing.size))
                   for i, a in enumerate(s.objects) for b in s.objects[i + 1:])
        assert len({(o.thing.color, o.thing.shape) for o in s.objects}) == len(s.objects)
        assert all(SIZES[o.thing.size] / 32 + 0.02 <= min(o.x, o.y) for o in s.objects)
        assert all(max(o.x, o.y) <= 0.98 - SIZES[o.thing.size] / 32 for o in s.objects)


def test_training_pairs_have_true_captions_and_false_hard_negatives() -> None:
    pairs = scene_pairs.training_pairs(60, seed=0, captions_per_scene=3)
    assert len(pairs.scenes) == 60 and all(len(cs) == 3 for cs in pairs.captions)
    for s, cs, ns in zip(pairs.scenes, pairs.captions, pairs.negatives, strict=True):
        assert all(c.holds(s) for c in cs) and not any(n.holds(s) for n in ns)
    with pytest.raises(ValueError, match="captions_per_scene"):
        scene_pairs.training_pairs(5, seed=0, captions_per_scene=0)


def test_in_a_distinct_gallery_each_caption_is_true_of_its_own_scene_only() -> None:
    gallery, captions = scene_pairs.distinct_gallery(120, seed=3)
    assert len(gallery) == 120
    for i, c in enumerate(captions):
        assert [j for j, s in enumerate(gallery) if c.holds(s)] == [i]
    idx, pos, neg = scene_pairs.hard_negative_pairs(gallery, captions, "swap", seed=0)
    assert len(idx) == len(pos) == len(neg) > 0
    assert all(p == captions[i] and not n.holds(gallery[i]) for i, p, n in zip(idx, pos, neg, strict=True))
    assert sorted(neg[0].text.split()) == sorted(pos[0].text.split())  # a swap keeps the bag of words


def mirrored(scene: Scene, caption: Caption) -> tuple[Scene, Caption]:
    flip = {"left of": "right of", "right of": "left of"}
    objects = tuple(SceneObject(o.thing, 1.0 - o.x, o.y) for o in scene.objects)
    return Scene(objects), Caption(caption.subject, flip.get(caption.relation, caption.relation), caption.obj)


def test_holds_matrix_agrees_with_caption_holds_also_mirrored() -> None:
    pairs = scene_pairs.training_pairs(80, seed=6, captions_per_scene=2)
    texts = [c for cs in pairs.captions for c in cs] + [n for ns in pairs.negatives for n in ns]
    red, blue = Thing("circle", "red", "small"), Thing("square", "blue", "large")
    texts += [Caption(red, "left of", red), Caption(red), Caption(blue, "above", red)]  # an object equal to the subject
    scenes_t, captions_t = scene_pairs.scene_table(pairs.scenes), scene_pairs.caption_table(texts)
    direct = torch.tensor([[c.holds(s) for c in texts] for s in pairs.scenes])
    assert torch.equal(scene_pairs.holds_matrix(scenes_t, captions_t), direct)
    assert direct.sum() > len(pairs.scenes) * 2  # each scene's own captions, and some of the others'
    g = torch.Generator().manual_seed(0)
    flip_s = torch.rand(len(pairs.scenes), generator=g) < 0.5
    flip_c = torch.rand(len(texts), generator=g) < 0.5
    expected = torch.tensor([[(mirrored(s, c)[1] if fc else c).holds(mirrored(s, c)[0] if fs else s)
                              for c, fc in zip(texts, flip_c.tolist(), strict=True)]
                             for s, fs in zip(pairs.scenes, flip_s.tolist(), strict=True)])
    got = scene_pairs.holds_matrix(scene_pairs.mirror_scene_table(scenes_t, flip_s),
                                   scene_pairs.mirror_caption_table(captions_t, flip_c))
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match="table"):
        scene_pairs.mirror_scene_table(scenes_t[:, :5], flip_s)
    with pytest.raises(TypeError, match="Caption"):
        scene_pairs.caption_table(["a small red circle"])


def test_render_batch_is_render_of_each_scene_to_the_bit() -> None:
    scenes, _ = make_scenes(60, seed=2)
    sampled, _ = scene_pairs.sample_scenes(200, seed=8)
    for batch, size in ((scenes, 32), (sampled, 32), (sampled[:7], 16)):
        assert torch.equal(render_batch(batch, size), torch.stack([render(s, size) for s in batch]))
    assert render_batch([]).shape == (0, 3, 32, 32)
