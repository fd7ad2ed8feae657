r"""Chapter 7's encoders: one per modality, each ending in a projection into the shared space.

$$\vec v = M(\vec x) = P\, f(\vec x)$$

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

from ._checks import float_tensor, id_tensor, instance, positive_int
from .attention import SelfAttention, masked_mean
from .context import ContextEncoding
from .embedding import Embedding


@dataclass(frozen=True)
class ImageEncoderConfig:
    """The image tower's sizes; checked when made (``ValueError``)."""

    in_channels: int = 3  # 3 for the RGB scenes, 1 for the grey digits
    image_size: int = 32  # height = width of the input images
    widths: tuple[int, ...] = (16, 32, 64)  # channels of each conv block; every block after the first halves the size
    patch: int = 2  # the first block cuts the image into patch x patch tiles (kernel = stride = patch);
    #                 2 = a 3x3 conv of stride 2 like the other blocks
    hidden: int = 256  # width of the MLP between the flattened feature map and the projection
    out_dim: int = 64  # d, the dimension of the shared space

    def __post_init__(self) -> None:
        for name in ("in_channels", "image_size", "hidden", "out_dim", "patch"):
            positive_int(name, getattr(self, name))
        shrink = self.patch * 2 ** (len(self.widths) - 1) if self.widths else 0
        if not self.widths or self.patch < 2 or self.image_size % shrink:
            raise ValueError(f"image_size {self.image_size} must be divisible by patch * 2 ** (len(widths) - 1) = "
                             f"{shrink} (patch={self.patch} >= 2, widths={self.widths} not empty)")


class ConvImageEncoder(nn.Module):
    """Conv blocks (conv, batch norm, ReLU) that each shrink the image, flattened, then an MLP to ``out_dim``.

    The first block either is a 3x3 conv of stride 2 (``patch=2``) or cuts the image into
    ``patch x patch`` tiles (a conv with kernel = stride = ``patch``, as the "patch embedding" of a
    vision transformer, cheaper); the others are 3x3 convs of stride 2. Flattening (instead of
    averaging over positions) keeps *where* things are, which the relations "left of" and "above"
    need. ``forward(x (N, C, S, S)) -> (N, out_dim)``; images of another shape or dtype raise ``TypeError`` /
    ``ValueError``.
    """

    def __init__(self, config: ImageEncoderConfig = ImageEncoderConfig()) -> None:
        super().__init__()
        self.config = c = instance("config", config, ImageEncoderConfig)
        if c.patch == 2:
            layers: list[nn.Module] = [nn.Conv2d(c.in_channels, c.widths[0], 3, stride=2, padding=1)]
        else:
            layers = [nn.Conv2d(c.in_channels, c.widths[0], c.patch, stride=c.patch)]
        layers += [nn.BatchNorm2d(c.widths[0]), nn.ReLU()]
        channels = c.widths[0]
        for width in c.widths[1:]:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        side = c.image_size // (c.patch * 2 ** (len(c.widths) - 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, c.hidden), nn.ReLU(),
                                  nn.Linear(c.hidden, c.out_dim))  # the last Linear is the projection P

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        float_tensor("images", x, "(N, C, S, S)", C=c.in_channels, S=c.image_size)
        return self.head(self.features(x))  # (N, C', S', S') -> (N, out_dim)


@dataclass(frozen=True)
class TextEncoderConfig:
    """A text tower's sizes; checked when made (``ValueError``)."""

    vocab_size: int  # number of word ids; id 0 is padding
    embed_size: int = 32  # E, the word vector size (chapter 1)
    hidden_size: int = 64  # H, the LSTM state size (chapter 2); unused by the bag of words
    out_dim: int = 64  # d, the dimension of the shared space

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_size", "hidden_size", "out_dim"):
            positive_int(name, getattr(self, name))


