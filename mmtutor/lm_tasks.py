r"""Chapter 4's experiments: the Lee corpus as text, training windows, held-out scoring, the LSTM language model.

* :func:`load_lee_documents`, :func:`split_documents`: gensim's Lee background corpus as raw text (300 news
  documents), split by document into training, validation and test text;
* :func:`random_windows`: seeded training batches, random windows of ``context_length + 1`` tokens;
* :func:`next_token_loss`: the mean cross-entropy of predicting every next token (the ``mmtutor.train`` loss);
* :func:`warmup_cosine_adamw`: AdamW with a warm-up then cosine learning-rate schedule that steps itself;
* :func:`mean_loss`: the mean of :func:`next_token_loss` over fixed batches, without gradients (held-out curves);
* :func:`sequence_nll`: the total negative log-likelihood of a long held-out sequence, window by window;
* :class:`LSTMLanguageModel`: chapter 2's ``ContextEncoding`` as a next-token predictor, the recurrent baseline.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._checks import id_tensor, number, positive_int
from .context import ContextEncoding


def load_lee_documents() -> list[str]:
    """gensim's ``lee_background.cor`` as raw text: 300 news documents (one per line), about 360,000 characters."""
    from gensim.test.utils import datapath  # gensim ships the file with its tests: nothing is downloaded

    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def split_documents(documents: list[str], n_valid: int = 30, n_test: int = 30) -> tuple[str, str, str]:
    """``(train, valid, test)`` text: the last ``n_test`` documents, the ``n_valid`` before them, the rest; one
    document per line. Whole documents, so no held-out sentence was half seen in training."""
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise TypeError("documents must be a list of str")
    positive_int("n_valid", n_valid)
    positive_int("n_test", n_test)
    if len(documents) <= n_valid + n_test:
        raise ValueError(f"need more than n_valid + n_test = {n_valid + n_test} documents, got {len(documents)}")
    cut, end = len(documents) - n_valid - n_test, len(documents) - n_test
    return "\n".join(documents[:cut]), "\n".join(documents[cut:end]), "\n".join(documents[end:])


def random_windows(ids: Tensor, context_length: int, batch_size: int, n_batches: int, seed: int = 0) -> list[Tensor]:
    """``n_batches`` batches ``(batch_size, context_length + 1)`` of windows starting at seeded random places of
    ``ids (N,)`` (drawn on the CPU): a window's first ``context_length`` tokens are the input, its last
    ``context_length`` the targets."""
    id_tensor("ids", ids, torch.iinfo(torch.long).max, "(N,)")
    for name, value in (("context_length", context_length), ("batch_size", batch_size), ("n_batches", n_batches)):
        positive_int(name, value)
    if len(ids) < context_length + 2:
        raise ValueError(f"ids has {len(ids)} tokens, too few for windows of {context_length + 1}")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - context_length, (n_batches, batch_size), generator=g)  # (n, B)
    offsets = torch.arange(context_length + 1)  # (T + 1,)
    return list(ids.cpu().long()[starts[..., None] + offsets])  # n x (B, T + 1)


def next_token_loss(model: nn.Module, batch: Tensor) -> Tensor:
    r"""$\mathcal L = -\frac{1}{BT}\sum_{b,t} \log p_\theta(x_{b,t+1} \mid x_{b,\le t})$ for ``batch (B, T + 1)``."""
    logits = model(batch[:, :-1])  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())


def warmup_cosine_adamw(model: nn.Module, lr: float, total_steps: int, warmup: float = 0.1,
                        final_fraction: float = 0.01, weight_decay: float = 0.0) -> torch.optim.AdamW:
    r"""AdamW whose learning rate rises linearly for the first ``warmup`` of ``total_steps``, then follows a
    cosine down to ``final_fraction * lr``:

    $$\eta_s = \eta \min\!\left(1, \frac{s + 1}{s_w}\right) \text{ for } s < s_w, \qquad
      \eta_s = \eta \left(f + (1 - f)\,\frac{1 + \cos(\pi (s - s_w) / (S - s_w))}{2}\right) \text{ after.}$$

    The schedule advances after every ``optimizer.step()`` (a post-step hook), so any training loop, such as
    ``mmtutor.train``, uses it unchanged. AdamW is fused on CPU and CUDA (one kernel for all parameters).
    """
    number("lr", lr, low=0.0, low_open=True)
    positive_int("total_steps", total_steps)
    number("warmup", warmup, 0.0, 1.0, high_open=True)
    number("final_fraction", final_fraction, 0.0, 1.0)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=weight_decay,
                                  fused=device.type in ("cpu", "cuda"))
    s_w = max(1, round(warmup * total_steps))

    def factor(s: int) -> float:
        if s < s_w:
            return (s + 1) / s_w
        progress = min(1.0, (s - s_w) / max(1, total_steps - s_w))
        return final_fraction + (1 - final_fraction) * (1 + math.cos(math.pi * progress)) / 2

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    optimizer.register_step_post_hook(lambda *_: schedule.step())
    return optimizer


