r"""Chapter 2's exercises: context encoding with an LSTM.

* exercise 1, :func:`check_lstm_parameter_count` (warm-up, predict two counts, :func:`~mmtutor.exercises.check`): the
  parameters of the chapter's LSTM and of a plain RNN of the same sizes, the expected counts computed by PyTorch at
  check time;
* exercise 2, :func:`check_cell_memory` (predict, :func:`~mmtutor.exercises.check`): how much of its memory an LSTM
  cell keeps when its input gate writes nothing and its forget gate's bias is $b$, and after how many steps half of it
  is gone; the expected values come from running the package's :class:`~mmtutor.context.LSTMCell` at check time;
* exercise 3, :func:`check_gru_step` (change, :func:`~mmtutor.exercises.check_function`): the GRU cell, from its
  documentation, against ``nn.GRUCell`` with the same weights on hidden inputs of random sizes;
* exercise 4, :func:`check_backwards_lstm` (change and train, :func:`~mmtutor.exercises.check_function` and
  :func:`~mmtutor.exercises.check_properties`): reverse the words of padded captions, train the chapter's LSTM on
  captions read backwards, predict whether it still answers the side question; the held-out accuracy is measured by
  the check on its own reversed copy of the held-out questions.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from mmtutor.context import LSTMCell
from mmtutor.context_tasks import SentenceClassifier, SideQuestions, accuracy, side_questions
from mmtutor.exercises import check, check_function, check_properties, exercise

E, H = 16, 32  # the sizes of the chapter's ContextEncoding (section 5)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- Exercise 1: count the LSTM's parameters --------------------------------------------------------------------

ONE_BIAS = "you counted one bias vector per gate: PyTorch keeps two, bias_ih and bias_hh"
NO_BIAS = "you counted the weight matrices only: each gate also has its biases"
ONE_GATE = "you counted one gate's parameters: an LSTM has four gates (i, f, g, o), each with its own weights"
FOUR_GATES_RNN = "the plain RNN has no gates: one W_ih, one W_hh and their two biases"


@exercise(1, tests="predicting the parameter count of an LSTM layer (four gates, each with W_ih (H x I), W_hh (H x H) "
                   "and two biases) and of a plain RNN layer of the same sizes (a warm-up)",
          wrong_answers={"one bias vector instead of two": ONE_BIAS, "no biases": NO_BIAS,
                         "one gate instead of four": ONE_GATE, "four gates for the plain RNN": FOUR_GATES_RNN},
          answers=lambda: [_count(nn.LSTM(E, H)), _count(nn.RNN(E, H))])
def check_lstm_parameter_count(lstm_parameters: Any, rnn_parameters: Any) -> None:
    r"""Exercise 1: ``lstm_parameters``, the number of parameters of ``ContextEncoding(16, 32)`` (one
    ``nn.LSTM(16, 32)`` layer), and ``rnn_parameters``, those of ``nn.RNN(16, 32)``, predicted by hand. The expected
    counts are PyTorch's, computed at check time."""
    __tracebackhide__ = True
    gate = H * E + H * H  # one gate's weight matrices
    check("Exercise 1 (LSTM)", _whole(lstm_parameters), _count(nn.LSTM(E, H)), atol=0, rtol=0,
          mistakes=[(ONE_BIAS, 4 * (gate + H)), (NO_BIAS, 4 * gate), (ONE_GATE, gate + 2 * H), (ONE_GATE, gate + H)],
          hints=("section 3: weight_ih is (4H, I), weight_hh is (4H, H); how many bias vectors does PyTorch keep?",
                 "PyTorch keeps two bias vectors, bias_ih and bias_hh, each of 4H",
                 "add up 4H * I, 4H * H and 2 * 4H with I = 16 and H = 32"),
          feedback="(PyTorch agrees: sum(p.numel() for p in nn.LSTM(16, 32).parameters()).)")
    check("Exercise 1 (plain RNN)", _whole(rnn_parameters), _count(nn.RNN(E, H)), atol=0, rtol=0,
          mistakes=[(FOUR_GATES_RNN, _count(nn.LSTM(E, H))), (ONE_BIAS, gate + H), (NO_BIAS, gate)],
          hints=("section 2: the plain cell has one W_ih (H, I), one W_hh (H, H) and two biases",
                 "add up H * I, H * H and 2 * H"))


def _whole(n: Any) -> Any:
    """A float that is a whole number (``4 * (32 * 48) + 256.0``) counts as that int."""
    return int(n) if isinstance(n, float) and n.is_integer() else n


# --- Exercise 2: a memory that leaks -----------------------------------------------------------------------------

ONE_STEP = "that is what one step keeps: the forget gate multiplies the memory at every one of the steps"
ALL_GONE = "some memory is left: each step keeps the fraction sigmoid(b), which is never 0"
STEPS = 20


