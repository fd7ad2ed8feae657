"""Chapter 5 on the real weights: all-MiniLM-L6-v2 and SmolLM2-135M-Instruct against transformers.

covers: mmtutor.pretrained (bert, smollm2, smollm2_tokenizer, gguf_io on the real file)

The references are loaded by transformers from the same files: ``BertModel.from_pretrained`` on the MiniLM
folder and ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(dir, gguf_file=...)`` on the GGUF file
(slow: once per session, in module-scoped fixtures).
"""

from __future__ import annotations

import os

import gguf
import numpy as np
import pytest
import torch

from mmtutor.language_model import KVCache, generate
from mmtutor.pretrained import load_minilm, load_smollm2, sentence_embeddings
from mmtutor.pretrained.bert import minilm_dir
from mmtutor.pretrained.gguf_io import SMOLLM2_FILE, dequantize, read_gguf, smollm2_path
from mmtutor.pretrained.smollm2 import permute_rope

TEXTS = ["What is the capital of France?", "The capital of France is", "Hello world", " leading space",
         "The year 2024 had 365 days; 3.14159 > 3.", "def f(x):\n    return x ** 2  # square\n",
         "for (int i = 0; i < n; ++i) { sum += a[i]; }", "你好，世界！机器学习很有趣。", "Emoji: 🤗👍🏽 café naïve",
         "  two  spaces\n\n\nnewlines\ttab", "It's what we've done, isn't it? They'll say I'd", "<|im_start|>user\nhi"
         "<|im_end|>\n", "ÀÉÎÕÜ Straße Ελληνικά Русский عربي", ""]
CONVERSATIONS = [[{"role": "user", "content": "What is the capital of France?"}],
                 [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}],
                 [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": "How are you?"}]]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One CPU thread for this module: on a shared CPU, threads waiting for each other at every small matrix
    product make the 30-layer forward passes several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- SmolLM2
@pytest.fixture(scope="module")
def smol():
    return load_smollm2()


@pytest.fixture(scope="module")
def hf_smol():
    """transformers' own GGUF loader on the same file (dequantises with gguf, un-permutes q/k itself)."""
    from transformers import AutoModelForCausalLM

    folder = os.path.dirname(smollm2_path())
    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_FILE, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def hf_smol_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.path.dirname(smollm2_path()), gguf_file=SMOLLM2_FILE)


def test_read_gguf_equals_gguf_reader_on_the_smollm2_file():
    ours, ref = read_gguf(smollm2_path()), gguf.GGUFReader(smollm2_path())
    for key, field in ref.fields.items():
        if not key.startswith("GGUF."):
            got = ours.metadata[key]
            assert (got.tolist() if isinstance(got, np.ndarray) else got) == field.contents(), key
    assert [t.name for t in ref.tensors] == list(ours.tensors)
    kinds = set()
    for t in ref.tensors:
        mine = ours.tensors[t.name]
        kinds.add(mine.type_name)
        expected = gguf.dequantize(t.data, t.tensor_type).reshape(mine.shape)
        np.testing.assert_array_equal(dequantize(mine).numpy(), expected, err_msg=t.name)  # bit for bit
    assert kinds == {"F32", "Q4_1", "Q8_0"}


def test_weights_equal_transformers_gguf_loader(smol, hf_smol):
    model, _ = smol
    ref = hf_smol.state_dict()
    ours = model.state_dict()
    assert len(ours) == len(ref)
    for name, w in ours.items():
        ref_name = name if name.startswith("lm_head") else f"model.{name}"
        assert torch.equal(w, ref[ref_name]), name  # same dequantisation, same q/k row order
    assert model.lm_head.weight is model.embed_tokens.weight


def test_logits_equal_transformers(smol, hf_smol):
    model, tokenizer = smol
    prompts = [tokenizer.chat(CONVERSATIONS[0]), "The capital of France is", TEXTS[5], TEXTS[7]]
    for prompt in prompts:
        ids = torch.tensor([tokenizer.encode(prompt)])
        with torch.no_grad():
            ours, ref = model(ids), hf_smol(ids).logits
        assert ours.shape == (1, ids.shape[1], 49152)
        torch.testing.assert_close(ours, ref, atol=2e-4, rtol=1e-4)
        assert torch.equal(ours.argmax(-1), ref.argmax(-1))


def test_greedy_generation_equals_transformers_generate(smol, hf_smol):
    model, tokenizer = smol
    ids = torch.tensor([tokenizer.encode(tokenizer.chat(CONVERSATIONS[0]))])
    ours = generate(model, ids, 20, temperature=0)
    ref = hf_smol.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False,
                           min_new_tokens=20, eos_token_id=None, pad_token_id=2)
    assert torch.equal(ours, ref)
    assert tokenizer.decode(ours[0, ids.shape[1]:]).startswith("The capital of France is Paris.")


def test_cache_chunks_equal_one_forward(smol):
    model, tokenizer = smol
    ids = torch.tensor([tokenizer.encode(TEXTS[4])])
    with torch.no_grad():
        full = model(ids)
        cache = KVCache()
        parts = [model(ids[:, :6], cache=cache)] + [model(ids[:, t:t + 1], cache=cache) for t in range(6, ids.shape[1])]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=2e-4, rtol=1e-4)


