"""Chapter 5's encoders: one per modality, each ending in a projection into the shared space.

$$\\vec v = M(\\vec x) = P\\, f(\\vec x)$$

``f`` reads one kind of data (pixels, words, sound) and ``P`` (the projection head, a linear map)
puts the result in the shared ``d``-dimensional space; :mod:`mmtutor.alignment` normalises it onto
the unit sphere and trains the towers so that matching pairs point the same way.

* :class:`ConvImageEncoder`: a small CNN for scenes (3 x 32 x 32) and digits (1 x 8 x 8);
* :class:`BagOfWordsEncoder`: chapter 1's embedding, averaged over the words: blind to word order;
* :class:`SequenceTextEncoder`: chapters 1 to 3 in a row, embedding -> LSTM -> attention pooling;
* :class:`AudioEncoder`: a 1-D CNN over the frames of a spectrogram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .attention import SelfAttention
from .context import ContextEncoding
from .embedding import Embedding


def _check_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_input(name: str, x: object, shape: tuple[int | None, ...], floating: bool) -> None:
    """``x`` must be a tensor of ``shape`` (None = any size there) with a float or integer dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype}")
    if not floating and x.dtype != torch.long:
        raise TypeError(f"{name} must hold word ids as torch.long, got dtype {x.dtype}")
    expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
    if x.ndim != len(shape) or any(s is not None and s != got for s, got in zip(shape, x.shape, strict=True)):
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")


@dataclass(frozen=True)
class ImageEncoderConfig:
    in_channels: int = 3  # 3 for the RGB scenes, 1 for the grey digits
    image_size: int = 32  # height = width of the input images
    widths: tuple[int, ...] = (16, 32, 64)  # channels of each conv block; every block after the first halves the size
    patch: int = 2  # the first block cuts the image into patch x patch tiles (kernel = stride = patch); 2 = a 3x3
    # conv of stride 2 like the other blocks
    hidden: int = 256  # width of the MLP between the flattened feature map and the projection
    out_dim: int = 64  # d, the dimension of the shared space


class ConvImageEncoder(nn.Module):
    """Conv blocks (conv, batch norm, ReLU) that each shrink the image, flattened, then an MLP to ``out_dim``.

    The first block either is a 3x3 conv of stride 2 (``patch=2``) or cuts the image into
    ``patch x patch`` tiles (a conv with kernel = stride = ``patch``, as the "patch embedding" of a
    vision transformer, cheaper); the others are 3x3 convs of stride 2. Flattening (instead of
    averaging over positions) keeps *where* things are, which the relations "left of" and "above"
    need. ``forward(x (N, C, S, S)) -> (N, out_dim)``.
    """

    def __init__(self, config: ImageEncoderConfig = ImageEncoderConfig()) -> None:
        super().__init__()
        c = config
        for name in ("in_channels", "image_size", "hidden", "out_dim", "patch"):
            _check_int(name, getattr(c, name))
        shrink = c.patch * 2 ** (len(c.widths) - 1) if c.widths else 0
        if not c.widths or c.patch < 2 or c.image_size % shrink:
            raise ValueError(f"image_size {c.image_size} must be divisible by patch * 2 ** (len(widths) - 1) = "
                             f"{shrink} (patch={c.patch} >= 2, widths={c.widths} not empty)")
        self.config = c
        if c.patch == 2:
            layers: list[nn.Module] = [nn.Conv2d(c.in_channels, c.widths[0], 3, stride=2, padding=1)]
        else:
            layers = [nn.Conv2d(c.in_channels, c.widths[0], c.patch, stride=c.patch)]
        layers += [nn.BatchNorm2d(c.widths[0]), nn.ReLU()]
        channels = c.widths[0]
        for width in c.widths[1:]:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        side = c.image_size // shrink
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, c.hidden), nn.ReLU(),
                                  nn.Linear(c.hidden, c.out_dim))  # the last Linear is the projection P

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        _check_input("images", x, (None, c.in_channels, c.image_size, c.image_size), floating=True)
        return self.head(self.features(x))  # (N, C', S', S') -> (N, out_dim)


@dataclass(frozen=True)
class TextEncoderConfig:
    vocab_size: int  # number of word ids; id 0 is padding
    embed_size: int = 32  # E, the word vector size (chapter 1)
    hidden_size: int = 64  # H, the LSTM state size (chapter 2); unused by the bag of words
    out_dim: int = 64  # d, the dimension of the shared space


