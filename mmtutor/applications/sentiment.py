r"""Sentiment as understanding: how much of a sentence's polarity can a straight line read off its vector?

A **linear probe** freezes an encoder and fits only logistic regression on its output,

$$p(y = 1 \mid \vec x) = \sigma(\vec w \cdot \vec x + c), \qquad
  \min_{\vec w, c}\ \frac{1}{n}\sum_i \mathrm{BCE}\big(\sigma(\vec w \cdot \vec x_i + c), y_i\big)
  + \frac{\lambda}{2}\lVert \vec w \rVert^2,$$

so its accuracy measures what the features already hold, not what a classifier on top could learn. With 200
sentences every number is noisy: :func:`cross_validated_predictions` predicts every sentence once, by a model
fitted on the other folds, and :mod:`~mmtutor.applications.metrics` turns the per-sentence hits into intervals.

* :func:`fit_logistic`: the probe, full-batch L-BFGS on the convex loss (scikit-learn's ``LogisticRegression``
  minimises the same loss with $C = 1 / (\lambda n)$);
* :func:`stratified_folds`: seeded folds with both labels in the proportions of the whole set;
* :func:`cross_validated_predictions`: the predicted label of every item from any ``fit_predict`` function.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import float_tensor, number, positive_int


def fit_logistic(x: Tensor, y: Tensor, weight_decay: float = 1e-2, max_iter: int = 200) -> tuple[Tensor, Tensor]:
    r"""Logistic regression ``(w (D,), c ())`` minimising mean cross-entropy + $\frac{\lambda}{2}\lVert w\rVert^2$.

    ``x (n, D)`` features, ``y (n,)`` labels in {0, 1}, $\lambda$ = ``weight_decay`` (the bias ``c`` is not
    penalised).
    Solved in float64 with L-BFGS, so the optimum does not depend on a learning rate.
    """
    x = float_tensor("x", x, "(n, D)").double()
    if y.shape != (x.shape[0],) or not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(f"y must hold one label 0 or 1 per row of x ({x.shape[0]}), got shape {tuple(y.shape)}")
    lam = number("weight_decay", weight_decay, 0.0)
    y = y.double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    c = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, c], lr=1, max_iter=positive_int("max_iter", max_iter), tolerance_grad=1e-10,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w + c, y) + lam / 2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), c.detach()


def probe_predict(train_x: Tensor, train_y: Tensor, test_x: Tensor, weight_decay: float = 1e-2) -> Tensor:
    """Fit :func:`fit_logistic` on standardised training features and predict labels ``(m,)`` for ``test_x``.

    Standardising (each feature to mean 0, variance 1 on the training rows) lets one ``weight_decay`` serve
    features of any scale.
    """
    mean, std = train_x.double().mean(0), train_x.double().std(0).clamp(min=1e-8)
    w, c = fit_logistic((train_x.double() - mean) / std, train_y, weight_decay)
    return (((test_x.double() - mean) / std) @ w + c > 0).long()


def stratified_folds(labels: Tensor, n_folds: int = 10, seed: int = 0) -> Tensor:
    """The fold (0 .. ``n_folds - 1``) of every item, ``(n,)``: each label's items shuffled and dealt in turn."""
    n_folds = positive_int("n_folds", n_folds, minimum=2)
    if labels.ndim != 1 or len(labels) < n_folds:
        raise ValueError(f"labels must be 1-D with at least n_folds={n_folds} items, got {tuple(labels.shape)}")
    g = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(labels), dtype=torch.long)
    for value in labels.unique():
        items = (labels == value).nonzero().squeeze(1)
        items = items[torch.randperm(len(items), generator=g)]
        fold[items] = torch.arange(len(items)) % n_folds
    return fold


def cross_validated_predictions(fit_predict: Callable[[Tensor, Tensor], Tensor], n: int, labels: Tensor,
                                n_folds: int = 10, seed: int = 0) -> Tensor:
    """The label predicted for every item ``(n,)`` by ``fit_predict(train_idx, test_idx)`` on the other folds.

    ``fit_predict`` receives the indices of the training and the test items of one fold and returns the
    predicted labels of the test items (any model: a probe on frozen features, or a network trained from scratch).
    """
    positive_int("n", n)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    fold = stratified_folds(labels, n_folds, seed)
    predicted = torch.full((n,), -1, dtype=torch.long)
    for f in range(n_folds):
        test, train = (fold == f).nonzero().squeeze(1), (fold != f).nonzero().squeeze(1)
        out = torch.as_tensor(fit_predict(train, test)).long().cpu()
        if out.shape != test.shape:
            raise ValueError(f"fit_predict returned {tuple(out.shape)} predictions for {len(test)} test items")
        predicted[test] = out
    return predicted
