r"""Chapter 5's exercises (pretrained transformers): the references, hidden probes and typical wrong answers live
here. The notebook's check cells are one line each, ``ch05.check_<what>(...)``:

* exercise 1, :func:`check_rope` (change, :func:`~mmtutor.exercises.check_function`): rotary position
  embeddings for one head, against ``transformers``' ``LlamaRotaryEmbedding`` and ``apply_rotary_pos_emb`` on
  hidden inputs of random sizes, bases and starting positions;
* exercise 2, :func:`check_kv_cache_bytes` (predict three numbers, :func:`~mmtutor.exercises.check`): the bytes of
  SmolLM2's KV cache after 8,192 tokens with grouped-query attention and with one key/value head per query head,
  and the length from which the cache outweighs the float32 weights; the expected values come from
  :func:`~mmtutor.pretrained.llama.kv_cache_bytes` and the model's parameter count at check time;
* exercise 3, :func:`check_skipped_layer` (ablate, then predict): the probability of " Paris" with one block
  skipped, against a forward hook that passes the block's input on, on hidden layers; the model must be left as
  it was; which of the first, a middle and the last block hurts most, measured by the check;
* exercise 4, :func:`check_sense_of` (explore, :func:`~mmtutor.exercises.check_properties`): a rule that tells the
  two meanings of "bank" apart from BERT's contextual vectors, asked about hidden sentences it has not seen.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from mmtutor.exercises import check, check_function, check_properties, exercise
from mmtutor.pretrained.llama import Llama, LlamaConfig, kv_cache_bytes, parameter_count

# --- Exercise 1: RoPE for one head ------------------------------------------------------------------------------

ADJACENT = ("you rotated adjacent pairs (x[2i], x[2i + 1]), the layout of the RoFormer paper; Llama and transformers "
            "pair x[i] with x[i + d/2]")
OTHER_WAY = "you rotated the other way round: the first half becomes x1 cos - x2 sin, the second x1 sin + x2 cos"
FROM_ZERO = "you rotated row t by t: use the given positions, which need not start at 0"
FREQUENCY = "the angle of pair i is position * base ** (-2i / d): your frequencies fall too slowly"


def _rope_reference(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """``transformers``' Llama rotary embedding of one head ``x (T, d)`` at ``positions (T,)``."""
    from transformers.models.llama import modeling_llama as hf_llama  # imported here: it is slow to import

    rotary = hf_llama.LlamaRotaryEmbedding(hf_llama.LlamaConfig(hidden_size=x.shape[-1], num_attention_heads=1,
                                                                rope_theta=base))
    cos, sin = rotary(x, positions[None])
    return hf_llama.apply_rotary_pos_emb(x[None, None], x[None, None], cos, sin)[0][0, 0]


