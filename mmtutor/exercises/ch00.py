r"""Chapter 0's exercises: the worked example of a chapter module (copy its shape for your chapter).

One public check per exercise, registered with :func:`mmtutor.exercises.exercise` and named for what it checks,
``check_<what>`` (a name no other module defines); the notebook's check cell is ``from mmtutor.exercises import
ch00`` and ``ch00.check_<what>(answer)``. The references, the hidden probes and the
messages for typical wrong answers live here, not in the notebook; every message is a module constant, passed
both to the registry (``wrong_answers=``, read by the instructor page) and to the check (``mistakes=``, which
prints it), so the two cannot drift apart.

* exercise 1, :func:`check_l2_norm` (warm-up, :func:`~mmtutor.exercises.check_function`): ``l2_norm(v)``, each row's
  length;
* exercise 2, :func:`check_parameter_count` (predict a count, :func:`~mmtutor.exercises.check`): the parameters of a
  two-layer network, the expected count computed by PyTorch at check time;
* exercise 3, :func:`check_largest_lr` (experiment or reason, :func:`~mmtutor.exercises.check_properties`): the
  largest learning rate at which full-batch gradient descent still fits a line, checked by running gradient descent at
  the answer's rate and just above it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmtutor.exercises import check, check_function, check_properties, exercise

# --- Exercise 1: the length of each row ------------------------------------------------------------------------

SQUARED = "these are the squared lengths: take the square root of the sum"
L1 = "this is the sum of absolute values (the L1 norm): square the entries instead"
OVER_BATCH = "this sums down the columns (over the batch): sum along each row, dim=-1"


def _rows(generator: torch.Generator) -> tuple[torch.Tensor]:
    """A (B, D) batch of random sizes; one row is all zeros (its length is 0, not NaN)."""
    B, D = (int(n) for n in torch.randint(2, 9, (2,), generator=generator))
    v = 3 * torch.randn(B, D, generator=generator, dtype=torch.float64)
    v[int(torch.randint(0, B, (1,), generator=generator))] = 0
    return (v,)


def _square_rows(generator: torch.Generator) -> tuple[torch.Tensor]:
    """A square batch, on which summing over the wrong dimension still gives the right shape."""
    n = int(torch.randint(3, 7, (1,), generator=generator))
    return (torch.randn(n, n, generator=generator, dtype=torch.float64),)


@exercise(1, tests="writing a batched reduction, the L2 norm of each row, from elementwise operations and sum "
                   "along the right dimension (a warm-up; chapter 6 divides by it)",
          wrong_answers={"forgets the square root": SQUARED, "sums absolute values": L1,
                         "sums over the batch dimension (on a square input)": OVER_BATCH})
def check_l2_norm(l2_norm: Any) -> None:
    r"""Exercise 1: ``l2_norm(v)`` returns :math:`\lVert v_b \rVert_2 = \sqrt{\sum_i v_{bi}^2}` for each row, ``(B, D)
    -> (B,)``. Checked against ``torch.linalg.vector_norm`` on five hidden batches of random sizes (one row all
    zeros), then on two square batches, where a sum over the wrong dimension has the right shape."""
    __tracebackhide__ = True
    mistakes = [(SQUARED, lambda v: v.square().sum(-1)), (L1, lambda v: v.abs().sum(-1)),
                (OVER_BATCH, lambda v: v.square().sum(0).sqrt())]
    hints = ("the length of a row is the square root of the sum of its squared entries",
             "square elementwise, then sum along the last dimension (dim=-1), so that one number is left per row",
             "then take the square root of each sum: the result has shape (B,)")
    check_function("Exercise 1", l2_norm, lambda v: torch.linalg.vector_norm(v, dim=-1), _rows, trials=5,
                   atol=1e-6, rtol=1e-6, mistakes=mistakes, hints=hints)
    check_function("Exercise 1 (square input)", l2_norm, lambda v: torch.linalg.vector_norm(v, dim=-1),
                   _square_rows, trials=2, atol=1e-6, rtol=1e-6, mistakes=mistakes, hints=hints)


# --- Exercise 2: how many numbers does a network learn? ---------------------------------------------------------

NO_BIASES = "you counted the weight matrices only: each linear layer also learns one bias per output"
ONE_LAYER = "you counted the first layer only: the network has two linear layers"
PRODUCT = "you multiplied the layer sizes: each layer's parameters add to the total"
ACTIVATION = "a ReLU learns nothing: only the two linear layers have parameters"


def _network() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@exercise(2, tests="predicting a parameter count: a linear layer's weights (out x in) plus its biases (out), "
                   "added over the layers",
          wrong_answers={"leaves out the biases": NO_BIASES, "counts only the first layer": ONE_LAYER,
                         "multiplies the sizes 8 x 16 x 3": PRODUCT, "gives the ReLU parameters": ACTIVATION},
          answers=lambda: [_count(_network())])
def check_parameter_count(n_parameters: Any) -> None:
    r"""Exercise 2: ``n_parameters``, the number of numbers ``nn.Sequential(nn.Linear(8, 16), nn.ReLU(),
    nn.Linear(16, 3))`` learns, predicted by hand. The expected count is PyTorch's, computed at check time."""
    __tracebackhide__ = True
    model = _network()
    first, second = model[0], model[2]
    mistakes = [(NO_BIASES, first.weight.numel() + second.weight.numel()),
                (ONE_LAYER, _count(first)), (PRODUCT, 8 * 16 * 3),
                (ACTIVATION, _count(model) + 16), (ACTIVATION, _count(model) + 1)]
    if isinstance(n_parameters, float) and n_parameters.is_integer():
        n_parameters = int(n_parameters)
    check("Exercise 2", n_parameters, _count(model), atol=0, rtol=0, mistakes=mistakes,
          hints=("a linear layer y = W x + b learns every entry of W and of b",
                 "nn.Linear(n_in, n_out) has W of shape (n_out, n_in) and b of shape (n_out,)",
                 "add up the two linear layers; nn.ReLU has no parameters"),
          feedback="(PyTorch agrees: sum(p.numel() for p in model.parameters()).)")