@torch.no_grad()
def mean_loss(model: nn.Module, batches: list[Tensor], device: torch.device | str | None = None) -> float:
    """The mean :func:`next_token_loss` (nats per token) over ``batches``, in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    loss = sum(next_token_loss(model, b.to(device)).item() for b in batches) / len(batches)
    model.train(was_training)
    return loss


@torch.no_grad()
def sequence_nll(model: nn.Module, ids: Tensor, context_length: int, stride: int | None = None,
                 batch_size: int = 32, device: torch.device | str | None = None) -> float:
    r"""Total negative log-likelihood (nats) of ``ids[1:]`` given what comes before, $-\sum_t \log p(x_t \mid \dots)$.

    The model reads windows of up to ``context_length`` tokens, one every ``stride`` tokens (default: half a
    window); each target is scored once, in the first window that reaches it, so all but the first window's
    targets are predicted from at least ``context_length - stride`` tokens of context.
    """
    id_tensor("ids", ids, torch.iinfo(torch.long).max, "(N,)")
    positive_int("context_length", context_length)
    stride = max(context_length // 2, 1) if stride is None else positive_int("stride", stride)
    if stride > context_length:
        raise ValueError(f"stride must be <= context_length={context_length}, got {stride}")
    positive_int("batch_size", batch_size)
    if len(ids) < 2:
        raise ValueError(f"ids must hold at least 2 tokens (one to predict), got {len(ids)}")
    ids = ids.cpu().long()
    N = len(ids)
    windows, done = [], 0  # (begin, end, offset of the first target to score); targets 1 .. done are scored
    for begin in range(0, N - 1, stride):
        end = min(begin + context_length, N - 1)  # inputs ids[begin:end] predict ids[begin + 1:end + 1]
        windows.append((begin, end, done - begin))
        done = end
        if end == N - 1:
            break
    was_training = model.training
    model.eval()
    total = 0.0
    for length in sorted({end - begin for begin, end, _ in windows}):  # full windows batch together
        group = [w for w in windows if w[1] - w[0] == length]
        for i in range(0, len(group), batch_size):
            chunk = group[i:i + batch_size]
            x = torch.stack([ids[b:e] for b, e, _ in chunk])  # (b, T)
            y = torch.stack([ids[b + 1:e + 1] for b, e, _ in chunk])  # (b, T)
            logp = torch.log_softmax(model(x.to(device)).double(), dim=-1).cpu()  # (b, T, V)
            nll = -logp.gather(-1, y[..., None]).squeeze(-1)  # (b, T)
            total += sum(nll[row, first:].sum().item() for row, (_, _, first) in enumerate(chunk))
    model.train(was_training)
    return total


class LSTMLanguageModel(nn.Module):
    r"""Chapter 2's LSTM as a language model: $h_t = C(E x_t, h_{t-1})$, $\mathrm{logits}_t = W h_t + b$.

    ``forward(ids (B, T)) -> logits (B, T, V)``; the state starts at zero for every window, as the GPT's
    context does. ``embed_size`` defaults to ``hidden_size``.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 256, embed_size: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        positive_int("vocab_size", vocab_size)
        embed_size = hidden_size if embed_size is None else positive_int("embed_size", embed_size)
        number("dropout", dropout, 0.0, 1.0, high_open=True)
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_size)  # (V, E)
        self.encoder = ContextEncoding(embed_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)  # (V, H)

    def forward(self, ids: Tensor) -> Tensor:
        id_tensor("ids", ids, self.vocab_size, "(B, T)")
        h, _ = self.encoder(self.dropout(self.embedding(ids)))  # (B, T, H)
        return self.head(self.dropout(h))  # (B, T, V)
