r"""English and Italian word vectors with a small bilingual dictionary: the data of Mikolov et al. (2013),
"Exploiting similarities among languages for machine translation", as gensim's tests ship it.

* ``EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt`` and ``IT.1-10...txt``: word2vec text files, 300-d
  CBOW vectors trained separately on English and Italian text, 20 words each;
* ``OPUS_en_it_europarl_train_one2ten.txt``: 20 English-Italian word pairs (from OPUS Europarl): the numbers
  one to ten, five animals, five fruits. One pair is wrong as shipped: "fish" is paired with "cavallo"
  (horse); it is kept, as in gensim, and the chapter says so.
"""

from __future__ import annotations

import functools

import torch

EN_VECTORS = "EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt"
IT_VECTORS = "IT.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt"
DICTIONARY = "OPUS_en_it_europarl_train_one2ten.txt"


def _datapath(name: str) -> str:
    from gensim.test.utils import datapath

    return datapath(name)


def read_word2vec_text(path: str) -> tuple[list[str], torch.Tensor]:
    """A word2vec text file (a ``count dim`` header, then ``word v_1 ... v_dim`` per line): ``(words, (V, dim))``."""
    with open(path, encoding="utf-8") as f:
        count, dim = (int(v) for v in f.readline().split())
        words, rows = [], []
        for line in f:
            parts = line.rstrip().split(" ")
            if len(parts) != dim + 1:
                raise ValueError(f"{path}: expected a word and {dim} numbers, got {len(parts)} fields")
            words.append(parts[0])
            rows.append([float(v) for v in parts[1:]])
    if len(words) != count:
        raise ValueError(f"{path}: the header promises {count} words, found {len(words)}")
    return words, torch.tensor(rows, dtype=torch.float32)


@functools.lru_cache(maxsize=1)
def load_en_it() -> tuple[list[str], torch.Tensor, list[str], torch.Tensor, list[tuple[str, str]]]:
    """``(en_words, E_en (20, 300), it_words, E_it (20, 300), pairs)``: the vectors and the 20 dictionary pairs.

    Cached: do not change the tensors in place.
    """
    en_words, E_en = read_word2vec_text(_datapath(EN_VECTORS))
    it_words, E_it = read_word2vec_text(_datapath(IT_VECTORS))
    with open(_datapath(DICTIONARY), encoding="utf-8") as f:
        pairs = [tuple(line.split()) for line in f if line.strip()]
    missing = [p for p in pairs if len(p) != 2 or p[0] not in en_words or p[1] not in it_words]
    if missing:
        raise ValueError(f"dictionary pairs without vectors: {missing}")
    return en_words, E_en, it_words, E_it, pairs