def test_forgetting_to_unpermute_gives_wrong_logits(smol):
    model, tokenizer = smol
    ids = torch.tensor([tokenizer.encode(tokenizer.chat(CONVERSATIONS[0]))])
    with torch.no_grad():
        good, good_answer = model(ids)[0].log_softmax(-1), generate(model, ids, 8, temperature=0)
        saved = [(b.self_attn.q_proj.weight.clone(), b.self_attn.k_proj.weight.clone()) for b in model.layers]
        try:
            for b in model.layers:  # the file's row order, as if we had not undone it
                b.self_attn.q_proj.weight.copy_(permute_rope(b.self_attn.q_proj.weight, model.config.n_heads))
                b.self_attn.k_proj.weight.copy_(permute_rope(b.self_attn.k_proj.weight, model.config.n_kv_heads))
            bad, bad_answer = model(ids)[0].log_softmax(-1), generate(model, ids, 8, temperature=0)
        finally:
            for b, (q, k) in zip(model.layers, saved, strict=True):
                b.self_attn.q_proj.weight.copy_(q)
                b.self_attn.k_proj.weight.copy_(k)
    kl = (good.exp() * (good - bad)).sum(-1).mean()  # KL(good || bad) per position
    assert kl > 0.5
    assert "Paris" in tokenizer.decode(good_answer[0, ids.shape[1]:])
    assert "Paris" not in tokenizer.decode(bad_answer[0, ids.shape[1]:])


def test_tokenizer_ids_equal_the_reference(smol, hf_smol_tokenizer):
    _, tokenizer = smol
    for text in TEXTS:
        assert tokenizer.encode(text) == hf_smol_tokenizer.encode(text, add_special_tokens=False), text
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.vocab_size == 49152 and len(tokenizer.merges) == 48900


def test_chat_template_equals_apply_chat_template(smol, hf_smol_tokenizer):
    _, tokenizer = smol
    for messages in CONVERSATIONS:
        expected = hf_smol_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert tokenizer.chat(messages) == expected
    assert tokenizer.chat(CONVERSATIONS[0]).endswith("<|im_start|>assistant\n")
    with pytest.raises(TypeError):
        tokenizer.chat([{"role": "user"}])


def test_smollm2_bad_inputs(smol):
    model, tokenizer = smol
    with pytest.raises(ValueError, match="49152"):
        model(torch.tensor([[1, 49152]]))
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, model.context_length + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="context_length"):
        generate(model, torch.zeros(1, 8190, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="49152"):
        tokenizer.decode([49152])
    with pytest.raises(TypeError):
        tokenizer.encode(b"bytes")


# ----------------------------------------------------------------------------- MiniLM (BERT)
@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


@pytest.fixture(scope="module")
def hf_minilm():
    from transformers import AutoTokenizer, BertModel

    return BertModel.from_pretrained(minilm_dir()).eval(), AutoTokenizer.from_pretrained(minilm_dir())


BERT_TEXTS = ["A man is eating food.", "The bank of the river was muddy.", "I deposited money at the bank.",
              "Ünïcödé café, naïve résumé!", "Machine-learning (ML) costs $1,000.50?", "机器学习", "x",
              "the " * 300]


def test_bert_tokenizer_ids_equal_the_reference(minilm, hf_minilm):
    _, tokenizer = minilm
    _, ref = hf_minilm
    for text in BERT_TEXTS:
        assert tokenizer.encode(text) == ref(text)["input_ids"], text
    ids = tokenizer.encode("hello")
    assert ids[0] == ref.cls_token_id and ids[-1] == ref.sep_token_id


def test_bert_hidden_states_equal_bert_model(minilm, hf_minilm):
    model, tokenizer = minilm
    ref_model, ref_tok = hf_minilm
    texts = BERT_TEXTS[:7]
    ids, mask = tokenizer.batch(texts)
    enc = ref_tok(texts, padding=True, return_tensors="pt")
    assert torch.equal(ids, enc["input_ids"]) and torch.equal(mask.long(), enc["attention_mask"])
    with torch.no_grad():
        ours, ref = model(ids, mask), ref_model(**enc).last_hidden_state
    assert ours.shape == (len(texts), ids.shape[1], 384)
    real = mask[..., None].expand_as(ours)
    torch.testing.assert_close(ours[real], ref[real], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model(ids, enc["attention_mask"]), ours)  # a 0/1 mask works too
    one = model(torch.tensor([tokenizer.encode(texts[0])]))  # alone, without padding: the same states
    torch.testing.assert_close(one[0], ours[0, :one.shape[1]], atol=1e-4, rtol=1e-4)


def test_sentence_embeddings_follow_the_model_card(hf_minilm):
    ref_model, ref_tok = hf_minilm
    texts = BERT_TEXTS  # the last one is longer than 256 tokens: cut, as sentence-transformers does
    e = sentence_embeddings(texts, batch_size=3)
    enc = ref_tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        h = ref_model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()  # the model card's mean_pooling, as written there
    expected = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)
    assert e.shape == (len(texts), 384)
    torch.testing.assert_close(e, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(len(texts)))
    # meaning: the two "bank" sentences are closer to each other than to the man eating
    sim = e @ e.T
    assert sim[1, 2] > sim[0, 1] and sim[1, 2] > sim[0, 2]


def test_bert_bad_inputs(minilm):
    model, tokenizer = minilm
    with pytest.raises(ValueError, match="30522"):
        model(torch.tensor([[101, 30522, 102]]))
    with pytest.raises(ValueError, match="512"):
        model(torch.zeros(1, 513, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.tensor([[101, 102]]), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one real token"):
        model(torch.tensor([[101, 102]]), torch.zeros(1, 2, dtype=torch.bool))
    with pytest.raises(TypeError):
        sentence_embeddings("one string, not a list")
    with pytest.raises(ValueError):
        sentence_embeddings([])
