r"""Chapter 2: context encoding, $\vec h = C(\vec w, \vec c)$, with recurrent cells built from scratch.

A word vector is the same in every sentence; a recurrent encoder reads the words in order and
gives each position a hidden state that depends on the word *and* on everything before it.

* ``rnn_cell`` / ``RNNCell`` / ``RNNLayer``: the plain (Elman) recurrence
  $h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$.
* ``lstm_gates`` / ``lstm_cell`` / ``LSTMCell`` / ``LSTMLayer``: the LSTM, with exactly the
  parameter names, shapes and gate order (i, f, g, o) of ``nn.LSTMCell`` and ``nn.LSTM``, so
  ``load_state_dict(torch_module.state_dict())`` works in both directions.
* ``ContextEncoding``: the original write-up's encoder, a thin wrapper of ``nn.LSTM(batch_first=True)`` with an
  optional initial state and padded variable-length batches.

The from-scratch layers are pure torch loops over time: slow, but every equation is visible.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._checks import float_tensor, int_tensor, like, positive_int

__all__ = ["rnn_cell", "lstm_gates", "lstm_cell", "RNNCell", "LSTMCell", "RNNLayer", "LSTMLayer",
           "ContextEncoding", "lstm_parameter_count"]


# ----------------------------------------------------------------------------- input checks
def _pair(name: str, state: object, shape: str) -> tuple[Tensor, Tensor]:
    if not isinstance(state, tuple | list) or len(state) != 2:
        raise TypeError(f"{name} must be a pair of {shape} tensors or None, got {type(state).__name__}")
    return state[0], state[1]


def _state(name: str, state: Tensor, shape: str, x: Tensor, **sizes: int) -> Tensor:
    """A hidden or cell state: a float tensor of ``shape``, with the dtype and device of the input ``x``."""
    return like(name, float_tensor(name, state, shape, **sizes), x, "the inputs")


def _lengths(lengths: Tensor, B: int, T: int) -> Tensor:
    """Valid ``lengths (B,)`` with values in [1, T], returned as an int64 tensor on the CPU."""
    lengths = int_tensor("lengths", torch.as_tensor(lengths), "(B,)", B=B, low=1, high=T)
    return lengths.detach().to("cpu", torch.long)


def _init_uniform(module: nn.Module, hidden_size: int) -> None:
    # torch's default for recurrent layers: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))
    bound = hidden_size ** -0.5
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


# ----------------------------------------------------------------------------- plain RNN
def rnn_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
             bias_hh: Tensor) -> Tensor:
    r"""One step of the plain RNN, $h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$.

    ``x (B, I)``, ``h (B, H)``, ``weight_ih (H, I)``, ``weight_hh (H, H)``, biases ``(H,)`` -> ``(B, H)``.
    The maths alone, unchecked: the modules below check their inputs.
    """
    return torch.tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)


class RNNCell(nn.Module):
    """The plain RNN cell with ``nn.RNNCell``'s parameters (tanh nonlinearity): ``forward(x (B, I), h (B, H) or
    None) -> (B, H)``. Sizes that are not positive ints, inputs or states of the wrong shape, dtype or device
    raise ``TypeError`` / ``ValueError``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))   # W_ih (H, I)
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))  # W_hh (H, H)
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        _init_uniform(self, hidden_size)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        B, _ = like("x", float_tensor("x", x, "(B, I)", I=self.input_size), self.weight_ih).shape
        h = x.new_zeros(B, self.hidden_size) if h is None else _state("h", h, "(B, H)", x, B=B, H=self.hidden_size)
        return rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


