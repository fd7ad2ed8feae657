"""Chapter 7: the CLIP loss against a direct computation, the alignment metrics, the encoders, the data.

covers: mmtutor.alignment, mmtutor.encoders, mmtutor.data.digits, mmtutor.data.audio, mmtutor.data.scene_pairs
"""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmtutor import multimodal_mapping
from mmtutor.alignment import (
    ContrastiveModel,
    LogitScale,
    clip_loss,
    clip_loss_with_negatives,
    ensemble_prompts,
    evaluate_retrieval,
    hard_negative_accuracy,
    label_recall_at_k,
    modality_gap,
    recall_at_k,
    target_ranks,
    zero_shot_classify,
)
from mmtutor.data import audio, digits, scene_pairs, scenes
from mmtutor.encoders import (
    AudioEncoder,
    AudioEncoderConfig,
    BagOfWordsEncoder,
    ConvImageEncoder,
    ImageEncoderConfig,
    SequenceTextEncoder,
    TextEncoderConfig,
)


def direct_clip_loss(u: torch.Tensor, t: torch.Tensor, s: float) -> torch.Tensor:
    """CLIP's loss written out with loops: -log p(text i | image i) and -log p(image i | text i)."""
    n = u.shape[0]
    u = u / u.norm(dim=1, keepdim=True)
    t = t / t.norm(dim=1, keepdim=True)
    total = u.new_zeros(())
    for i in range(n):
        row = torch.stack([s * (u[i] * t[j]).sum() for j in range(n)])
        col = torch.stack([s * (u[j] * t[i]).sum() for j in range(n)])
        total = total - (row[i] - torch.logsumexp(row, 0)) - (col[i] - torch.logsumexp(col, 0))
    return total / (2 * n)


