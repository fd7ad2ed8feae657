"""The book: built from a clean slate with warnings as errors, then opened in headless Chromium
with no network, where every chapter must load, typeset its math and show its plots."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(3600)  # the module fixture executes the whole book (every notebook)
HTML = ROOT / "book" / "_build" / "html"
SCREENSHOT = ROOT / "book" / "_build" / "screenshot-introduction.png"


def _pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc["parts"]:
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


PAGES = _pages()
CHAPTERS = [p for p in PAGES if p.startswith("notebooks/")]


@pytest.fixture(scope="module")
def book() -> Path:
    done = subprocess.run([sys.executable, str(ROOT / "book" / "build.py")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"the book build failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return HTML


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: CI must run the browser check (apt-get install chromium)")
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it and runs this check")


def _browse(url: str, tmp_path: Path, extra: tuple[str, ...] = ()) -> str:
    """The DOM of ``url`` after its scripts ran, in headless Chromium with no network."""
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-quic", f"--user-data-dir={tmp_path / 'profile'}",
               "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: the network is unavailable
               "--proxy-server=http://127.0.0.1:9", "--virtual-time-budget=20000", *extra, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium failed on {url}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.parametrize("page", PAGES)
def test_page_is_built_and_loads_nothing_from_the_network(book, page):
    html = (book / f"{page}.html").read_text(encoding="utf-8")
    remote = re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=\"(https?://[^\"]+)\"", html)
    remote = [url for url in remote if not re.search(r"<link[^>]+rel=\"(?:canonical|author)\"", url)]
    assert not remote, f"{page} loads resources from the network: {remote}"
    mathjax = re.findall(r"<script[^>]+src=\"([^\"]*mathjax[^\"]*)\"", html, flags=re.I)
    assert all("_static/mathjax/" in src for src in mathjax), f"{page}: MathJax not from the local copy: {mathjax}"


def test_every_chapter_is_in_the_book(book):
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (book / "notebooks" / f"{path.stem}.html").exists(), f"{path.name} is not in the book"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_math_and_plots_in_a_real_browser(book, page, tmp_path):
    dom = _browse((book / f"{page}.html").as_uri(), tmp_path, ("--dump-dom",))
    assert "</html>" in dom and "<article" in dom, f"{page} did not load"
    source = (ROOT / page).with_suffix(".md" if (ROOT / f"{page}.md").exists() else ".ipynb").read_text()
    if "$" in source:
        assert "<mjx-container" in dom, f"{page}: MathJax did not typeset the math"
    if page in CHAPTERS:
        images = re.findall(r"<img[^>]+src=\"([^\"]*_images/[^\"]+\.png)\"", dom)
        assert images, f"{page}: no plot image from the executed notebook"
        for src in images:
            file = (book / page).parent / src
            assert file.exists() and file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{page}: broken image {src}"
        assert "Traceback" not in dom, f"{page}: an error traceback is shown"


def test_screenshot_of_the_introduction(book, tmp_path):
    SCREENSHOT.unlink(missing_ok=True)
    _browse((book / "notebooks" / "00_introduction.html").as_uri(), tmp_path,
            (f"--screenshot={SCREENSHOT}", "--window-size=1280,1600", "--hide-scrollbars"))
    assert SCREENSHOT.exists() and SCREENSHOT.stat().st_size > 20_000
