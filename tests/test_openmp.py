"""The faiss import guard: faiss as it is on Linux, one OpenMP thread and the duplicate-runtime switch on macOS,
None without faiss.

covers: mmtutor._openmp
"""

import sys

import pytest

from mmtutor import _openmp


@pytest.fixture
def faiss_threads():
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    yield faiss
    faiss.omp_set_num_threads(before)


def test_elsewhere_faiss_is_imported_as_it_is(monkeypatch, faiss_threads):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("KMP_DUPLICATE_LIB_OK", raising=False)
    faiss_threads.omp_set_num_threads(2)
    assert _openmp.import_faiss() is faiss_threads
    assert faiss_threads.omp_get_max_threads() == 2
    assert "KMP_DUPLICATE_LIB_OK" not in _openmp.os.environ
    assert "torch" in sys.modules


def test_on_macos_faiss_runs_one_thread_and_the_second_runtime_may_load(monkeypatch, faiss_threads):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("KMP_DUPLICATE_LIB_OK", raising=False)
    faiss_threads.omp_set_num_threads(2)
    assert _openmp.import_faiss() is faiss_threads
    assert faiss_threads.omp_get_max_threads() == 1
    assert _openmp.os.environ["KMP_DUPLICATE_LIB_OK"] == "TRUE"


def test_on_macos_a_setting_of_the_user_is_kept(monkeypatch, faiss_threads):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("KMP_DUPLICATE_LIB_OK", "FALSE")
    _openmp.import_faiss()
    assert _openmp.os.environ["KMP_DUPLICATE_LIB_OK"] == "FALSE"


def test_without_faiss_it_returns_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ModuleNotFoundError
    assert _openmp.import_faiss() is None


def test_an_error_inside_faiss_is_not_hidden(monkeypatch):
    def broken(name):
        raise ModuleNotFoundError("No module named 'numpy.core'", name="numpy.core")
    monkeypatch.setattr(_openmp.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="numpy.core"):
        _openmp.import_faiss()
