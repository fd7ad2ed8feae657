"""`make slides`: every chapter carries slide metadata for a lecture-length deck that does not project the
solutions, and the decks built from the executed notebooks work in a room without network: opened in headless
Chromium with the network unavailable, reveal.js starts with the slides the metadata asks for, MathJax typesets
the math, the plots are shown.

A small notebook (an equation, a plot, a subslide, notes, a skipped cell, a fragment) is executed here, so the
deck machinery is tested without the book; the chapter decks are built and checked too when the book build's
executed copies are there and up to date (tests/test_book.py builds them earlier in the same run).

covers: mmtutor.slides (count_slides, stale_chapters, build_deck, build_decks, on the real notebooks)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mmtutor.slides import (
    EXECUTED,
    SLIDE_TYPES,
    SLIDES,
    build_deck,
    build_decks,
    chapter_notebooks,
    count_slides,
    slide_types,
    stale_chapters,
)
from mmtutor.student import SOLUTION_TAG

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = chapter_notebooks()
MIN_SLIDES, MAX_SLIDES = 15, 60


# --- the metadata of the chapters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_cell_has_a_slide_type(path):
    types = slide_types(nbformat.read(path, as_version=4))
    missing = [i for i, t in enumerate(types) if t is None]
    wrong = {i: t for i, t in enumerate(types) if t is not None and t not in SLIDE_TYPES}
    assert not missing, f"{path.name}: cells {missing} have no metadata.slideshow.slide_type"
    assert not wrong, f"{path.name}: unknown slide types {wrong} (allowed: {sorted(SLIDE_TYPES)})"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_deck_has_a_lecture_length(path):
    # the slides reveal.js shows and counts: each slide and each subslide under it (a derivation's steps)
    n = count_slides(nbformat.read(path, as_version=4), vertical=True)
    assert MIN_SLIDES <= n <= MAX_SLIDES, f"{path.name}: {n} slides and subslides, not {MIN_SLIDES} to {MAX_SLIDES}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_solutions_are_not_on_the_slides(path):
    nb = nbformat.read(path, as_version=4)
    shown = [i for i, (cell, kind) in enumerate(zip(nb.cells, slide_types(nb), strict=True))
             if SOLUTION_TAG in cell.metadata.get("tags", []) and kind not in (None, "skip")]
    assert not shown, f"{path.name}: solution cells {shown} would be projected (give them slide_type 'skip')"


# --- one small deck, built from a notebook executed here ----------------------------------------------------------

def _cell(kind: str, source: str, slide_type: str) -> nbformat.NotebookNode:
    cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source)
    cell.metadata.slideshow = {"slide_type": slide_type}
    return cell


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[nbformat.NotebookNode, Path]:
    """A notebook with an equation, a plot, a subslide, notes, a skipped cell and a fragment, executed in a
    kernel (network blocked, as for every child of the test run) and turned into a deck."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    nb.cells = [_cell("markdown", "# Sigmoid\nThe loss $L = -\\log \\sigma(u^\\top v)$ pulls pairs together.", "slide"),
                _cell("code", "import matplotlib.pyplot as plt\nimport numpy as np\nx = np.linspace(-6, 6, 50)\n"
                              "plt.figure(figsize=(4, 2.5)); plt.plot(x, 1 / (1 + np.exp(-x))); plt.show()", "-"),
                _cell("markdown", "$$\\sigma(x) = \\frac{1}{1 + e^{-x}}$$", "subslide"),
                _cell("markdown", "Say: the sigmoid saturates on both sides.", "notes"),
                _cell("code", "SECRET_SETUP = 42", "skip"),
                _cell("markdown", "## A second slide", "slide"),
                _cell("markdown", "It appears on a click.", "fragment")]
    NotebookClient(nb, timeout=120).execute()
    folder = tmp_path_factory.mktemp("slides")
    nbformat.write(nb, folder / "01_example.ipynb")
    return nb, build_deck(folder / "01_example.ipynb", folder / "slides")


def test_count_slides_of_the_example(example):
    nb, _ = example
    assert (count_slides(nb), count_slides(nb, vertical=True)) == (2, 3)
    skipped_first = nbformat.v4.new_notebook(cells=[_cell("code", "x = 1", "skip"), _cell("markdown", "a", "-"),
                                                    _cell("markdown", "b", "subslide")])
    assert (count_slides(skipped_first), count_slides(skipped_first, vertical=True)) == (1, 2)


_REMOTE = [r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//",  # a tag loading a URL
           r"url\(\s*[\"']?(?:https?:)?//", r"@import\s+[\"']?(?:url\()?[\"']?(?:https?:)?//",  # CSS
           r"\bimport\b[^;]*[\"'](?:https?:)?//", r"cdnjs|unpkg\.com|jsdelivr"]                  # JS modules, CDNs


def _assert_offline(deck: Path) -> None:
    html = deck.read_text(encoding="utf-8")
    for pattern in _REMOTE:
        found = re.search(pattern, html, flags=re.I)
        assert not found, f"{deck.name} loads from the network: ...{html[found.start():found.start() + 160]}..."
    local = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=[\"']([^\"']+)[\"']", html)
    assert any(src.endswith("reveal.js/dist/reveal.js") for src in local), f"{deck.name}: reveal.js not loaded"
    assert any(src.endswith("mathjax/tex-chtml.js") for src in local), f"{deck.name}: MathJax not loaded"
    for src in local:
        assert (deck.parent / src).is_file(), f"{deck.name}: {src} is not next to the deck"


