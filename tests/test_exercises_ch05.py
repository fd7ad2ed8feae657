"""Chapter 5's exercise checks: right answers pass, typical wrong ones get their message, stubs say TODO.

The checks that need a model run here on a small random Llama with a toy tokenizer (the logic does not depend on
the weights); the expected values for SmolLM2 itself are checked against the formula.

covers: mmtutor.exercises.ch05
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from mmtutor.exercises import ExerciseFailed, ch05
from mmtutor.pretrained.llama import Llama, LlamaConfig, apply_rope, kv_cache_bytes, parameter_count, rope_angles

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = LlamaConfig(vocab_size=40, context_length=64, d_model=32, n_layers=4, n_heads=4, n_kv_heads=2, d_ff=48)


class ToyTokenizer:
    """One id per word (a leading space kept), enough for the prompt and the target."""

    words = ["The", " capital", " of", " France", " is", " Paris"]

    def encode(self, text: str) -> list[int]:
        out, rest = [], text
        while rest:
            word = next(w for w in self.words if rest.startswith(w))
            out.append(self.words.index(word) + 1)
            rest = rest[len(word):]
        return out


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Llama(TINY).eval(), ToyTokenizer()


def _rope(x, positions, base):
    cos, sin = rope_angles(positions, x.shape[-1], base)
    return apply_rope(x, cos, sin)


def test_check_rope(capsys):
    ch05.check_rope(_rope)
    ch05.check_rope(ch05._rope_reference)
    assert capsys.readouterr().out.count("PASS Exercise 1") == 2
    wrong = ((ch05._adjacent, "adjacent pairs"),
             (lambda x, p, b: ch05._rotate(x, ch05._angles(p, x.shape[-1], b).float(), -1.0), "other way"),
             (lambda x, p, b: _rope(x, torch.arange(len(p)), b), "need not start at 0"),
             (lambda x, p, b: ch05._rotate(x, ch05._angles(p, x.shape[-1], b, step=1).float()), "too slowly"))
    for fn, message in wrong:
        with pytest.raises(ExerciseFailed, match=message):
            ch05.check_rope(fn)


def test_check_kv_cache_bytes(tiny, capsys):
    model, _ = tiny
    per_token = 2 * TINY.n_layers * TINY.n_kv_heads * TINY.head_dim * 4
    weights = 4 * parameter_count(model)
    gqa, mha, tokens = per_token * 8192, per_token * 8192 * TINY.n_heads // TINY.n_kv_heads, weights // per_token + 1
    ch05.check_kv_cache_bytes(gqa, mha, tokens, model)
    ch05.check_kv_cache_bytes(float(gqa), mha, weights / per_token, model)  # "from about how many tokens on"
    assert capsys.readouterr().out.count("PASS Exercise 2") == 6
    for args, message in (((gqa // 2, mha, tokens), "keys only"), ((gqa // TINY.n_layers, mha, tokens), "one layer"),
                          ((8 * gqa, mha, tokens), "bits"), ((mha, mha, tokens), "n_kv_heads"),
                          ((gqa, gqa, tokens), "grouped-query count"),
                          ((gqa, mha, weights / (per_token * TINY.n_heads // TINY.n_kv_heads)), "own cache")):
        with pytest.raises(ExerciseFailed, match=message) as failure:
            ch05.check_kv_cache_bytes(*args, model)
        assert str(gqa) not in str(failure.value) and str(mha) not in str(failure.value)


def test_smollm2_answers_follow_the_formula():
    gqa, mha, tokens = ch05._smollm2_answers()
    c = LlamaConfig()
    assert gqa == 2 * 30 * 3 * 64 * 8192 * 4 == kv_cache_bytes(c, 8192)
    assert mha == 3 * gqa == kv_cache_bytes(dataclasses.replace(c, n_kv_heads=9), 8192)
    assert 11_000 < tokens < 12_500  # about 538 MB of float32 weights over 45 KiB a token


def _skipping(model, tokenizer):
    def p_paris_without(layer):
        block = model.layers[layer]
        model.layers[layer] = Skip()
        try:
            return _p(model, tokenizer)
        finally:
            model.layers[layer] = block
    return p_paris_without


class Skip(nn.Module):
    def forward(self, x, *args, **kwargs):
        return x


def _p(model, tokenizer):
    ids = torch.tensor([tokenizer.encode(ch05.PROMPT)])
    with torch.no_grad():
        return model(ids)[0, -1].softmax(-1)[tokenizer.encode(ch05.TARGET)[0]].item()


def test_check_skipped_layer(tiny, capsys):
    model, tok = tiny
    p = {name: ch05.p_paris_skipping(model, tok, layer) for name, layer in ch05._candidates(model).items()}
    worst = min(p, key=p.get)
    assert len(set(p.values())) == 3 and ch05._candidates(model) == {"first": 0, "middle": 2, "last": 3}
    ch05.check_skipped_layer(_skipping(model, tok), worst.upper(), model, tok)
    out = capsys.readouterr().out
    assert out.count("PASS Exercise 3") == 3 and "without block 0" in out
    other = next(name for name in p if name != worst)
    with pytest.raises(ExerciseFailed, match=r"Exercise 3 \(prediction\)"):
        ch05.check_skipped_layer(_skipping(model, tok), other, model, tok)
    with pytest.raises(ExerciseFailed, match="one of the words"):
        ch05.check_skipped_layer(_skipping(model, tok), "second", model, tok)

    def forgets_to_restore(layer):
        model.layers[layer] = Skip()
        return _p(model, tok)

    blocks = list(model.layers)
    try:
        with pytest.raises(ExerciseFailed, match="not as it was"):
            ch05.check_skipped_layer(forgets_to_restore, worst, model, tok)
    finally:
        model.layers = nn.ModuleList(blocks)
    with pytest.raises(ExerciseFailed, match="hidden test input"):
        ch05.check_skipped_layer(lambda layer: _p(model, tok), worst, model, tok)  # skips nothing


def test_check_sense_of(capsys):
    ch05.check_sense_of(ch05.HIDDEN_BANK.get)
    wrong_once = dict(ch05.HIDDEN_BANK, **{next(iter(ch05.HIDDEN_BANK)): "river"})
    ch05.check_sense_of(wrong_once.get)  # 7 of 8 right
    assert capsys.readouterr().out.count("PASS Exercise 4") == 2
    for fn, message in ((lambda text: "money", "same meaning"), (lambda text: "bank", "'river' or 'money'"),
                        (lambda text: "river" if len(text) % 2 else "money", "at least 7"), (42, "function")):
        with pytest.raises(ExerciseFailed, match=message):
            ch05.check_sense_of(fn)


def test_stubs_say_todo(tiny, capsys):
    model, tok = tiny

    def stub(*args):
        raise NotImplementedError("Exercise")

    ch05.check_rope(stub)
    ch05.check_kv_cache_bytes(..., ..., ..., model)
    ch05.check_skipped_layer(stub, ..., model, tok)
    ch05.check_sense_of(stub)
    ch05.check_sense_of(...)
    out = capsys.readouterr().out
    assert out.count("TODO Exercise") == 1 + 3 + 2 + 2 and "PASS" not in out
