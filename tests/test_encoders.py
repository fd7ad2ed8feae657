"""Chapter 7's encoders (order, padding, input checks) and the digit and sound data.

covers: mmtutor.encoders, mmtutor.data.digits, mmtutor.data.audio
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmtutor.data import audio, digits, scenes
from mmtutor.encoders import (
    AudioEncoder,
    AudioEncoderConfig,
    BagOfWordsEncoder,
    ConvImageEncoder,
    ImageEncoderConfig,
    SequenceTextEncoder,
    TextEncoderConfig,
)

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
