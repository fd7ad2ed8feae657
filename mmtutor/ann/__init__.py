r"""Chapter 6: approximate nearest-neighbour indexes, each small enough to read in one sitting.

Exact search scores every database vector. These indexes score fewer, or cheaper, vectors:

* ``kmeans`` (:mod:`mmtutor.ann.cluster`): Lloyd's algorithm,
  $c_j = \mathrm{mean}\{x_i : j = \arg\min_l \lVert x_i - c_l\rVert\}$
  (spherical variant for cosine: assign by $\arg\max_l x_i\cdot c_l$, renormalise the means).
* ``IVFIndex`` (:mod:`mmtutor.ann.ivf`): an inverted file. k-means cuts the space into ``n_lists`` cells; a
  query scores only the vectors of its ``n_probe`` nearest cells (faiss ``IndexIVFFlat``).
* ``LSHIndex`` (:mod:`mmtutor.ann.lsh`): random-hyperplane LSH,
  $h(x) = [\,r_1\cdot x \ge 0, \dots, r_b\cdot x \ge 0\,]$; two vectors at angle $\theta$ share a bit with
  probability $1 - \theta/\pi$. Vectors sharing a bucket in any of ``n_tables`` tables become candidates,
  re-ranked by exact cosine.
* ``PQIndex`` (:mod:`mmtutor.ann.pq`): product quantisation. Each vector becomes ``m`` one-byte codes (the
  nearest of 256 centroids in each of ``m`` sub-spaces); scores are sums of ``m`` table look-ups,
  $q\cdot x \approx \sum_j q^{(j)}\cdot c^{(j)}_{\mathrm{code}_j(x)}$ (faiss ``IndexPQ``).

All of them search by cosine: vectors are normalised when added, queries when searched. Each
``search(queries, k, ...)`` returns ``(scores (Q, k), indices (Q, k))`` like ``topk_search``, with index -1
and score -inf where fewer than k vectors were found. Each index also has ``reference_search``, the same
search in a few readable lines (one query at a time, in torch): the fast ``search`` is tested against it.
"""

from .cluster import kmeans
from .ivf import IVFIndex
from .lsh import LSHIndex
from .pq import PQIndex

__all__ = ["kmeans", "IVFIndex", "LSHIndex", "PQIndex"]