def _padding_mask(ids: torch.Tensor) -> torch.Tensor:
    mask = ids != 0  # (N, T) True = real word
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every text needs at least one word (a row of ids is all padding)")
    return mask


class BagOfWordsEncoder(nn.Module):
    """The mean of the word vectors, projected: $\\vec v = P \\frac{1}{T}\\sum_t E(w_t)$.

    Any reordering of the words gives exactly the same vector: "a red circle left of a blue
    square" and "a blue square left of a red circle" are one point. ``forward(ids (N, T))``.
    """

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        for name in ("vocab_size", "embed_size", "out_dim"):
            _check_int(name, getattr(config, name))
        self.config = config
        self.embedding = Embedding(config.vocab_size, config.embed_size)
        self.projection = nn.Linear(config.embed_size, config.out_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _check_input("ids", ids, (None, None), floating=False)
        _padding_mask(ids)
        # Sorting the ids first makes the sum run over the words in the same order for any reordering
        # of a sentence, so the result is exactly, not only up to rounding, independent of word order.
        ids = ids.sort(dim=1).values  # (N, T)
        mask = (ids != 0).unsqueeze(-1)  # (N, T, 1)
        w = self.embedding(ids)  # (N, T, E)
        mean = (w * mask).sum(dim=1) / mask.sum(dim=1)  # (N, E), padding left out
        return self.projection(mean)


class SequenceTextEncoder(nn.Module):
    """Chapters 1 to 3 in a row: $\\vec v = P\\,A(C(E(w_1 \\dots w_T)))$.

    Embedding (``mmtutor.Embedding``), LSTM (``mmtutor.ContextEncoding``), attention pooling
    (``mmtutor.SelfAttention``, padding masked out), projection. The LSTM reads left to right, so
    each state knows the words before it and the order of words changes the result.
    ``forward(ids (N, T), return_weights=False)``.
    """

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        for name in ("vocab_size", "embed_size", "hidden_size", "out_dim"):
            _check_int(name, getattr(config, name))
        self.config = config
        self.embedding = Embedding(config.vocab_size, config.embed_size)
        self.context = ContextEncoding(config.embed_size, config.hidden_size)
        self.attention = SelfAttention(config.hidden_size)
        self.projection = nn.Linear(config.hidden_size, config.out_dim)

    def forward(self, ids: torch.Tensor, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        _check_input("ids", ids, (None, None), floating=False)
        mask = _padding_mask(ids)  # (N, T)
        # Padding sits after the last word and the LSTM reads left to right, so the states of real
        # words never see padding; the attention mask gives the states at padding weight 0.
        h, _ = self.context(self.embedding(ids))  # (N, T, H)
        s, a = self.attention(h, mask=mask, return_weights=True)  # (N, H), (N, T)
        v = self.projection(s)  # (N, d)
        return (v, a) if return_weights else v


@dataclass(frozen=True)
class AudioEncoderConfig:
    n_freq: int = 129  # spectrogram rows (n_fft // 2 + 1)
    channels: Sequence[int] = (64, 64)  # width of each 1-D conv layer over time (kernel 3)
    out_dim: int = 64  # d, the dimension of the shared space


class AudioEncoder(nn.Module):
    """1-D convolutions over time with the frequency bins as input channels, max over time, projection.

    A key press is two steady lines anywhere in the clip, so the encoder looks for them in every
    frame and keeps the strongest response (max pooling over time: where the press is does not
    matter). ``forward(spec (N, n_freq, frames)) -> (N, out_dim)``.
    """

    def __init__(self, config: AudioEncoderConfig = AudioEncoderConfig()) -> None:
        super().__init__()
        _check_int("n_freq", config.n_freq)
        _check_int("out_dim", config.out_dim)
        if not config.channels:
            raise ValueError("channels must name at least one conv layer width")
        self.config = config
        layers: list[nn.Module] = []
        width = config.n_freq
        for c in config.channels:
            _check_int("channels", c)
            layers += [nn.Conv1d(width, c, 3, padding=1), nn.BatchNorm1d(c), nn.ReLU()]
            width = c
        self.conv = nn.Sequential(*layers)
        self.projection = nn.Linear(width, config.out_dim)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        _check_input("spectrograms", spec, (None, self.config.n_freq, None), floating=True)
        h = self.conv(spec)  # (N, C, frames)
        return self.projection(h.amax(dim=2))  # (N, C) -> (N, out_dim)