# --- Exercise 3: the largest learning rate ----------------------------------------------------------------------

TOO_LARGE = "at your learning rate, gradient descent diverges: the loss grows instead of shrinking"
TOO_SMALL = "a larger learning rate still converges: the largest one is higher than yours"
NOT_A_RATE = "a learning rate is a positive number"
STEPS = 300


def _line_data() -> tuple[torch.Tensor, torch.Tensor]:
    """The exercise's points: x in [0, 2] (not centred, on purpose), y = 3 x - 1 + noise, in float64."""
    x = torch.linspace(0, 2, 256, dtype=torch.float64)
    y = 3 * x - 1 + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return x, y


def _descends(lr: float) -> bool:
    r"""Full-batch gradient descent on :math:`L(w, b) = \frac1N \sum_n (w x_n + b - y_n)^2` from ``(0, 0)``:
    whether the loss after ``STEPS`` steps is below the starting loss (and finite)."""
    x, y = _line_data()
    w = b = torch.zeros((), dtype=torch.float64)
    start = ((w * x + b - y) ** 2).mean()
    for _ in range(STEPS):
        r = w * x + b - y  # (N,) residuals
        w, b = w - lr * 2 * (r * x).mean(), b - lr * 2 * r.mean()
    end = ((w * x + b - y) ** 2).mean()
    return bool(torch.isfinite(end)) and bool(end < start)


def _curvatures() -> list[float]:
    r"""The eigenvalues of the loss's Hessian :math:`H = \frac2N X^\top X`, :math:`X = [x, 1]` (N, 2), ascending:
    the curvature of the loss along its two principal directions (the same everywhere: the loss is quadratic)."""
    x, _ = _line_data()
    X = torch.stack([x, torch.ones_like(x)], dim=1)  # (N, 2)
    return torch.linalg.eigvalsh(2 * X.T @ X / len(x)).tolist()


def largest_stable_rate() -> float:
    r"""The reference: :math:`2 / \lambda_{\max}(H)`; gradient descent converges for rates below it (each step
    multiplies the error along the steepest direction by :math:`1 - \eta \lambda_{\max}`) and diverges above."""
    return 2 / _curvatures()[-1]


@exercise(3, tests="finding, by experiment or from the curvature of the loss, the largest learning rate at which "
                   "full-batch gradient descent on a line still converges (to within 10%)",
          wrong_answers={"a rate above the limit": TOO_LARGE, "a rate well below the limit": TOO_SMALL,
                         "zero, a negative number, or not a number": NOT_A_RATE},
          answers=lambda: [largest_stable_rate(), round(largest_stable_rate(), 2), round(largest_stable_rate(), 3)])
def check_largest_lr(largest_lr: Any) -> None:
    r"""Exercise 3: ``largest_lr``, the largest learning rate at which full-batch gradient descent on the mean
    squared error of ``w x + b`` (x = 256 points evenly spaced in [0, 2]) still converges. Checked by running
    300 steps of gradient descent at the answer's rate (the loss must shrink) and at 1.1 times it (it must
    not): any answer within 10% below the true limit passes, however it was found."""
    __tracebackhide__ = True
    if isinstance(largest_lr, torch.Tensor) and largest_lr.numel() == 1:
        largest_lr = largest_lr.item()  # 2 / eigenvalues.max() is a 0-d tensor: accept it
    positive = lambda lr: not isinstance(lr, bool) and isinstance(lr, int | float) and lr > 0  # noqa: E731
    curvatures = _curvatures()
    check_properties(
        "Exercise 3", largest_lr,
        [("it is a positive number", positive),
         ("gradient descent at this rate converges", _descends),
         ("gradient descent at 1.1 times this rate diverges", lambda lr: not _descends(1.1 * lr))],
        mistakes=[(NOT_A_RATE, lambda lr: not positive(lr)), (TOO_LARGE, lambda lr: not _descends(lr)),
                  (TOO_SMALL, lambda lr: _descends(1.1 * lr))],
        hints=("try it: run gradient descent at a few rates and watch whether the loss shrinks or explodes",
               "in the steepest direction of the loss, one step multiplies the error by (1 - lr * curvature)",
               "the curvatures are the eigenvalues of the Hessian 2 X^T X / N with X = [x, 1]; "
               "it diverges once |1 - lr * largest eigenvalue| > 1"),
        feedback=f"(The limit is 2 / the Hessian's largest eigenvalue, {2 / curvatures[-1]:.4f}. The other "
                 f"eigenvalue is {curvatures[-1] / curvatures[0]:.0f} times smaller: along it, steps of that size "
                 "crawl, which is why inputs are centred and scaled.)")
