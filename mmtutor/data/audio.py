"""A third modality made by code: the digit keys of a telephone keypad as noisy sounds.

Pressing a key on a telephone sends two sine tones at once (dual-tone multi-frequency, DTMF,
ITU-T Q.23): one frequency for the key's row, one for its column::

            1209 Hz  1336 Hz  1477 Hz
    697 Hz     1        2        3
    770 Hz     4        5        6
    852 Hz     7        8        9
    941 Hz              0

Each clip here is ``DURATION`` seconds at ``SAMPLE_RATE`` Hz: a key press of random length at a
random moment, frequencies off by up to the 1.5 % the standard tolerates, a random loudness and
balance ("twist") of the two tones, mains hum, and white noise at a random signal-to-noise ratio.
A spectrogram (the magnitude of the short-time Fourier transform, ``torch.stft``) turns a clip into
a small picture: time along one axis, frequency along the other, two bright lines for a key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._checks import float_tensor, instance, number
from .digits import digit_labels

SAMPLE_RATE = 8000  # Hz, the telephone standard; the highest DTMF tone (1477 Hz) is far below 4000 Hz
DURATION = 0.2  # seconds per clip
ROWS: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
COLUMNS: tuple[float, ...] = (1209.0, 1336.0, 1477.0)
# digit -> (row, column) on the keypad; 0 sits under 8
KEY_POSITION: dict[int, tuple[int, int]] = {0: (3, 1), **{d: ((d - 1) // 3, (d - 1) % 3) for d in range(1, 10)}}


def key_frequencies(digit: int) -> tuple[float, float]:
    """The (low, high) DTMF frequencies in Hz of a digit's key: ``key_frequencies(7) == (852.0, 1209.0)``; anything
    but an int in 0..9 raises ``ValueError``."""
    if isinstance(digit, bool) or not isinstance(digit, int) or digit not in KEY_POSITION:
        raise ValueError(f"digit must be an int in 0..9, got {digit!r}")
    row, column = KEY_POSITION[digit]
    return ROWS[row], COLUMNS[column]


@dataclass(frozen=True)
class ToneConfig:
    """How varied and noisy the key presses are; checked when made (``ValueError`` / ``TypeError``)."""

    min_press: float = 0.05  # shortest key press, seconds
    max_press: float = 0.15  # longest key press, seconds (a clip lasts DURATION)
    jitter: float = 0.015  # relative frequency error, uniform in [-jitter, jitter] (Q.23 tolerates 1.5 %)
    max_twist_db: float = 4.0  # loudness difference between the two tones, uniform in +- this
    min_snr_db: float = 0.0  # signal-to-noise ratio of the white noise, uniform in [min, max] dB
    max_snr_db: float = 20.0
    hum: float = 0.15  # amplitude of the 50 Hz mains hum (and its harmonics) is uniform in [0, hum]

    def __post_init__(self) -> None:
        if not 0 < number("min_press", self.min_press) <= number("max_press", self.max_press) <= DURATION:
            raise ValueError(f"need 0 < min_press <= max_press <= {DURATION}, got {self}")
        number("jitter", self.jitter, 0.0, 1.0, high_open=True)
        number("max_twist_db", self.max_twist_db, 0.0)
        if not number("min_snr_db", self.min_snr_db) <= number("max_snr_db", self.max_snr_db):
            raise ValueError(f"need min_snr_db <= max_snr_db, got {self.min_snr_db} and {self.max_snr_db}")
        number("hum", self.hum, 0.0)


def keypad_tones(labels: torch.Tensor | Sequence[int], seed: int, config: ToneConfig = ToneConfig()) -> torch.Tensor:
    r"""One noisy key-press clip per digit label: float32 ``(N, SAMPLE_RATE * DURATION)``, seeded.

    $$x(t) = e(t)\,[a_1 \sin(2\pi f_1 t + \phi_1) + a_2 \sin(2\pi f_2 t + \phi_2)] + h(t) + n(t)$$

    with ``e`` the key-press envelope (5 ms ramps), ``f_1, f_2`` the key's row and column
    frequencies (jittered), ``h`` hum and ``n`` white noise. Labels that are not digits 0..9 raise ``ValueError``,
    a ``config`` that is not a :class:`ToneConfig` ``TypeError``.
    """
    values = digit_labels(labels)
    instance("config", config, ToneConfig)
    n, length = len(values), round(SAMPLE_RATE * DURATION)
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    t = torch.arange(length) / SAMPLE_RATE  # (L,) seconds
    f = torch.tensor([key_frequencies(v) for v in values]).reshape(n, 2)  # (N, 2) Hz
    f = f * (1 + uniform(-config.jitter, config.jitter, n, 2))
    twist = 10 ** (uniform(-config.max_twist_db, config.max_twist_db, n) / 20)  # (N,)
    amplitude = torch.stack([torch.ones(n), twist], dim=1) / (1 + twist).unsqueeze(1)  # (N, 2), sums to 1
    phase = uniform(0, 2 * math.pi, n, 2)
    tones = amplitude[:, :, None] * torch.sin(2 * math.pi * f[:, :, None] * t + phase[:, :, None])  # (N, 2, L)
    press = uniform(config.min_press, config.max_press, n, 1)  # (N, 1) seconds
    start = uniform(0, 1, n, 1) * (DURATION - press)
    ramp = 0.005
    envelope = ((t - start) / ramp).clamp(0, 1) * ((start + press - t) / ramp).clamp(0, 1)  # (N, L)
    signal = envelope * tones.sum(dim=1) * uniform(0.5, 1.0, n, 1)  # (N, L)
    power = signal.pow(2).sum(1, keepdim=True) / (envelope.pow(2).sum(1, keepdim=True) + 1e-9)  # while pressed
    snr = 10 ** (uniform(config.min_snr_db, config.max_snr_db, n, 1) / 10)
    noise = torch.randn(n, length, generator=g) * (power / snr).sqrt()
    hum = sum(uniform(0, config.hum / k, n, 1) * torch.sin(2 * math.pi * 50 * k * t + uniform(0, 6.3, n, 1))
              for k in (1, 2, 3))
    return (signal + hum + noise).float()


def spectrogram(waves: torch.Tensor, n_fft: int = 256, hop_length: int = 64) -> torch.Tensor:
    r"""Log-magnitude spectrogram with a Hann window: ``(N, L)`` -> ``(N, n_fft // 2 + 1, frames)``.

    $$S[k, m] = \log\Big(1 + \Big|\sum_{n} x[n + m H]\, w[n]\, e^{-2\pi i k n / N_{\mathrm{fft}}}\Big|\Big)$$

    Bin ``k`` is the frequency ``k * SAMPLE_RATE / n_fft`` Hz (31.25 Hz apart with the defaults), frame
    ``m`` starts at sample ``m * hop_length`` (the clip is padded by reflection at both ends). Waves that are
    not a float ``(N, L)`` tensor, or sizes outside ``1 <= hop_length <= n_fft < L``, raise ``TypeError`` /
    ``ValueError``.
    """
    float_tensor("waves", waves, "(N, L)")
    if not 1 <= hop_length <= n_fft < waves.shape[1]:
        raise ValueError(f"need 1 <= hop_length <= n_fft < L = {waves.shape[1]}, got hop_length={hop_length}, "
                         f"n_fft={n_fft}")
    window = torch.hann_window(n_fft, device=waves.device, dtype=waves.dtype)
    z = torch.stft(waves, n_fft, hop_length=hop_length, window=window, center=True, pad_mode="reflect",
                   return_complex=True)  # (N, n_fft // 2 + 1, frames)
    return torch.log1p(z.abs())


def bin_frequencies(n_fft: int = 256) -> torch.Tensor:
    """The frequency in Hz of each spectrogram row: ``(n_fft // 2 + 1,)``."""
    return torch.arange(n_fft // 2 + 1) * SAMPLE_RATE / n_fft