# ----------------------------------------------------------------------------- LSTM
def lstm_gates(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
               bias_hh: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The four gates of an LSTM step, in ``nn.LSTM``'s order (rows of the weights: i, f, g, o).

    $$[\tilde i;\tilde f;\tilde g;\tilde o] = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}$$
    $i_t = \sigma(\tilde i)$ (input), $f_t = \sigma(\tilde f)$ (forget),
    $g_t = \tanh(\tilde g)$ (cell candidate), $o_t = \sigma(\tilde o)$ (output).

    ``x (B, I)``, ``h (B, H)``, ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, biases ``(4H,)``;
    returns ``i, f, g, o``, each ``(B, H)``. Unchecked, as :func:`rnn_cell`.
    """
    z = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh  # (B, 4H)
    zi, zf, zg, zo = z.chunk(4, dim=-1)  # 4 x (B, H)
    return torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo)


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
              bias_hh: Tensor) -> tuple[Tensor, Tensor]:
    r"""One LSTM step: $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, $h_t = o_t \odot \tanh(c_t)$.

    The forget gate decides what of the old memory $c_{t-1}$ to keep, the input gate how much of
    the candidate $g_t$ to write, the output gate what of the memory to show as $h_t$.
    Shapes as in ``lstm_gates``; ``c (B, H)``; returns ``(h_t, c_t)``, each ``(B, H)``. Unchecked, as
    :func:`rnn_cell`.
    """
    i, f, g, o = lstm_gates(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c


class LSTMCell(nn.Module):
    """The LSTM cell from scratch, parameter for parameter the same as ``nn.LSTMCell``.

    ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``, ``bias_hh (4H,)``; rows in
    blocks of H for the gates i, f, g, o. ``forward(x (B, I), state=(h, c) or None)`` -> ``(h, c)``.
    Raises as :class:`RNNCell` (and ``TypeError`` for a state that is not a pair).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))   # (4H, I)
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))  # (4H, H)
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        _init_uniform(self, hidden_size)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        B, _ = like("x", float_tensor("x", x, "(B, I)", I=self.input_size), self.weight_ih).shape
        if state is None:
            h, c = x.new_zeros(B, self.hidden_size), x.new_zeros(B, self.hidden_size)
        else:
            h, c = _pair("state (h, c)", state, "(B, H)")
            h, c = (_state(n, t, "(B, H)", x, B=B, H=self.hidden_size) for n, t in (("h", h), ("c", c)))
        return lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


# ----------------------------------------------------------------------------- layers: loops over time
class _Layer(nn.Module):
    """Shared parts of the from-scratch layers: parameters named like ``nn.RNN``/``nn.LSTM`` layer 0
    (``weight_ih_l0`` ...), ``batch_first`` inputs, optional ``lengths`` for padded batches."""

    gates = 1  # blocks of H rows in the weights

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        rows = self.gates * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size))   # (gates*H, I)
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size))  # (gates*H, H)
        self.bias_ih_l0 = nn.Parameter(torch.empty(rows))
        self.bias_hh_l0 = nn.Parameter(torch.empty(rows))
        _init_uniform(self, hidden_size)

    @property
    def weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0

    def _prepare(self, x: Tensor, state: Tensor | None, lengths: Tensor | None, name: str):
        B, T, _ = like("x", float_tensor("x", x, "(B, T, I)", I=self.input_size), self.weight_ih_l0).shape
        if state is None:
            state = x.new_zeros(1, B, self.hidden_size)
        _state(name, state, "(1, B, H)", x, B=B, H=self.hidden_size)
        if lengths is not None:
            lengths = _lengths(lengths, B, T).to(x.device)
        return state[0], lengths  # (B, H)