def _rotate(x: torch.Tensor, theta: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2, c, s = x[:, :half], x[:, half:], theta.cos(), sign * theta.sin()
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


def _angles(positions: torch.Tensor, d: int, base: float, step: int = 2) -> torch.Tensor:
    return positions.double()[:, None] * base ** (-torch.arange(0, step * d // 2, step, dtype=torch.float64) / d)


def _adjacent(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    T, d = x.shape
    theta = _angles(positions, d, base).float()
    pairs = x.view(T, d // 2, 2)
    c, s = theta.cos(), theta.sin()
    return torch.stack([pairs[..., 0] * c - pairs[..., 1] * s, pairs[..., 0] * s + pairs[..., 1] * c], -1).view(T, d)


def _rope_inputs(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One head's (T, d) rows (d even, 2..64), positions starting anywhere in 0..499, a base of 10^3..10^6."""
    T, half = int(torch.randint(2, 12, (1,), generator=generator)), int(torch.randint(1, 33, (1,), generator=generator))
    start = int(torch.randint(0, 500, (1,), generator=generator))
    base = float(10 ** int(torch.randint(3, 7, (1,), generator=generator)))
    return torch.randn(T, 2 * half, generator=generator), torch.arange(start, start + T), base


@exercise(1, tests="rotary position embeddings for one head from their equation: pair (x_i, x_{i+d/2}) of row t "
                   "turned by positions[t] * base^(-2i/d), as Llama and transformers do",
          wrong_answers={"adjacent pairs (the RoFormer layout)": ADJACENT, "rotated the other way": OTHER_WAY,
                         "positions 0..T-1 instead of the given ones": FROM_ZERO,
                         "base^(-i/d) instead of base^(-2i/d)": FREQUENCY})
def check_rope(my_rope: Any) -> None:
    r"""Exercise 1: ``my_rope(x, positions, base)`` rotates one head's rows ``x (T, d)`` at integer ``positions
    (T,)``; compared with ``transformers``' ``LlamaRotaryEmbedding`` and ``apply_rotary_pos_emb`` on 4 hidden
    inputs (random sizes, bases and first positions)."""
    __tracebackhide__ = True
    d_of = lambda x: x.shape[-1]  # noqa: E731
    check_function("Exercise 1", my_rope, _rope_reference, _rope_inputs, trials=4, atol=1e-4, rtol=1e-4,
                   mistakes=[(ADJACENT, _adjacent),
                             (OTHER_WAY, lambda x, p, b: _rotate(x, _angles(p, d_of(x), b).float(), -1.0)),
                             (FROM_ZERO, lambda x, p, b: _rotate(x, _angles(torch.arange(len(p)), d_of(x), b).float())),
                             (FREQUENCY, lambda x, p, b: _rotate(x, _angles(p, d_of(x), b, step=1).float()))],
                   hints=("section 3: pair i of a row is (x[:, i], x[:, i + d/2]), i = 0 .. d/2 - 1",
                          "its angle at row t is positions[t] * base ** (-2 i / d): a (T, d/2) table of angles",
                          "with x1, x2 the two halves: [x1 cos - x2 sin, x1 sin + x2 cos], concatenated"))


# --- Exercise 2: what grouped-query attention saves -------------------------------------------------------------

KV_TOKENS = 8192
KEYS_ONLY = "you counted the keys only: the cache keeps a value vector beside every key"
ONE_LAYER = "you counted one layer: each of the 30 blocks keeps its own keys and values"
HALF_PRECISION = "that is float16 (2 bytes a number): the task asks for float32, 4 bytes"
BITS = "that is bits: divide by 8 for bytes"
QUERY_HEADS = "that is the count with a key/value head per query head: SmolLM2 keeps only n_kv_heads of them"
GROUPED = "that is the grouped-query count: here every one of the n_heads query heads has its own key/value head"
MHA_CACHE = "that is where a cache with a key/value head per query head outweighs them: use SmolLM2's own cache"


def _per_token(config: LlamaConfig) -> int:
    return kv_cache_bytes(config, 1)


def _expected_kv(config: LlamaConfig, weight_bytes: int) -> tuple[int, int, int]:
    mha = dataclasses.replace(config, n_kv_heads=config.n_heads)
    return (kv_cache_bytes(config, KV_TOKENS), kv_cache_bytes(mha, KV_TOKENS),
            weight_bytes // _per_token(config) + 1)  # the first length whose cache holds more bytes than the weights


def _smollm2_answers() -> list[int]:
    """The expected values for SmolLM2-135M (for the student-copy leak test), its size counted on the meta device."""
    with torch.device("meta"):
        n = parameter_count(Llama(LlamaConfig()))
    return list(_expected_kv(LlamaConfig(), 4 * n))


@exercise(2, tests="predicting the KV cache of a real model from its configuration: 2 x layers x key/value heads x "
                   "head_dim x tokens x 4 bytes, what sharing key/value heads saves, and when the cache outweighs "
                   "the weights",
          wrong_answers={"keys only": KEYS_ONLY, "one layer": ONE_LAYER, "float16": HALF_PRECISION, "bits": BITS,
                         "query heads instead of key/value heads": QUERY_HEADS,
                         "the grouped-query count for the other cache": GROUPED,
                         "the length for the other cache": MHA_CACHE},
          answers=_smollm2_answers)
def check_kv_cache_bytes(kv_bytes_gqa: Any, kv_bytes_mha: Any, tokens_to_outweigh: Any, model: nn.Module) -> None:
    r"""Exercise 2: ``kv_bytes_gqa``, the bytes of the float32 KV cache of ``model`` (SmolLM2, its ``config``)
    after 8,192 tokens; ``kv_bytes_mha``, the same if every query head had its own key/value head;
    ``tokens_to_outweigh``, the first length at which the grouped-query cache holds more bytes than the model's
    float32 weights (within 2%). Computed here from the model's configuration and parameter count."""
    __tracebackhide__ = True
    config = model.config
    weight_bytes = 4 * parameter_count(model)
    gqa, mha, tokens = _expected_kv(config, weight_bytes)
    per_layer = gqa // config.n_layers
    hints = ("each block keeps, for every token so far, one key and one value vector per key/value head",
             "a key (or value) vector of one head has head_dim numbers; n_kv_heads of them per block",
             "multiply: 2 (keys and values) x n_layers x n_kv_heads x head_dim x tokens x 4 bytes")
    check("Exercise 2 (grouped-query)", kv_bytes_gqa, gqa, atol=0, rtol=0, hints=hints,
          mistakes=[(KEYS_ONLY, gqa // 2), (ONE_LAYER, per_layer), (HALF_PRECISION, gqa // 2),
                    (BITS, 8 * gqa), (QUERY_HEADS, mha)])
    check("Exercise 2 (one key/value head per query head)", kv_bytes_mha, mha, atol=0, rtol=0,
          mistakes=[(GROUPED, gqa), (KEYS_ONLY, mha // 2), (HALF_PRECISION, mha // 2), (BITS, 8 * mha)],
          hints=("the same product with n_heads key/value heads instead of n_kv_heads",))
    check("Exercise 2 (longer than the weights)", tokens_to_outweigh, float(tokens), atol=0, rtol=0.02,
          mistakes=[(MHA_CACHE, weight_bytes / _per_token(dataclasses.replace(config, n_kv_heads=config.n_heads)))],
          hints=("the weights take 4 bytes per parameter (parameter_count(llm) of them)",
                 "divide the weights' bytes by the cache's bytes per token"),
          feedback=f"(Weights {weight_bytes / 2**20:.0f} MiB in float32; the grouped-query cache grows by "
                   f"{_per_token(config) / 2**10:.0f} KiB a token, {config.n_heads // config.n_kv_heads} times "
                   "less than one key/value head per query head would.)")


# --- Exercise 3: which layer knows Paris? -----------------------------------------------------------------------

PROMPT, TARGET = "The capital of France is", " Paris"
CHANGED = ("the model is not as it was after your function ran: put the block back (try ... finally), or skip it "
           "without replacing it")
POSITIONS = "answer with one of the words 'first', 'middle' and 'last'"


def _paris(model: nn.Module, tokenizer: Any) -> tuple[torch.Tensor, int]:
    device = next(model.parameters()).device
    return torch.tensor([tokenizer.encode(PROMPT)], device=device), tokenizer.encode(TARGET)[0]


def p_paris_skipping(model: nn.Module, tokenizer: Any, layer: int) -> float:
    r"""The reference: p(" Paris" | "The capital of France is") with block ``layer`` skipped by a forward hook
    that returns the block's input unchanged."""
    ids, paris = _paris(model, tokenizer)
    hook = model.layers[layer].register_forward_hook(lambda module, args, output: args[0])  # output := input
    try:
        with torch.no_grad():
            return model(ids)[0, -1].softmax(-1)[paris].item()
    finally:
        hook.remove()


def _candidates(model: nn.Module) -> dict[str, int]:
    L = len(model.layers)
    return {"first": 0, "middle": L // 2, "last": L - 1}


@exercise(3, tests="ablating a pretrained model: skipping one block (its input passed on) and measuring what the "
                   "prediction ' Paris' loses, leaving the model as it was; predicting whether the first, a middle "
                   "or the last block matters most",
          wrong_answers={"leaves the model changed": CHANGED, "another kind of answer to the prediction": POSITIONS})
def check_skipped_layer(p_paris_without: Any, which_hurts_most: Any, model: nn.Module, tokenizer: Any) -> None:
    r"""Exercise 3: ``p_paris_without(layer)``, the probability of " Paris" after "The capital of France is" with
    block ``layer`` of ``model`` skipped, compared with :func:`p_paris_skipping` on 3 hidden layers; the model's
    logits must be the same after each call as before. ``which_hurts_most``: ``"first"``, ``"middle"`` or
    ``"last"``, the block (0, L // 2 or L - 1) whose removal leaves the smallest probability, measured here."""
    __tracebackhide__ = True
    ids, paris = _paris(model, tokenizer)
    with torch.no_grad():
        before = model(ids)
    unchanged: list[bool] = []

    def probed(layer: int) -> Any:  # the learner's function, and whether it left the model as it was
        out = p_paris_without(layer)
        with torch.no_grad():
            unchanged.append(torch.equal(model(ids), before))
        return out

    n_layers = len(model.layers)
    check_function("Exercise 3", probed if callable(p_paris_without) else p_paris_without,
                   lambda layer: p_paris_skipping(model, tokenizer, layer),
                   lambda g: (int(torch.randint(0, n_layers, (1,), generator=g)),), trials=3, atol=1e-5, rtol=1e-3,
                   hints=("a block is model.layers[layer]; its forward gets the hidden states first",
                          "replace it by a module that returns its first argument, or register a forward hook "
                          "that returns args[0], and undo that before you return"))
    if unchanged:
        check_properties("Exercise 3 (the model unchanged)", p_paris_without,
                         [("the model gives the same logits after your function ran as before",
                           lambda _: all(unchanged))], mistakes=[(CHANGED, lambda _: not all(unchanged))])
    answer = which_hurts_most.strip().lower() if isinstance(which_hurts_most, str) else which_hurts_most
    if answer is not Ellipsis and answer not in _candidates(model):
        check_properties("Exercise 3 (prediction)", answer,
                         [("it is one of 'first', 'middle' and 'last'", lambda a: a in _candidates(model))],
                         mistakes=[(POSITIONS, lambda a: a not in _candidates(model))])
    p = {name: p_paris_skipping(model, tokenizer, layer) for name, layer in _candidates(model).items()}
    full = before[0, -1].softmax(-1)[paris].item()
    check("Exercise 3 (prediction)", answer, min(p, key=p.get),
          hints=("run your function for layer 0, len(llm.layers) // 2 and len(llm.layers) - 1 and compare",),
          feedback=f"(p(' Paris') = {full:.2f} with every block; without block 0: {p['first']:.2g}, without block "
                   f"{_candidates(model)['middle']}: {p['middle']:.2g}, without the last: {p['last']:.2g}.)")


# --- Exercise 4: tell the meanings of "bank" apart ---------------------------------------------------------------

HIDDEN_BANK = {  # sentences the notebook never shows, with the meaning of "bank" in each
    "I need to go to the bank to cash a cheque.": "money", "Fish swam near the bank of the stream.": "river",
    "The bank approved my loan.": "money", "Grass grew along the river bank.": "river",
    "They robbed the bank on Friday.": "money", "We had a picnic on the grassy bank.": "river",
    "The bank charges a fee for every transfer.": "money", "Reeds grew thick along the bank of the pond.": "river",
}
SENSES = ("river", "money")
MIN_RIGHT = 7  # of the 8 hidden sentences
CONSTANT = "your rule gives every sentence the same meaning: compare the vector of 'bank' with the examples"


def _senses_given(sense_of: Any) -> dict[str, Any]:
    return {text: sense_of(text) for text in HIDDEN_BANK}


@exercise(4, tests="using contextual vectors: a rule (nearest example, nearest mean...) that tells the river bank "
                   "from the money bank in sentences it has not seen",
          wrong_answers={"the same meaning for every sentence": CONSTANT})
def check_sense_of(sense_of: Any) -> None:
    r"""Exercise 4: ``sense_of(text)`` returns ``"river"`` or ``"money"`` for a sentence containing "bank"; asked
    about 8 hidden sentences, it must answer with one of the two and get at least 7 right."""
    __tracebackhide__ = True
    answers: dict[str, Any] = {}

    def given(fn: Any) -> dict[str, Any]:
        if not answers:
            answers.update(_senses_given(fn))
        return answers

    right = lambda fn: sum(given(fn)[t] == s for t, s in HIDDEN_BANK.items())  # noqa: E731
    check_properties("Exercise 4", sense_of,
                     [("it is a function of one sentence", callable),
                      ("it answers 'river' or 'money' for every sentence",
                       lambda fn: all(isinstance(a, str) and a in SENSES for a in given(fn).values())),
                      (f"it gets at least {MIN_RIGHT} of the {len(HIDDEN_BANK)} hidden sentences right",
                       lambda fn: right(fn) >= MIN_RIGHT)],
                     mistakes=[(CONSTANT, lambda fn: len(set(given(fn).values())) == 1
                                and next(iter(given(fn).values())) in SENSES)],
                     hints=("contextual_vector(text, 'bank') gives BERT's vector of 'bank' in any sentence",
                            "compare it (cosine_similarity) with the vectors of the examples in contexts['bank']: "
                            "the first two are rivers, the last two money"))
