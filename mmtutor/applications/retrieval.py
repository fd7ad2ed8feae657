r"""Information retrieval: rank documents for a query by TF-IDF, BM25, mean word vectors or sentence embeddings.

Every method turns documents into vectors (or scores) that chapter 6's search ranks:

* :class:`TfIdf`: $w_{t,d} = \mathrm{tf}_{t,d}\cdot\mathrm{idf}_t$, rows scaled to unit length, so cosine is a dot
  product (scikit-learn's ``TfidfVectorizer`` defaults: $\mathrm{idf}_t = \ln\frac{1 + N}{1 + \mathrm{df}_t} + 1$);
* :class:`BM25` and :func:`bm25_term_weight`: Robertson and Zaragoza's ranking function, a term frequency that
  saturates ($k_1$) and is normalised by document length ($b$);
* :func:`mean_word_vectors`: chapter 1's word vectors averaged over a document's words;
* :func:`pairwise_spearman`: how well a model's document similarities rank pairs as people did;
* :func:`drop_seen`: remove items a query must not get back (itself, what a user already read) from a ranking.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import float_tensor, number
from ..word2vec import spearman


def _check_docs(docs: object, name: str = "docs") -> list[list[str]]:
    if isinstance(docs, str) or not isinstance(docs, Sequence) or not docs:
        raise TypeError(f"{name} must be a non-empty list of token lists (tokenize each text first)")
    if any(isinstance(d, str) or not isinstance(d, Sequence) for d in docs):
        raise TypeError(f"each of {name} must be a list of tokens, not a string; call tokenize(text) first")
    return [list(d) for d in docs]


class TfIdf:
    r"""TF-IDF vectors with a vocabulary and document frequencies learned by :meth:`fit`.

    $$\mathrm{idf}_t = \ln\frac{1 + N}{1 + \mathrm{df}_t} + 1, \qquad
      \vec x_d = \frac{(\mathrm{tf}_{t,d}\,\mathrm{idf}_t)_t}{\lVert(\mathrm{tf}_{t,d}\,\mathrm{idf}_t)_t\rVert_2}$$

    $N$ documents, $\mathrm{df}_t$ of which contain term $t$, $\mathrm{tf}_{t,d}$ its count in $d$ (the smoothed
    idf of scikit-learn's ``TfidfVectorizer``, as if one extra document held every term). Words unseen by
    ``fit`` are ignored by :meth:`transform`.
    """

    def fit(self, docs: Sequence[Sequence[str]]) -> TfIdf:
        docs = _check_docs(docs)
        df = Counter(t for d in docs for t in set(d))
        self.terms: list[str] = sorted(df)
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.terms)}
        n = len(docs)
        self.idf = torch.tensor([math.log((1 + n) / (1 + df[t])) + 1 for t in self.terms], dtype=torch.float64)
        return self

    def transform(self, docs: Sequence[Sequence[str]]) -> Tensor:
        """``(N, V)`` float32 unit rows (a document with no known word is a zero row)."""
        if not hasattr(self, "idf"):
            raise RuntimeError("call TfIdf().fit(docs) before transform")
        docs = _check_docs(docs)
        tf = torch.zeros(len(docs), len(self.terms), dtype=torch.float64)  # (N, V) counts
        for i, d in enumerate(docs):
            for t, c in Counter(t for t in d if t in self.index).items():
                tf[i, self.index[t]] = c
        return F.normalize(tf * self.idf, dim=1).float()


def bm25_term_weight(tf: Tensor, df: Tensor, n_docs: int, doc_len: Tensor, avg_len: float,
                     k1: float = 1.5, b: float = 0.75) -> Tensor:
    r"""BM25's weight of a term in a document (Robertson and Zaragoza 2009), elementwise:

    $$w = \underbrace{\ln\Big(1 + \frac{N - \mathrm{df} + 0.5}{\mathrm{df} + 0.5}\Big)}_{\mathrm{idf}}
      \cdot \frac{\mathrm{tf}\,(k_1 + 1)}{\mathrm{tf} + k_1\big(1 - b + b\,\frac{|d|}{\mathrm{avgdl}}\big)}$$

    ``tf`` the term's count in the document, ``df`` the documents that contain it, ``N`` = ``n_docs``,
    ``doc_len`` = $|d|$ in tokens, ``avg_len`` their mean. The second factor rises with ``tf`` but never past
    $k_1 + 1$ (saturation); a long document needs more occurrences for the same weight ($b$). The idf is
    Lucene's, which stays positive even for a term in more than half the documents. Tensors broadcast.
    """
    number("k1", k1, 0.0)
    number("b", b, 0.0, 1.0)
    idf = torch.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avg_len))


class BM25:
    r"""A BM25 index over tokenised documents: :meth:`scores` of a query is $\sum_{t \in q} w_{t,d}$ for every $d$.

    :meth:`__init__` computes every weight $w_{t,d}$ once, a matrix ``weights (N, V)`` over the documents'
    vocabulary, so a query is one matrix product with its term counts. Each occurrence of a term in the query
    counts once (a term repeated twice counts twice); words no document has score 0.
    ``idf="atire"`` uses $\ln(N / \mathrm{df})$ instead of Lucene's idf, as gensim's ``AtireBM25Model``.
    """

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, idf: str = "lucene") -> None:
        docs = _check_docs(docs)
        self.k1, self.b = number("k1", k1, 0.0), number("b", b, 0.0, 1.0)
        if idf not in ("lucene", "atire"):
            raise ValueError(f"idf must be 'lucene' or 'atire', got {idf!r}")
        self.index: dict[str, int] = {t: j for j, t in enumerate(sorted({t for d in docs for t in d}))}
        self.n_docs = len(docs)
        tf = torch.zeros(self.n_docs, len(self.index), dtype=torch.float64)  # (N, V) term counts
        for i, d in enumerate(docs):
            for t, c in Counter(d).items():
                tf[i, self.index[t]] = c
        df = (tf > 0).sum(0).double()  # (V,)
        self.doc_len = tf.sum(1)  # (N,) tokens per document
        self.avg_len = self.doc_len.mean().item()
        if idf == "lucene":
            self.weights = bm25_term_weight(tf, df, self.n_docs, self.doc_len[:, None], self.avg_len, self.k1, self.b)
        else:  # the same saturation, ATIRE's idf
            length = 1 - self.b + self.b * self.doc_len[:, None] / self.avg_len
            self.weights = torch.log(self.n_docs / df) * tf * (self.k1 + 1) / (tf + self.k1 * length)

    def _counts(self, queries: Sequence[Sequence[str]]) -> Tensor:
        q = torch.zeros(len(queries), len(self.index), dtype=torch.float64)  # (Q, V)
        for i, query in enumerate(queries):
            if isinstance(query, str):
                raise TypeError("each query must be a list of tokens; call tokenize(text) first")
            for t in query:
                if t in self.index:
                    q[i, self.index[t]] += 1
        return q

    def term_weights(self, term: str) -> Tensor:
        """``(N,)``: the weight of ``term`` in every document (0 where it does not occur)."""
        if term not in self.index:
            return torch.zeros(self.n_docs, dtype=torch.float64)
        return self.weights[:, self.index[term]]

    def scores(self, query: Sequence[str]) -> Tensor:
        """``(N,)`` float64: the BM25 score of every document for ``query`` (a list of tokens)."""
        if isinstance(query, str):
            raise TypeError("query must be a list of tokens; call tokenize(text) first")
        return self.score_matrix([query])[0]

    def score_matrix(self, queries: Sequence[Sequence[str]]) -> Tensor:
        """``(Q, N)``: :meth:`scores` of every query, one matrix product."""
        return self._counts(_check_docs(queries, "queries")) @ self.weights.T


def mean_word_vectors(docs: Sequence[Sequence[str]], E: Tensor, stoi: Mapping[str, int]) -> tuple[Tensor, Tensor]:
    r"""$\vec d = \frac{1}{|d'|}\sum_{w \in d'} E(w)$ over the words $d'$ of each document that ``stoi`` knows.

    Returns ``(vectors (N, D), coverage (N,))``: coverage is the share of each document's tokens that had a
    vector; a document with none gets the zero vector (cosine 0 with everything).
    """
    docs = _check_docs(docs)
    E = float_tensor("E", E, "(V, D)")
    vectors = torch.zeros(len(docs), E.shape[1], dtype=E.dtype, device=E.device)
    coverage = torch.zeros(len(docs))
    for i, d in enumerate(docs):
        ids = [stoi[w] for w in d if w in stoi]
        if ids:
            vectors[i] = E[torch.tensor(ids, device=E.device)].mean(0)
        coverage[i] = len(ids) / max(len(d), 1)
    return vectors, coverage


def pairwise_spearman(similarity: Tensor, human: Tensor) -> float:
    r"""Spearman's $\rho$ between a model's and people's similarity over the pairs $i < j$ (upper triangle).

    ``similarity`` and ``human`` are ``(N, N)``; the diagonal (a document with itself) is left out.
    """
    S, H = float_tensor("similarity", similarity, "(N, N)"), float_tensor("human", human, "(N, N)")
    if S.shape != H.shape or S.shape[0] != S.shape[1]:
        raise ValueError(f"similarity and human must be square and of one size, got {tuple(S.shape)}, {tuple(H.shape)}")
    i, j = torch.triu_indices(S.shape[0], S.shape[0], offset=1)
    return spearman(S[i, j].double().cpu(), H[i, j].double().cpu())


def drop_seen(indices: Tensor, seen: Tensor, k: int) -> Tensor:
    """The first ``k`` indices of each row that are not marked in ``seen (Q, N)`` bool: ``(Q, k)``.

    Search for ``k`` plus the most items any query has seen, then drop those: what a search engine does to
    leave a query document out of its own results, or a recommender what the user already read.
    """
    if not isinstance(seen, Tensor) or seen.dtype != torch.bool or seen.ndim != 2 or seen.shape[0] != indices.shape[0]:
        raise ValueError(f"seen must be a bool tensor (Q={indices.shape[0]}, N), got "
                         f"{getattr(seen, 'dtype', type(seen).__name__)} {tuple(getattr(seen, 'shape', ()))}")
    hidden = seen.gather(1, indices.clamp(min=0)) & (indices >= 0)  # (Q, K) found but seen
    keep = ~hidden
    if bool((keep.sum(1) < k).any()):
        raise ValueError(f"some row has fewer than k={k} unseen items: search for more candidates")
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :k]  # unseen first, order kept
    return indices.gather(1, order)