def test_example_deck_loads_nothing_from_the_network(example):
    nb, deck = example
    _assert_offline(deck)
    html = deck.read_text(encoding="utf-8")
    assert "SECRET_SETUP" not in html, "a skipped cell is on the slides"
    assert re.search(r"<aside class=\"notes\">.*saturates", html, flags=re.S), "the speaker notes are missing"
    assert html.count("data:image/png;base64,") >= 1, "the plot is not inline"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("Chromium is not installed (apt-get install chromium)")


def _browse(url: str, tmp_path: Path, *extra: str) -> str:
    """The DOM of ``url`` after its scripts ran, in headless Chromium with no network (as tests/test_book.py)."""
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
               f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--proxy-server=http://127.0.0.1:9", "--virtual-time-budget=20000", *extra, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"chromium failed on {url}:\n{done.stderr[-3000:]}"
    return done.stdout


def _shown_pictures(nb: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """(horizontal, vertical) index of the slide of each PNG output of a cell that is on a slide."""
    where, h, v, started = [], -1, 0, False
    for cell, kind in zip(nb.cells, [t or "-" for t in slide_types(nb)], strict=True):
        if kind in ("skip", "notes"):
            continue
        if not started or kind == "slide":
            h, v, started = h + 1, 0, True
        elif kind == "subslide":
            v += 1
        where += [(h, v) for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    return where


def _assert_deck_works(nb: nbformat.NotebookNode, deck: Path, tmp_path: Path) -> str:
    dom = _browse(deck.as_uri(), tmp_path, "--dump-dom")
    ready = re.search(r"<html[^>]*\bdata-reveal-slides=\"(\d+)\"", dom)
    assert ready, f"{deck.name}: reveal.js did not start"
    assert int(ready.group(1)) == count_slides(nb, vertical=True), \
        f"{deck.name}: reveal.js reports {ready.group(1)} slides, the metadata asks for {count_slides(nb, True)}"
    shown = [c for c, t in zip(nb.cells, slide_types(nb), strict=True) if t not in ("skip", "notes")]
    if any(c.cell_type == "markdown" and "$" in c.source for c in shown):
        assert re.search(r"<html[^>]*\bdata-mathjax=\"typeset\"", dom) and "<mjx-container" in dom, \
            f"{deck.name}: MathJax did not typeset the math"
    pictures = len(_shown_pictures(nb))
    assert len(re.findall(r"<img[^>]+src=\"data:image/png;base64,", dom)) >= pictures, f"{deck.name}: plots missing"
    assert "Traceback" not in dom, f"{deck.name}: an error traceback is on the slides"
    return dom


def test_example_deck_works_in_a_browser_without_network(example, tmp_path):
    nb, deck = example
    _assert_deck_works(nb, deck, tmp_path)
    SLIDES.mkdir(exist_ok=True)
    shot = SLIDES / "screenshot-example.png"
    shot.unlink(missing_ok=True)
    _browse(f"{deck.as_uri()}#/0/0", tmp_path, f"--screenshot={shot}", "--window-size=1280,800", "--hide-scrollbars")
    assert shot.exists() and shot.stat().st_size > 10_000


def test_stale_executed_copies_are_noticed(tmp_path):
    source, executed = tmp_path / "notebooks", tmp_path / "executed"
    source.mkdir(), executed.mkdir()
    nb = nbformat.v4.new_notebook(cells=[_cell("markdown", "# a", "slide")])
    nbformat.write(nb, source / "01_a.ipynb")
    assert stale_chapters([source / "01_a.ipynb"], executed) == ["01_a"]  # never executed
    nbformat.write(nb, executed / "01_a.ipynb")
    assert stale_chapters([source / "01_a.ipynb"], executed) == []
    nb.cells[0].metadata.slideshow = {"slide_type": "subslide"}
    nbformat.write(nb, source / "01_a.ipynb")
    assert stale_chapters([source / "01_a.ipynb"], executed) == ["01_a"]  # the slide metadata changed since


# --- the chapter decks, from the book build's executed copies ---------------------------------------------------

@pytest.fixture(scope="module")
def chapter_decks() -> dict[str, Path]:
    stale = stale_chapters()
    if stale:
        which = "any chapter" if len(stale) == len(CHAPTERS) else ", ".join(stale)
        pytest.skip(f"no up-to-date executed copy in {EXECUTED.relative_to(ROOT)} for {which}: the chapter decks "
                    "are checked after the book build (make book, or tests/test_book.py earlier in the run)")
    return {deck.name.removesuffix(".slides.html"): deck for deck in build_decks(EXECUTED, SLIDES)}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_deck_works_offline_in_a_browser(chapter_decks, path, tmp_path):
    deck = chapter_decks[path.stem]
    _assert_offline(deck)
    nb = nbformat.read(EXECUTED / path.name, as_version=4)
    _assert_deck_works(nb, deck, tmp_path)


def test_screenshot_of_a_chapter_slide_with_a_plot(chapter_decks, tmp_path):
    for path in CHAPTERS:
        pictures = _shown_pictures(nbformat.read(EXECUTED / path.name, as_version=4))
        if pictures:
            break
    else:
        pytest.fail("no chapter shows a plot on its slides")
    h, v = pictures[0]
    shot = SLIDES / f"screenshot-{path.stem}.png"
    shot.unlink(missing_ok=True)
    _browse(f"{chapter_decks[path.stem].as_uri()}#/{h}/{v}", tmp_path, f"--screenshot={shot}",
            "--window-size=1280,800", "--hide-scrollbars")
    assert shot.exists() and shot.stat().st_size > 20_000
