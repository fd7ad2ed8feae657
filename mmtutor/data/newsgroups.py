r"""Real 20-Newsgroups posts with their group labels, read from gensim's test data without trusting a pickle.

gensim ships ``mini_newsgroup``: 200 posts of two groups (``alt.atheism``, ``sci.space``, 100 each), saved long
ago as a zlib-compressed Python 2 pickle of a scikit-learn ``Bunch`` (``data``, ``target``, ``target_names``,
``filenames``). Unpickling runs whatever callables the file names, so a bare ``pickle.loads`` of a file is
never safe. :class:`RestrictedUnpickler` allows exactly the six globals this file needs, each replaced by a
stand-in that can only build what it should (a plain ``dict`` for the long-gone ``sklearn.datasets.base.Bunch``,
an empty NumPy array, a non-object NumPy dtype); any other global raises :class:`pickle.UnpicklingError`
before anything is called.

Each post starts with mail headers, one of which (``Newsgroups:``) names the label; :func:`strip_headers`
keeps the subject line and the body only, so a model cannot read the answer off the header.
"""

from __future__ import annotations

import functools
import io
import pickle
import zlib
from dataclasses import dataclass

import numpy as np


def _plain_dict(cls: object, base: object, state: object) -> dict:
    # copy_reg._reconstructor(cls, base, state) builds base.__new__(cls, state); here only dict(state) is possible
    if cls is not dict or base is not dict or not isinstance(state, dict):
        raise pickle.UnpicklingError(f"_reconstructor may only rebuild a dict, got {cls!r}, {base!r}")
    return dict(state)


def _empty_array(cls: object, shape: object, dtype: object) -> np.ndarray:
    # numpy.core.multiarray._reconstruct: an empty array that BUILD then fills from raw bytes
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"only plain numpy arrays may be rebuilt, got {cls!r}")
    return np.ndarray(shape, dtype if isinstance(dtype, np.dtype) else _plain_dtype(dtype))


def _plain_dtype(spec: object, align: object = False, copy: object = False) -> np.dtype:
    if not isinstance(spec, str | np.dtype):
        raise pickle.UnpicklingError(f"a numpy dtype must be named by a string, got {type(spec).__name__}")
    dtype = np.dtype(spec, bool(align), bool(copy))
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"object dtypes may hold any Python object and are refused, got {spec!r}")
    return dtype


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in :attr:`ALLOWED`, each to a safe stand-in.

    ``find_class(module, name)`` is the one place a pickle can reach code; here it answers from a fixed
    table and raises :class:`pickle.UnpicklingError` naming anything else (``os.system``, ``builtins.eval``).
    """

    ALLOWED = {
        ("sklearn.datasets.base", "Bunch"): dict,  # the class the file names, long gone from scikit-learn
        ("copy_reg", "_reconstructor"): _plain_dict,
        ("__builtin__", "dict"): dict,
        ("numpy.core.multiarray", "_reconstruct"): _empty_array,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _plain_dtype,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}: only "
                                         f"{sorted(f'{m}.{n}' for m, n in self.ALLOWED)} are allowed") from None


def restricted_loads(data: bytes) -> object:
    """``pickle.loads`` through :class:`RestrictedUnpickler` (Python 2 strings read as latin-1, as NumPy needs)."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def strip_headers(post: str) -> str:
    """The subject and the body of a post: the header block (up to the first blank line) goes, except ``Subject:``."""
    if not isinstance(post, str):
        raise TypeError(f"post must be a str, got {type(post).__name__}")
    head, _, body = post.partition("\n\n")
    subject = next((line[len("Subject:"):].strip() for line in head.splitlines() if line.startswith("Subject:")), "")
    return (subject + "\n" + body.strip()).strip()


@dataclass(frozen=True)
class Newsgroups:
    texts: tuple[str, ...]  # subject + body of each post, headers removed
    labels: tuple[int, ...]  # group of each post, an index into group_names
    group_names: tuple[str, ...]  # ("alt.atheism", "sci.space")


@functools.lru_cache(maxsize=1)
def load_mini_newsgroups() -> Newsgroups:
    """gensim's 200 newsgroup posts (two groups, 100 each), headers stripped, in the file's order."""
    from gensim.test.utils import datapath

    with open(datapath("mini_newsgroup"), "rb") as f:
        bunch = restricted_loads(zlib.decompress(f.read()))
    if not isinstance(bunch, dict) or not {"data", "target", "target_names"} <= set(bunch):
        raise ValueError("mini_newsgroup did not hold a Bunch with data, target and target_names")
    texts = tuple(strip_headers(str(post)) for post in bunch["data"])
    labels = tuple(int(t) for t in np.asarray(bunch["target"]))
    names = tuple(str(n) for n in bunch["target_names"])
    if len(texts) != len(labels) or not all(0 <= t < len(names) for t in labels):
        raise ValueError(f"mini_newsgroup: {len(texts)} posts, {len(labels)} labels, groups {names}")
    return Newsgroups(texts, labels, names)
