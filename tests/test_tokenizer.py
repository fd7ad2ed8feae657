"""Chapter 4: byte-level BPE, against a hand computation, the plain training loop and Hugging Face `tokenizers`.

covers: mmtutor.tokenizer
"""

from __future__ import annotations

from collections import Counter

import pytest
from gensim.test.utils import datapath
from hypothesis import given, settings
from hypothesis import strategies as st

from mmtutor.tokenizer import (
    GPT2_SPLIT,
    BPETokenizer,
    apply_merges,
    bytes_to_unicode,
    learn_merges,
    merge,
    pair_counts,
    split_words,
)


@pytest.fixture(scope="module")
def lee_text() -> str:
    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def lee_tokenizer(lee_text: str) -> BPETokenizer:
    return BPETokenizer.train(lee_text, 400)


def hf_tokenizer_from(tok: BPETokenizer):
    """A `tokenizers` BPE with exactly our vocabulary and merges, GPT-2 byte-level pre-tokenisation."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    b2u = bytes_to_unicode()
    show = {i: "".join(b2u[b] for b in tok.vocab[i]) for i in tok.vocab}
    hf = Tokenizer(models.BPE(vocab={s: i for i, s in show.items()},
                              merges=[(show[a], show[b]) for a, b in tok.merges]))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return hf


# ----------------------------------------------------------------------------- the pieces, by hand
def test_pair_counts_and_merge_by_hand() -> None:
    assert pair_counts([1, 2, 1, 2, 3]) == Counter({(1, 2): 2, (2, 1): 1, (2, 3): 1})
    assert pair_counts([5]) == Counter()
    assert merge([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]  # left to right: (11)1
    assert merge([1, 2], (2, 1), 9) == [1, 2]


def test_apply_merges_by_hand() -> None:
    merges = {(97, 97): 256, (256, 97): 257}
    assert apply_merges([97, 97, 97, 97], merges) == [256, 256]  # rank 0 first, everywhere
    assert apply_merges([97, 97, 97], merges) == [257]
    assert apply_merges([], merges) == [] and apply_merges([5], merges) == [5]


def test_apply_merges_uses_insertion_order_as_rank_and_ids_from_the_table() -> None:
    first = {(1, 2): 50, (50, 3): 7, (2, 3): 99}  # ids unrelated to 256 + rank
    assert apply_merges([1, 2, 3], first) == [7]
    second = {(2, 3): 99, (1, 2): 50, (50, 3): 7}  # same pairs, (2, 3) now merged first
    assert apply_merges([1, 2, 3], second) == [1, 99]
    assert apply_merges([1, 2, 3, 1, 2], first) == [7, 50]


def test_apply_merges_sees_a_table_that_grew() -> None:
    merges = {(1, 2): 10}
    assert apply_merges([1, 2, 3], merges) == [10, 3]
    merges[(10, 3)] = 11
    assert apply_merges([1, 2, 3], merges) == [11]


def test_apply_merges_bad_inputs() -> None:
    with pytest.raises(TypeError, match="merges must be a dict"):
        apply_merges([1, 2], [((1, 2), 3)])
    with pytest.raises(TypeError, match="ids must be a list of ints"):
        apply_merges("ab", {})
    with pytest.raises(TypeError, match="non-int"):
        apply_merges([1.0, 2], {})


def test_training_on_a_tiny_text_equals_the_hand_computation() -> None:
    # "aaabdaaabac": aa occurs 4 times -> 256; then (97, 98) and (256, 97) tie at 2: the smaller pair wins;
    # then (256, 257) twice; then every pair once: the smallest, (97, 99)
    tok = BPETokenizer.train("aaabdaaabac", 260, pattern=None)
    assert tok.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258, (97, 99): 259}
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 259]
    assert tok.vocab[258] == b"aaab" and tok.vocab_size == 260


def test_training_stops_when_no_pair_is_left() -> None:
    tok = BPETokenizer.train("ab ab", 1000)
    assert tok.vocab_size < 1000 and tok.encode("ab ab") == [256, 257]  # 'ab', ' ab'


def plain_bpe(word_counts: dict[bytes, int], n_merges: int) -> dict[tuple[int, int], int]:
    """The readable loop: recount every pair of every pre-token after every merge."""
    words = {w: list(w) for w in word_counts}
    merges = {}
    for new_id in range(256, 256 + n_merges):
        counts = Counter()
        for w, c in word_counts.items():
            pair_counts(words[w], counts, c)
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        merges[best] = new_id
        words = {w: merge(ids, best, new_id) for w, ids in words.items()}
    return merges


def test_incremental_training_equals_the_plain_loop(lee_text: str) -> None:
    word_counts = dict(Counter(p.encode() for p in split_words(lee_text[:20000])))
    assert list(learn_merges(word_counts, 120).items()) == list(plain_bpe(word_counts, 120).items())


# ----------------------------------------------------------------------------- round trip, any unicode
@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_on_any_unicode(text: str) -> None:
    tok = _small_tokenizer()
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    assert "".join(split_words(text)) == text


_SMALL: list[BPETokenizer] = []


def _small_tokenizer() -> BPETokenizer:
    if not _SMALL:
        _SMALL.append(BPETokenizer.train("héllo wörld, 你好世界 🙂🙂 hello world! " * 20, 300))
    return _SMALL[0]


def test_round_trip_chinese_emoji_and_raw_bytes(lee_tokenizer: BPETokenizer) -> None:
    for s in ["你好，世界", "🙂👍🏽 family: 👨‍👩‍👧", "tab\tnew\nline  two  spaces", "", " ", "x" * 500]:
        assert lee_tokenizer.decode(lee_tokenizer.encode(s)) == s
    assert lee_tokenizer.encode("你") == list("你".encode())  # unseen text falls back to its bytes (ids 0-255)
    assert BPETokenizer.train("abc", 256).encode("abc") == [97, 98, 99]  # no merges: raw bytes


# ----------------------------------------------------------------------------- against Hugging Face tokenizers
def test_split_words_equals_the_gpt2_byte_level_pre_tokenizer(lee_text: str) -> None:
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    text = lee_text[:50000] + " it's 2,000 people's 'll o'clock __init__ a\n\n  b"
    theirs = [text[start:end] for _, (start, end) in pre.pre_tokenize_str(text)]
    assert split_words(text) == theirs


def test_encoding_equals_tokenizers_with_the_same_merges(lee_text: str, lee_tokenizer: BPETokenizer) -> None:
    hf = hf_tokenizer_from(lee_tokenizer)
    text = lee_text[-30000:]
    assert lee_tokenizer.encode(text) == hf.encode(text).ids


def test_apply_merges_equals_tokenizers_on_shuffled_merges(lee_text: str, lee_tokenizer: BPETokenizer) -> None:
    # the same merges in another valid order (each merge after the two it joins) with other ids
    import random

    rng = random.Random(0)
    order = list(lee_tokenizer.merges)
    rng.shuffle(order)
    placed, table = set(range(256)), {}
    while order:
        for pair in list(order):
            if pair[0] in placed and pair[1] in placed:
                table[pair] = lee_tokenizer.merges[pair]
                placed.add(table[pair])
                order.remove(pair)
    shuffled = BPETokenizer(table)
    hf = hf_tokenizer_from(shuffled)
    text = lee_text[:20000]
    assert shuffled.encode(text) == hf.encode(text).ids
    assert shuffled.decode(shuffled.encode(text)) == text


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256"):
        BPETokenizer.train("abc", 255)
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("abc", 300.0)
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        BPETokenizer.train(b"abc", 300)
    tok = BPETokenizer.train("abc abc", 260)
    with pytest.raises(TypeError, match="encode expects a str, got list"):
        tok.encode(["abc"])
    with pytest.raises(ValueError, match=r"ids must be ints in \[0, 259\), got 999"):
        tok.decode([97, 999])
    with pytest.raises(ValueError, match="must join two known ids"):
        BPETokenizer({(1, 2): 5})
    with pytest.raises(TypeError, match="text must be a str"):
        split_words(3)
    assert GPT2_SPLIT.startswith("'s")


def test_bytes_to_unicode_is_the_byte_level_alphabet() -> None:
    from tokenizers import pre_tokenizers

    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert sorted(table.values()) == sorted(pre_tokenizers.ByteLevel.alphabet())
    assert table[ord(" ")] == "Ġ" and table[ord("A")] == "A" and table[ord("\n")] == "Ċ"