def kept(b: float, steps: int) -> float:
    r"""The reference: run the package's :class:`~mmtutor.context.LSTMCell` (1 unit, float64) with every weight and
    bias 0 except the forget gate's bias ``b``, from $c_0 = 1$ and zero inputs, and return $c_{\text{steps}}$."""
    cell = LSTMCell(1, 1).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias_ih[1] = b  # row 1 of 4: the forget gate
    h, c = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    for _ in range(steps):
        h, c = cell(torch.zeros(1, 1, dtype=torch.float64), (h, c))
    return c.item()


def half_life(b: float) -> int:
    r"""The first step after which less than half of the memory is left (the cell of :func:`kept`)."""
    steps = 1
    while kept(b, steps) >= 0.5:
        steps += 1
    return steps


@exercise(2, tests="predicting the memory an LSTM cell keeps when its gates are fixed: c_t = sigmoid(b)^t c_0 when "
                   "nothing is written, for b = 0 and b = 5 after 20 steps, and the steps until half is gone at b = 5",
          wrong_answers={"the fraction kept after one step": ONE_STEP, "nothing left (0)": ALL_GONE},
          answers=lambda: [kept(0.0, STEPS), kept(5.0, STEPS), half_life(5.0)])
def check_cell_memory(kept_b0: Any, kept_b5: Any, steps_to_half: Any) -> None:
    r"""Exercise 2: ``kept_b0`` and ``kept_b5``, the fraction $c_{20} / c_0$ of the memory an LSTM cell keeps after
    20 steps when every weight and bias is 0 except the forget gate's bias, $b = 0$ or $b = 5$; ``steps_to_half``,
    the number of steps after which less than half is left at $b = 5$ (within one step). Checked against the
    package's ``LSTMCell`` run at check time, within 2%."""
    __tracebackhide__ = True
    hints = ("with all weights 0, every gate sees only its bias: what are i, f, g and o?",
             "g = tanh(0) = 0, so i * g adds nothing, and c_t = f * c_(t-1) with f = sigmoid(b) at every step",
             "so c_t / c_0 = sigmoid(b) ** t; solve sigmoid(5) ** t < 0.5 for the half-life")
    for name, answer, b in (("Exercise 2 (b = 0)", kept_b0, 0.0), ("Exercise 2 (b = 5)", kept_b5, 5.0)):
        check(name, answer, kept(b, STEPS), atol=0, rtol=0.02, hints=hints,
              mistakes=[(ONE_STEP, kept(b, 1)), (ALL_GONE, 0.0)])
    check("Exercise 2 (half-life)", steps_to_half, half_life(5.0), atol=1, rtol=0, hints=hints,
          feedback="(The same product of forget gates scales the gradient that flows back through the memory: "
                   "compare the forget-bias curves of section 7.)")


# --- Exercise 3: the GRU cell ------------------------------------------------------------------------------------

RESET_BEFORE = ("you applied the reset gate to h before the product with W_hn (the form of Cho et al.'s paper); "
                "PyTorch multiplies r with (W_hn h + b_hn), after the product and its bias")
UPDATE_SWAPPED = "z weighs the old state in PyTorch's GRU: the new state is (1 - z) * n + z * h"
GATE_ORDER = "the rows of the weights are in the order r, z, n: check which block is the reset and which the update"