class RNNLayer(_Layer):
    """A plain RNN over a sequence: ``forward(x (B, T, I), h0 (1, B, H) or None, lengths=None)``
    returns ``out (B, T, H), h_n (1, B, H)`` like ``nn.RNN(batch_first=True)``. ``lengths (B,)`` in ``[1, T]``
    stop each sequence at its length. Bad inputs raise as :class:`RNNCell`, bad lengths ``TypeError`` /
    ``ValueError``."""

    def forward(self, x: Tensor, h0: Tensor | None = None,
                lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h, lengths = self._prepare(x, h0, lengths, "h0")
        outs = []
        for t in range(x.shape[1]):  # one step after the other: the sequential cost
            h_new = rnn_cell(x[:, t], h, *self.weights)  # (B, H)
            if lengths is not None:  # past a sequence's end: keep its state, output zeros
                alive = (t < lengths).unsqueeze(1)  # (B, 1)
                h, h_new = torch.where(alive, h_new, h), torch.where(alive, h_new, 0.0)
            else:
                h = h_new
            outs.append(h_new)
        return torch.stack(outs, dim=1), h.unsqueeze(0)  # (B, T, H), (1, B, H)


class LSTMLayer(_Layer):
    """An LSTM layer as a loop of ``lstm_cell`` over time; same parameters as ``nn.LSTM`` (1 layer).

    ``forward(x (B, T, I), state=(h0, c0) each (1, B, H) or None, lengths=None, return_gates=False)``
    returns ``out (B, T, H), (h_n, c_n)``, plus ``gates (B, T, 4, H)`` (i, f, g, o) if asked.
    With ``lengths``, each sequence stops at its length (outputs past it are 0), as with packing.
    Raises as :class:`RNNLayer` (and ``TypeError`` for a state that is not a pair).
    """

    gates = 4

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None, lengths: Tensor | None = None,
                return_gates: bool = False
                ) -> tuple[Tensor, tuple[Tensor, Tensor]] | tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
        h0, c0 = (None, None) if state is None else _pair("state (h0, c0)", state, "(1, B, H)")
        h, lengths = self._prepare(x, h0, lengths, "h0")
        c, _ = self._prepare(x, c0, None, "c0")
        outs, gates = [], []
        for t in range(x.shape[1]):
            i, f, g, o = lstm_gates(x[:, t], h, *self.weights)
            c_new = f * c + i * g          # c_t = f_t * c_{t-1} + i_t * g_t
            h_new = o * torch.tanh(c_new)  # h_t = o_t * tanh(c_t)
            if lengths is not None:
                alive = (t < lengths).unsqueeze(1)  # (B, 1)
                h, c = torch.where(alive, h_new, h), torch.where(alive, c_new, c)
                h_new = torch.where(alive, h_new, 0.0)
            else:
                h, c = h_new, c_new
            outs.append(h_new)
            if return_gates:
                gates.append(torch.stack([i, f, g, o], dim=1))  # (B, 4, H)
        out = torch.stack(outs, dim=1)  # (B, T, H)
        result = (out, (h.unsqueeze(0), c.unsqueeze(0)))
        if return_gates:
            return (*result, torch.stack(gates, dim=1))  # (B, T, 4, H)
        return result


def lstm_parameter_count(input_size: int, hidden_size: int) -> int:
    r"""Parameters of one LSTM layer: $4H(I + H) + 2 \cdot 4H$ (two bias vectors, as torch keeps them); sizes
    that are not positive ints raise ``ValueError``."""
    positive_int("input_size", input_size)
    positive_int("hidden_size", hidden_size)
    return 4 * hidden_size * (input_size + hidden_size) + 8 * hidden_size


# ----------------------------------------------------------------------------- the original write-up's encoder
class ContextEncoding(nn.Module):
    r"""$\vec h = C(\vec w, \vec c)$: an LSTM reads word vectors in order; each output mixes the word
    with its left context.

    ``forward(x (B, T, E), h=None, lengths=None)`` -> ``out (B, T, H), (h_n, c_n)`` each ``(1, B, H)``.
    ``h`` is an initial state ``(h_0, c_0)`` (zeros if ``None``). ``lengths (B,)`` marks how many
    steps of each padded row are real: the padding is packed away, so a padded sentence encodes
    exactly as the unpadded one, ``h_n`` is the state at its last real word and ``out`` is 0 after it.
    Inputs, states and lengths of the wrong shape, dtype or device raise ``TypeError`` / ``ValueError``.
    """

    def __init__(self, embed_size: int, hidden_size: int) -> None:
        super().__init__()
        self.embed_size = positive_int("embed_size", embed_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, batch_first=True)

    def forward(self, x: Tensor, h: tuple[Tensor, Tensor] | None = None,
                lengths: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        B, T, _ = like("x", float_tensor("x", x, "(B, T, E)", E=self.embed_size), self.lstm.weight_ih_l0).shape
        if h is not None:
            h = tuple(_state(n, t, "(1, B, H)", x, B=B, H=self.hidden_size)
                      for n, t in zip(("h_0", "c_0"), _pair("h (h_0, c_0)", h, "(1, B, H)"), strict=True))
        if lengths is None:
            return self.lstm(x, h)
        lengths = _lengths(lengths, B, T)  # pack_padded_sequence wants them on the CPU
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.lstm(packed, h)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, H), zeros past the end
        return out, (h_n, c_n)