def _padding_mask(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``ids (N, T)`` of word ids, 0 = padding, with at least one word per row -> the mask of real words."""
    mask = id_tensor("ids", ids, vocab_size, "(N, T)") != 0  # (N, T) True = real word
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every text needs at least one word (a row of ids is all padding)")
    return mask


class BagOfWordsEncoder(nn.Module):
    r"""The mean of the word vectors, projected: $\vec v = P \frac{1}{T}\sum_t E(w_t)$.

    Any reordering of the words gives exactly the same vector: "a red circle left of a blue
    square" and "a blue square left of a red circle" are one point. ``forward(ids (N, T))``; ids that are not
    ``(N, T)`` integers in the vocabulary, or a row of padding only, raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = instance("config", config, TextEncoderConfig)
        self.embedding = Embedding(config.vocab_size, config.embed_size)
        self.projection = nn.Linear(config.embed_size, config.out_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _padding_mask(ids, self.config.vocab_size)
        # Sorting the ids first makes the sum run over the words in the same order for any reordering
        # of a sentence, so the result is exactly, not only up to rounding, independent of word order.
        ids = ids.sort(dim=1).values  # (N, T)
        mean = masked_mean(self.embedding(ids), ids != 0)  # (N, E), padding left out
        return self.projection(mean)


class SequenceTextEncoder(nn.Module):
    r"""Chapters 1 to 3 in a row: $\vec v = P\,A(C(E(w_1 \dots w_T)))$.

    Embedding (``mmtutor.Embedding``), LSTM (``mmtutor.ContextEncoding``), attention pooling
    (``mmtutor.SelfAttention``, padding masked out), projection. The LSTM reads left to right, so
    each state knows the words before it and the order of words changes the result.
    ``forward(ids (N, T), return_weights=False)``; bad ids raise as in :class:`BagOfWordsEncoder`.
    """

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = instance("config", config, TextEncoderConfig)
        self.embedding = Embedding(config.vocab_size, config.embed_size)
        self.context = ContextEncoding(config.embed_size, config.hidden_size)
        self.attention = SelfAttention(config.hidden_size)
        self.projection = nn.Linear(config.hidden_size, config.out_dim)

    def forward(self, ids: torch.Tensor, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        mask = _padding_mask(ids, self.config.vocab_size)  # (N, T)
        # Padding sits after the last word and the LSTM reads left to right, so the states of real
        # words never see padding; the attention mask gives the states at padding weight 0.
        h, _ = self.context(self.embedding(ids))  # (N, T, H)
        s, a = self.attention(h, mask=mask, return_weights=True)  # (N, H), (N, T)
        v = self.projection(s)  # (N, d)
        return (v, a) if return_weights else v


@dataclass(frozen=True)
class AudioEncoderConfig:
    """The audio tower's sizes; checked when made (``ValueError``)."""

    n_freq: int = 129  # spectrogram rows (n_fft // 2 + 1)
    channels: Sequence[int] = (64, 64)  # width of each 1-D conv layer over time (kernel 3)
    out_dim: int = 64  # d, the dimension of the shared space

    def __post_init__(self) -> None:
        positive_int("n_freq", self.n_freq)
        positive_int("out_dim", self.out_dim)
        if not self.channels:
            raise ValueError("channels must name at least one conv layer width")
        for c in self.channels:
            positive_int("channels", c)


class AudioEncoder(nn.Module):
    """1-D convolutions over time with the frequency bins as input channels, max over time, projection.

    A key press is two steady lines anywhere in the clip, so the encoder looks for them in every
    frame and keeps the strongest response (max pooling over time: where the press is does not
    matter). ``forward(spec (N, n_freq, frames)) -> (N, out_dim)``; spectrograms of another shape or dtype
    raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, config: AudioEncoderConfig = AudioEncoderConfig()) -> None:
        super().__init__()
        self.config = instance("config", config, AudioEncoderConfig)
        layers: list[nn.Module] = []
        width = config.n_freq
        for c in config.channels:
            layers += [nn.Conv1d(width, c, 3, padding=1), nn.BatchNorm1d(c), nn.ReLU()]
            width = c
        self.conv = nn.Sequential(*layers)
        self.projection = nn.Linear(width, config.out_dim)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        float_tensor("spectrograms", spec, "(N, F, frames)", F=self.config.n_freq)
        h = self.conv(spec)  # (N, C, frames)
        return self.projection(h.amax(dim=2))  # (N, C) -> (N, out_dim)
