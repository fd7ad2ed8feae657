r"""Chapters 8 and 9: the write-up's applications, each built from the parts of chapters 1 to 7.

* :mod:`~mmtutor.applications.metrics`: how the fields score a ranking or a classifier (average precision,
  nDCG, recall and hit rate at k, precision at k) and bootstrap confidence intervals;
* :mod:`~mmtutor.applications.retrieval`: information retrieval, TF-IDF and BM25 in a few lines, the mean of
  word vectors, agreement with human similarity judgements;
* :mod:`~mmtutor.applications.rag`: retrieval-augmented generation, the prompt and the scoring of answers;
* :mod:`~mmtutor.applications.translation`: word translation by aligning two embedding spaces (least squares,
  orthogonal Procrustes) and nearest-neighbour search;
* :mod:`~mmtutor.applications.recommend`: a two-tower recommender trained with CLIP's loss, and the baselines;
* :mod:`~mmtutor.applications.sentiment`: linear probes on frozen features.

Import each from its module (``from mmtutor.applications.retrieval import BM25``); nothing is loaded here.
"""
