r"""Chapter 5: SmolLM2's tokenizer is chapter 4's byte-level BPE, with the file's merges.

A GGUF file carries its tokenizer as metadata: ``tokenizer.ggml.tokens`` (49,152 strings, id order),
``tokenizer.ggml.merges`` (48,900 pairs ``"a b"``, best first), ``tokenizer.ggml.token_type`` (3 = control
tokens such as ``<|im_start|>``) and ``tokenizer.chat_template`` (a Jinja template). Encoding is:

1. cut the text at the control tokens, which stay whole;
2. pre-tokenise the rest as the model was trained (``tokenizer.ggml.pre = "smollm"``): every digit on its own,
   then GPT-2's pattern (a word with its leading space, a number, punctuation, white space);
3. write each piece as bytes, each byte as the id of its one-byte token, and merge pairs in rank order with
   :func:`mmtutor.tokenizer.apply_merges`, chapter 4's BPE.

Tokens are spelled in GPT-2's byte alphabet (chapter 4's :func:`mmtutor.tokenizer.bytes_to_unicode`:
printable bytes stand for themselves, the others are shifted to unused code points, so a space is ``"Ġ"`` and a
newline ``"Ċ"``).
"""

from __future__ import annotations

import functools

import regex

from ..tokenizer import apply_merges, bytes_to_unicode
from .gguf_io import GGUFFile

# GPT-2's pre-tokenisation pattern (as in the tokenizers library's ByteLevel pre-tokenizer), after the digits
GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
DIGIT_SPLIT = regex.compile(r"\p{N}|[^\p{N}]+")
DIGIT = regex.compile(r"\p{N}")
CONTROL = 3  # tokenizer.ggml.token_type of special tokens


def pre_tokenize(text: str) -> list[str]:
    """SmolLM2's pieces: each digit alone, the rest by :data:`GPT2_PATTERN`."""
    pieces = []
    for run in DIGIT_SPLIT.findall(text):
        pieces.extend([run] if DIGIT.fullmatch(run) else GPT2_PATTERN.findall(run))
    return pieces


class SmolLM2Tokenizer:
    r"""Byte-level BPE with the vocabulary and merges of a GGUF file.

    ``encode(text) -> list[int]`` (no special tokens added; control tokens written in the text, such as
    ``<|im_start|>``, become their ids); ``decode(ids) -> str``; ``chat(messages)`` renders the file's chat
    template with the generation prompt. ``vocab_size``, ``eos_id`` (``<|im_end|>`` for the instruct model).
    """

    def __init__(self, tokens: list[str], merges: list[str], token_types: list[int] | None = None,
                 chat_template: str | None = None, bos_id: int | None = None, eos_id: int | None = None) -> None:
        if not tokens or not all(isinstance(t, str) for t in tokens):
            raise TypeError("tokens must be a non-empty list of strings")
        self.tokens = list(tokens)
        self.token_to_id = {t: i for i, t in enumerate(self.tokens)}
        self.byte_char = bytes_to_unicode()
        self.char_byte = {c: b for b, c in self.byte_char.items()}
        # byte b -> the id of its one-byte token; None for the few bytes the vocabulary lacks (SmolLM2 has no
        # token for 21 bytes, such as 0xC0, which UTF-8 never uses): they are dropped, as the reference does
        self.byte_ids = [self.token_to_id.get(self.byte_char[b]) for b in range(256)]
        self.merges: dict[tuple[int, int], int] = {}  # (left id, right id) -> merged id, best rank first
        for rank, merge in enumerate(merges):
            left, right = merge.split(" ")
            try:
                pair = (self.token_to_id[left], self.token_to_id[right])
                self.merges.setdefault(pair, self.token_to_id[left + right])
            except KeyError as err:
                raise ValueError(f"merge {rank} {merge!r} names a token that is not in the vocabulary") from err
        types = list(token_types) if token_types is not None else [1] * len(tokens)
        self.special = {t: i for i, (t, kind) in enumerate(zip(self.tokens, types, strict=True)) if kind == CONTROL}
        alternatives = sorted(self.special, key=len, reverse=True)  # longest first
        self._special_split = regex.compile("(" + "|".join(map(regex.escape, alternatives)) + ")") if alternatives \
            else None
        self.chat_template, self.bos_id, self.eos_id = chat_template, bos_id, eos_id
        self._encode_piece = functools.lru_cache(maxsize=65536)(self._bpe)

    @classmethod
    def from_gguf(cls, gguf: GGUFFile) -> SmolLM2Tokenizer:
        meta = gguf.metadata
        if meta.get("tokenizer.ggml.model") != "gpt2":
            raise ValueError(f"expected a byte-level BPE ('gpt2') tokenizer, got {meta.get('tokenizer.ggml.model')!r}")
        return cls(meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.merges"],
                   [int(t) for t in meta["tokenizer.ggml.token_type"]], meta.get("tokenizer.chat_template"),
                   meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id"))

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def _bpe(self, piece: str) -> tuple[int, ...]:
        ids = [i for i in (self.byte_ids[b] for b in piece.encode("utf-8")) if i is not None]  # one per byte
        return tuple(apply_merges(ids, self.merges))  # chapter 4: merge the best-ranked pair until none applies

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        parts = self._special_split.split(text) if self._special_split else [text]
        ids: list[int] = []
        for part in parts:
            if part in self.special:
                ids.append(self.special[part])
            elif part:
                for piece in pre_tokenize(part):
                    ids.extend(self._encode_piece(piece))
        return ids

    def decode(self, ids: list[int], skip_special: bool = False) -> str:
        ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got {bad[0]}")
        text = "".join(self.tokens[i] for i in ids if not (skip_special and self.tokens[i] in self.special))
        return bytes(self.char_byte[c] for c in text).decode("utf-8", errors="replace")

    def token_strings(self, ids: list[int]) -> list[str]:
        """Each id as readable text (its bytes decoded, a lone byte of a longer character shown as ``<0xNN>``)."""
        out = []
        for i in ids:
            raw = bytes(self.char_byte[c] for c in self.tokens[int(i)])
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append("".join(f"<0x{b:02X}>" for b in raw))
        return out

    def chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        r"""The conversation rendered with the file's chat template (Jinja, sandboxed, as transformers renders
        it): ``messages`` a list of ``{"role": ..., "content": str}``; ends with the assistant's header."""
        if self.chat_template is None:
            raise ValueError("this tokenizer has no chat template")
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            raise TypeError("messages must be a list of dicts with str 'role' and 'content'")
        return _template(self.chat_template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                    bos_token=self._name(self.bos_id),
                                                    eos_token=self._name(self.eos_id))

    def _name(self, i: int | None) -> str:
        return "" if i is None else self.tokens[i]


@functools.lru_cache(maxsize=4)
def _template(source: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # jinja2 comes with jupyter (and transformers)

    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(source)