def _gru_inputs(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    B, n_in, H_ = (int(n) for n in torch.randint(1, 7, (3,), generator=generator))
    shapes = [(B, n_in), (B, H_), (3 * H_, n_in), (3 * H_, H_), (3 * H_,), (3 * H_,)]
    return tuple(torch.randn(*shape, generator=generator, dtype=torch.float64) for shape in shapes)


def _gru_torch(x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> torch.Tensor:
    """The reference: ``nn.GRUCell`` loaded with these weights."""
    cell = nn.GRUCell(x.shape[1], h.shape[1], dtype=torch.float64)
    cell.load_state_dict({"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih, "bias_hh": bias_hh})
    with torch.no_grad():
        return cell(x, h)


def _gru_variant(reset_before: bool = False, swap_update: bool = False, swap_order: bool = False):
    def step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        (a_r, a_z, a_n), (u_r, u_z, u_n) = (x @ weight_ih.T + bias_ih).chunk(3, -1), weight_hh.chunk(3)
        b_r, b_z, b_n = bias_hh.chunk(3)
        if swap_order:
            a_r, a_z, u_r, u_z, b_r, b_z = a_z, a_r, u_z, u_r, b_z, b_r
        r, z = torch.sigmoid(a_r + h @ u_r.T + b_r), torch.sigmoid(a_z + h @ u_z.T + b_z)
        n = torch.tanh(a_n + ((r * h) @ u_n.T + b_n if reset_before else r * (h @ u_n.T + b_n)))
        return z * n + (1 - z) * h if swap_update else (1 - z) * n + z * h
    return step


@exercise(3, tests="adapting the LSTM step to the GRU cell from PyTorch's documentation of nn.GRUCell: two gates, "
                   "weights stacked in the order r, z, n, the reset gate inside the candidate",
          wrong_answers={"the reset gate applied to h before W_hn": RESET_BEFORE,
                         "z and 1 - z swapped": UPDATE_SWAPPED, "the gate blocks in the wrong order": GATE_ORDER})
def check_gru_step(gru_step: Any) -> None:
    r"""Exercise 3: ``gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh)``, one step of PyTorch's GRU cell for
    ``x (B, I)``, ``h (B, H)``, ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, biases ``(3H,)``, returning the new
    ``h (B, H)``. Compared with ``nn.GRUCell`` loaded with the same weights, on five hidden inputs of random
    sizes in float64."""
    __tracebackhide__ = True
    check_function("Exercise 3", gru_step, _gru_torch, _gru_inputs, trials=5, atol=1e-8, rtol=1e-6,
                   mistakes=[(RESET_BEFORE, _gru_variant(reset_before=True)),
                             (UPDATE_SWAPPED, _gru_variant(swap_update=True)),
                             (GATE_ORDER, _gru_variant(swap_order=True))],
                   hints=("read the equations with help(nn.GRUCell): r, z and n, then the new h",
                          "weight_ih.chunk(3) and weight_hh.chunk(3) give the blocks of r, z and n, in that order "
                          "(the biases likewise)",
                          "the candidate n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), and h' = (1 - z) * n + z * h"))


# --- Exercise 4: read the captions backwards ---------------------------------------------------------------------

WHOLE_ROW = "you reversed the whole row, padding included: the padding must stay at the end, after the real words"
THRESHOLD = 0.9  # the held-out accuracy a model trained on reversed captions must reach


def reverse_reference(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    r"""The reference: row $b$'s first ``lengths[b]`` ids in reverse order, then its padding unchanged."""
    out = ids.clone()
    for b, L in enumerate(lengths.tolist()):
        out[b, :L] = ids[b, :L].flip(0)
    return out


def _padded_ids(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    B, T = (int(n) for n in torch.randint(2, 9, (2,), generator=generator))
    lengths = torch.randint(1, T + 1, (B,), generator=generator)
    lengths[0] = T  # one row without padding, and (with B >= 2) usually one with
    ids = torch.randint(1, 40, (B, T), generator=generator)
    ids[torch.arange(T) >= lengths[:, None]] = 0  # padding id 0 after each row's length
    return ids, lengths


@functools.lru_cache(maxsize=1)
def _held_out() -> SideQuestions:
    """The chapter's held-out side questions (``side_questions(4000, seed=0)``), read backwards."""
    _, test = side_questions(n_scenes=4000, seed=0)
    return SideQuestions(test.texts, reverse_reference(test.ids, test.lengths), test.lengths, test.query, test.label)


def _backwards_accuracy(model: nn.Module) -> float:
    return accuracy(model, _held_out(), next(model.parameters()).device)


@exercise(4, tests="reversing the real words of padded captions, training the chapter's LSTM on captions read "
                   "backwards, and predicting whether it still answers held-out questions (reversal loses no "
                   "information, so an order-aware encoder learns it as well)",
          wrong_answers={"the padding reversed too": WHOLE_ROW})
def check_backwards_lstm(reverse_words: Any, backwards_model: Any, prediction: Any) -> None:
    r"""Exercise 4: ``reverse_words(ids, lengths)`` reverses the first ``lengths[b]`` ids of each row of a padded
    ``(B, T)`` batch and keeps the padding at the end (checked against the reference on five hidden batches);
    ``backwards_model``, a ``SentenceClassifier(encoder="lstm")`` trained on the training captions read backwards,
    must answer at least 90% of the held-out questions read backwards (the check reverses them itself);
    ``prediction``, True or False: does it reach 95%? Compared with what the check measures."""
    __tracebackhide__ = True
    check_function("Exercise 4 (reverse_words)", reverse_words, reverse_reference, _padded_ids, trials=5,
                   atol=0, rtol=0, mistakes=[(WHOLE_ROW, lambda ids, lengths: ids.flip(1))],
                   hints=("only the first lengths[b] entries of row b are words; the rest is padding",
                          "reverse ids[b, :lengths[b]] with .flip(0) and leave ids[b, lengths[b]:] as it is"))
    check_properties("Exercise 4 (model)", backwards_model,
                     [("it is a SentenceClassifier with encoder='lstm'",
                       lambda m: isinstance(m, SentenceClassifier) and m.encoder == "lstm"),
                      (f"it answers at least {THRESHOLD:.0%} of the held-out questions read backwards",
                       lambda m: _backwards_accuracy(m) >= THRESHOLD)],
                     hints=("train it as in section 5, on a copy of train_set whose ids are reversed",
                            "dataclasses.replace(train_set, ids=...) makes such a copy; the lengths stay the same"))
    measured = None if backwards_model is Ellipsis else _backwards_accuracy(backwards_model)
    check("Exercise 4 (prediction)", ... if measured is None else prediction, measured is not None and measured >= 0.95,
          hints=("reversing a caption is a one-to-one change of the input: nothing is lost",
                 "the LSTM reads the order whichever way it runs: 'red ... left of ... blue' backwards is still "
                 "a different sequence from 'blue ... left of ... red' backwards"),
          feedback=None if measured is None else f"(Measured: {measured:.3f} of the held-out questions, backwards.)")