def random_pairs(n: int = 6, d: int = 5, seed: int = 0, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


# ------------------------------------------------------------------------------------------- clip_loss


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_loss_matches_direct_computation_values_and_gradients(seed: int) -> None:
    u, t = random_pairs(seed=seed)
    u1, t1 = u.clone().requires_grad_(), t.clone().requires_grad_()
    u2, t2 = u.clone().requires_grad_(), t.clone().requires_grad_()
    ours, ref = clip_loss(u1, t1, 7.5), direct_clip_loss(u2, t2, 7.5)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(u1.grad, u2.grad)
    torch.testing.assert_close(t1.grad, t2.grad)


def test_clip_loss_gradcheck_including_the_scale() -> None:
    u, t = random_pairs(n=4, d=3)
    s = torch.tensor(3.0, dtype=torch.float64)
    inputs = tuple(x.clone().requires_grad_() for x in (u, t, s))
    assert torch.autograd.gradcheck(clip_loss, inputs)


def test_clip_loss_is_exactly_log_n_when_all_logits_are_equal() -> None:
    for n in (1, 2, 7, 64):
        same = torch.ones(n, 4)
        assert clip_loss(same, same, 14.3).item() == pytest.approx(math.log(n), abs=1e-6)


def test_clip_loss_is_near_log_n_for_random_pairs_at_low_scale() -> None:
    u, t = random_pairs(n=256, d=64, dtype=torch.float32)
    assert abs(clip_loss(u, t, 1.0).item() - math.log(256)) < 0.05


def test_clip_loss_is_near_zero_for_aligned_well_separated_pairs() -> None:
    e = torch.eye(8)
    assert clip_loss(e, 3 * e, 100.0).item() < 1e-30 + 1e-6
    assert clip_loss(e, e.roll(1, dims=0), 100.0).item() > 50  # every pair mismatched: large


def test_clip_loss_is_symmetric_and_ignores_lengths() -> None:
    u, t = random_pairs()
    torch.testing.assert_close(clip_loss(u, t, 5.0), clip_loss(t, u, 5.0))
    torch.testing.assert_close(clip_loss(u, t, 5.0), clip_loss(3 * u, 0.5 * t, 5.0))
    torch.testing.assert_close(clip_loss(u, t, torch.tensor(5.0, dtype=torch.float64)), clip_loss(u, t, 5.0))


def test_clip_loss_rejects_bad_inputs() -> None:
    u, t = random_pairs()
    with pytest.raises(ValueError, match="same number N"):
        clip_loss(u, t[:4], 1.0)
    with pytest.raises(ValueError, match="same dimension"):
        clip_loss(u, t[:, :3], 1.0)
    with pytest.raises(ValueError, match="> 0"):
        clip_loss(u, t, 0.0)
    with pytest.raises(ValueError, match="> 0"):
        clip_loss(u, t, float("nan"))
    with pytest.raises(TypeError):
        clip_loss(u.long(), t, 1.0)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        clip_loss(u[0], t[0], 1.0)
    with pytest.raises(ValueError, match="scalar"):
        clip_loss(u, t, torch.ones(2))


def test_clip_loss_with_negatives_matches_direct_computation() -> None:
    u, t = random_pairs(n=5, d=4)
    neg, _ = random_pairs(n=5, d=4, seed=9)
    s = 4.0
    un, tn, nn_ = (F.normalize(x, dim=1) for x in (u, t, neg))
    logits = s * un @ torch.cat([tn, nn_]).T  # (5, 10)
    i2t = -(logits.diagonal() - torch.logsumexp(logits, 1)).mean()
    t2i_logits = logits[:, :5].T
    t2i = -(t2i_logits.diagonal() - torch.logsumexp(t2i_logits, 1)).mean()
    torch.testing.assert_close(clip_loss_with_negatives(u, t, neg, s), (i2t + t2i) / 2)
    inputs = tuple(x.clone().requires_grad_() for x in (u, t, neg))
    assert torch.autograd.gradcheck(lambda a, b, c: clip_loss_with_negatives(a, b, c, s), inputs)


def test_far_negatives_change_nothing_and_a_copy_of_the_caption_costs_log_2() -> None:
    u, t = random_pairs(n=5, d=4)
    away = torch.tensor([10.0, 0, 0, 0], dtype=torch.float64)
    u, t = u + away, t + away  # every image and text points roughly along +x; the negatives along -x
    negatives = -away.expand(5, 4)
    torch.testing.assert_close(clip_loss_with_negatives(u, t, negatives, 50.0), clip_loss(u, t, 50.0),
                               rtol=0, atol=1e-9)
    e = torch.eye(4, dtype=torch.float64)  # perfectly aligned; a negative equal to the caption halves p
    assert clip_loss_with_negatives(e, e, e, 100.0).item() == pytest.approx(math.log(2) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="one negative text per image"):
        clip_loss_with_negatives(u, t, t[:3], 1.0)


# ----------------------------------------------------------------------- temperature, model, M(x)


def test_logit_scale_starts_at_one_over_0_07_and_is_clamped_at_100() -> None:
    scale = LogitScale()
    assert scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    scale().backward()
    assert scale.log_scale.grad.item() == pytest.approx(1 / 0.07, rel=1e-5)  # d exp(x)/dx = exp(x)
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    assert scale().item() == pytest.approx(100.0, rel=1e-5)
    with pytest.raises(ValueError, match="init_temperature"):
        LogitScale(init_temperature=0.0)


def test_multimodal_mapping_is_model_of_x_with_checks() -> None:
    model = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    torch.testing.assert_close(multimodal_mapping(x, model), model(x))
    with pytest.raises(TypeError, match="callable"):
        multimodal_mapping(x, "not a model")
    with pytest.raises(TypeError, match="torch.Tensor"):
        multimodal_mapping([1, 2], model)
    with pytest.raises(ValueError, match=r"\(4, d\)"):
        multimodal_mapping(x, lambda a: a.sum())


def test_contrastive_model_gives_unit_vectors_and_can_freeze_the_text_tower() -> None:
    torch.manual_seed(0)
    text = BagOfWordsEncoder(TextEncoderConfig(vocab_size=10, out_dim=8))
    model = ContrastiveModel(nn.Linear(5, 8), text)
    vx, vt, s = model(torch.randn(3, 5), torch.tensor([[1, 2, 0], [3, 0, 0], [4, 5, 6]]))
    torch.testing.assert_close(vx.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(vt.norm(dim=1), torch.ones(3))
    assert s.item() == pytest.approx(1 / 0.07, rel=1e-5)
    ContrastiveModel(nn.Linear(5, 8), text, train_text=False)
    assert not any(p.requires_grad for p in text.parameters())


# ----------------------------------------------------------------------------------------- metrics


def test_recall_at_k_matches_ranking_by_topk_with_ties_to_the_smaller_index() -> None:
    g = torch.Generator().manual_seed(0)
    sim = torch.randint(0, 4, (30, 20), generator=g).float()  # many ties
    targets = torch.randint(0, 20, (30,), generator=g)
    for k in (1, 3, 20):
        expected = sum(
            targets[i].item() in sorted(range(20), key=lambda j, i=i: (-sim[i, j].item(), j))[:k] for i in range(30)
        ) / 30
        assert recall_at_k(sim, k, targets) == pytest.approx(expected)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(sim, 21, targets)


def test_every_vector_finds_itself_first() -> None:
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(1))
    report = evaluate_retrieval(x, x)
    assert report["R@1"] == 1.0 and report["median rank"] == 1.0
    assert recall_at_k(x @ x.T / (x.norm(dim=1)[:, None] * x.norm(dim=1)), 1) == 1.0
    shuffled = evaluate_retrieval(x, x.flip(0))
    assert shuffled["R@1"] < 0.1
    assert evaluate_retrieval(x, x.flip(0), targets=torch.arange(49, -1, -1))["R@1"] == 1.0
    ranks = target_ranks(torch.tensor([[2, 0, 1], [1, 2, 0]]), torch.tensor([0, 0]))
    assert ranks.tolist() == [2, 3]


def test_label_recall_counts_any_item_of_the_right_class() -> None:
    gallery = torch.eye(3).repeat(2, 1)  # (6, 3), items 0..2 and 3..5 are copies
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    queries = torch.eye(3)[[2, 0]]
    assert label_recall_at_k(queries, gallery, torch.tensor([2, 0]), labels, ks=(1,)) == {"R@1": 1.0}
    assert label_recall_at_k(queries, gallery, torch.tensor([1, 1]), labels, ks=(1, 2)) == {"R@1": 0.0, "R@2": 0.0}


def test_prompt_ensembles_zero_shot_hard_negatives_and_the_gap() -> None:
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(4, 3, 8, generator=g)
    c = ensemble_prompts(emb)
    torch.testing.assert_close(c.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(ensemble_prompts(emb[:, :1]), F.normalize(emb[:, 0], dim=1))
    assert zero_shot_classify(3 * c, c).tolist() == [0, 1, 2, 3]
    x = torch.randn(10, 8, generator=g)
    assert hard_negative_accuracy(x, x, x) == 0.5
    assert hard_negative_accuracy(x, x, -x) == 1.0
    assert modality_gap(x, 2 * x) == pytest.approx(0.0, abs=1e-6)
    e = torch.eye(8)[:1]
    assert modality_gap(e, -e) == pytest.approx(2.0)


# ----------------------------------------------------------------------------------------- encoders


def test_bag_of_words_ignores_order_and_the_sequence_encoder_does_not() -> None:
    torch.manual_seed(0)
    cfg = TextEncoderConfig(vocab_size=len(scenes.VOCAB), out_dim=16)
    ids, _ = scenes.encode(["a small red circle left of a large blue square",
                            "a large blue square left of a small red circle"])
    bow, seq = BagOfWordsEncoder(cfg), SequenceTextEncoder(cfg)
    with torch.no_grad():
        assert torch.equal(bow(ids)[0], bow(ids)[1])  # exactly, not only up to rounding
        assert (seq(ids)[0] - seq(ids)[1]).abs().max() > 1e-4


def test_padding_changes_no_text_embedding_and_attention_skips_it() -> None:
    torch.manual_seed(0)
    cfg = TextEncoderConfig(vocab_size=len(scenes.VOCAB), out_dim=16)
    ids, _ = scenes.encode(["a small red circle"])
    padded, _ = scenes.encode(["a small red circle"], max_len=9)
    for encoder in (BagOfWordsEncoder(cfg), SequenceTextEncoder(cfg)):
        with torch.no_grad():
            torch.testing.assert_close(encoder(ids), encoder(padded))
    _, a = SequenceTextEncoder(cfg)(padded, return_weights=True)
    assert (a[0, 4:] == 0).all() and a[0].sum().item() == pytest.approx(1.0)
    with pytest.raises(TypeError, match="torch.long"):
        SequenceTextEncoder(cfg)(ids.float())
    with pytest.raises(ValueError, match="all padding"):
        BagOfWordsEncoder(cfg)(torch.zeros(1, 3, dtype=torch.long))


def test_image_and_audio_encoders_check_their_inputs() -> None:
    enc = ConvImageEncoder(ImageEncoderConfig(in_channels=1, image_size=8, widths=(16, 32), out_dim=12))
    assert enc(torch.rand(5, 1, 8, 8)).shape == (5, 12)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        enc(torch.rand(5, 3, 8, 8))
    with pytest.raises(ValueError, match="divisible"):
        ConvImageEncoder(ImageEncoderConfig(image_size=10, widths=(8, 8)))
    a = AudioEncoder(AudioEncoderConfig(n_freq=129, out_dim=12))
    assert a(torch.rand(4, 129, 26)).shape == (4, 12)
    with pytest.raises(ValueError, match="129"):
        a(torch.rand(4, 65, 26))


# --------------------------------------------------------------------------------------------- data


def test_digits_are_a_fixed_stratified_split_with_captions_that_name_the_digit() -> None:
    x_train, y_train, x_test, y_test = digits.load_digit_images(seed=0)
    assert x_train.shape[1:] == (1, 8, 8) and len(x_train) + len(x_test) == 1797
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert (y_test.bincount() >= 52).all()
    again = digits.load_digit_images(seed=0)
    torch.testing.assert_close(again[0], x_train)
    captions = digits.digit_captions(y_train[:50], seed=3)
    assert captions == digits.digit_captions(y_train[:50], seed=3)
    assert all(c.split()[-1] == digits.DIGIT_NAMES[y] for c, y in zip(captions, y_train[:50].tolist(), strict=True))
    ids, lengths = digits.encode_digit_texts(captions)
    assert ids.shape[0] == 50 and (ids[torch.arange(50), lengths - 1] >= digits.WORD_TO_ID["zero"]).all()
    with pytest.raises(ValueError, match="unknown words"):
        digits.encode_digit_texts(["a photo of a cat"])
    with pytest.raises(ValueError, match="0..9"):
        digits.digit_captions([10], seed=0)


def test_keypad_tones_are_seeded_and_peak_at_the_key_frequencies() -> None:
    labels = list(range(10))
    w = audio.keypad_tones(labels, seed=0)
    assert w.shape == (10, round(audio.SAMPLE_RATE * audio.DURATION)) and w.dtype == torch.float32
    torch.testing.assert_close(w, audio.keypad_tones(labels, seed=0))
    assert not torch.equal(w, audio.keypad_tones(labels, seed=1))
    clean = audio.ToneConfig(jitter=0.0, max_twist_db=0.0, min_snr_db=80.0, max_snr_db=80.0, hum=0.0)
    spec = audio.spectrogram(audio.keypad_tones(labels, seed=0, config=clean))  # (10, 129, frames)
    freqs = audio.bin_frequencies()
    for digit in labels:
        top = freqs[spec[digit].amax(dim=1).topk(2).indices].sort().values
        low, high = audio.key_frequencies(digit)
        assert abs(top[0] - low) <= 16 and abs(top[1] - high) <= 16


def test_spectrogram_is_the_magnitude_of_windowed_dfts() -> None:
    x = torch.randn(2, 400, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    n_fft, hop = 64, 16
    spec = audio.spectrogram(x, n_fft=n_fft, hop_length=hop)
    padded = F.pad(x[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]
    w = torch.hann_window(n_fft, dtype=torch.float64)
    m = 5
    frame = padded[:, m * hop: m * hop + n_fft] * w  # (2, n_fft)
    direct = torch.log1p(torch.fft.rfft(frame).abs())  # (2, n_fft // 2 + 1)
    torch.testing.assert_close(spec[:, :, m], direct)
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        audio.spectrogram(x[0])


def test_scenes_are_seeded_and_their_captions_and_hard_negatives_hold_or_fail() -> None:
    s1, c1 = scenes.make_scenes(40, seed=5, min_objects=2)
    s2, c2 = scenes.make_scenes(40, seed=5, min_objects=2)
    assert s1 == s2 and c1 == c2
    assert all(c.holds(s) for s, c in zip(s1, c1, strict=True))
    rng = random.Random(0)
    for s, c in zip(s1, c1, strict=True):
        for kind in ("swap", "colors", "relation", "attribute"):
            negative = scenes.hard_negative(c, s, kind, rng)
            assert negative is None or not negative.holds(s)


def test_sampled_scenes_follow_the_placement_rules_and_are_seeded() -> None:
    s1, c1 = scene_pairs.sample_scenes(300, seed=4)
    s2, c2 = scene_pairs.sample_scenes(300, seed=4)
    assert s1 == s2 and c1 == c2
    assert {len(s.objects) for s in s1} == {1, 2, 3}
    for s, c in zip(s1, c1, strict=True):
        assert c.holds(s)
        assert all(scenes._apart(a, b) for i, a in enumerate(s.objects) for b in s.objects[i + 1:])
        assert len({(o.thing.color, o.thing.shape) for o in s.objects}) == len(s.objects)
        assert all(scenes.SIZES[o.thing.size] / 32 + 0.02 <= min(o.x, o.y) for o in s.objects)
        assert all(max(o.x, o.y) <= 0.98 - scenes.SIZES[o.thing.size] / 32 for o in s.objects)


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
