r"""Lecture slides from the executed notebooks, for a room without network: ``python -m mmtutor.slides``
(``make slides`` runs it after ``make book``).

Each chapter ``notebooks/NN_name.ipynb`` becomes ``slides/NN_name.slides.html``, a reveal.js deck cut by the
cells' ``slideshow`` metadata (``slide`` starts a slide, ``subslide`` a slide below it, ``fragment`` appears on
a click, ``notes`` go to the speaker view, press ``s``; ``skip`` is left out; ``-`` continues the slide above).

* The notebooks are not run again: the decks are converted from the copies the book build executed,
  ``book/_build/jupyter_execute/notebooks/`` (:data:`EXECUTED`). A copy whose cells no longer match the
  notebook is stale (:func:`stale_chapters`), and ``make slides`` then rebuilds the book first.
* Nothing comes from the network: reveal.js is copied from the PyPI package ``sphinx-revealjs`` (which vendors
  it) to ``slides/reveal.js/``, MathJax 3 from ``sphinx-mathjax-offline`` (the copy the book serves) to
  ``slides/mathjax/``; nbconvert's CDN scripts (require.js, jQuery, Mermaid, MathJax 2) are left out, plots
  are inline PNG data, and images in markdown cells are embedded too. The ``slides/`` folder can be copied to
  a laptop as it is and opened from disk.
* As in the book, the input of a cell tagged ``hide-input`` is left out (its picture stays).

The deck marks ``<html>`` with ``data-reveal-slides`` (what ``Reveal.getTotalSlides()`` reports) once reveal.js
is ready, and ``data-mathjax`` once MathJax has typeset the page: the browser test reads both.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import time
from pathlib import Path

import jinja2
import nbformat
from nbconvert import SlidesExporter
from nbconvert.preprocessors import TagRemovePreprocessor

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "book" / "_build" / "jupyter_execute" / "notebooks"
SLIDES = ROOT / "slides"
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}

_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{# nbconvert's reveal template, with every script from a CDN replaced by the local copies next to the deck #}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}
<script>
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
        processEscapes: true, processEnvironments: true, tags: "ams"},
  options: {ignoreHtmlClass: "jp-OutputArea|highlight"},
  startup: {pageReady: () => MathJax.startup.defaultPageReady().then(
    () => document.documentElement.setAttribute("data-mathjax", "typeset"))}
};
</script>
<script defer src="{{ resources.mathjax_url }}"></script>
<style>
.reveal section.mmtutor-scroll { height: 100%; overflow-y: auto; }
.reveal .slides { text-align: left; }
</style>
{%- endblock html_head_js_mathjax -%}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({controls: true, progress: true, hash: true, center: false,
                   transition: "{{ resources.reveal.transition }}", slideNumber: "{{ resources.reveal.number }}",
                   width: {{ resources.reveal.width }}, height: {{ resources.reveal.height }},
                   plugins: [RevealNotes]});
// a slide taller than the screen scrolls instead of being cut
function scrollTall() {
  const slide = Reveal.getCurrentSlide();
  if (slide && slide.scrollHeight > Reveal.getConfig().height) slide.classList.add("mmtutor-scroll");
}
Reveal.on("ready", () => {
  scrollTall();
  document.documentElement.setAttribute("data-reveal-slides", String(Reveal.getTotalSlides()));
});
Reveal.on("slidechanged", scrollTall);
</script>
{% endblock footer_js %}
"""


def chapter_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The chapter notebooks ``NN_name.ipynb`` of ``folder``, in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def slide_types(nb: nbformat.NotebookNode) -> list[str | None]:
    """Each cell's ``slideshow.slide_type`` (None where the metadata is missing)."""
    return [cell.get("metadata", {}).get("slideshow", {}).get("slide_type") for cell in nb.cells]


def count_slides(nb: nbformat.NotebookNode, vertical: bool = False) -> int:
    """The number of slides of the deck, as nbconvert cuts it: the first cell shown opens a slide, then every
    ``slide`` cell does; with ``vertical``, ``subslide`` cells too (that total is what reveal.js reports)."""
    types = [t or "-" for t in slide_types(nb)]
    shown = [i for i, t in enumerate(types) if t not in ("skip", "notes")]
    if not shown:
        return 0
    opening = {"slide", "subslide"} if vertical else {"slide"}
    return 1 + sum(t in opening for t in types[shown[0] + 1:])


def stale_chapters(notebooks: list[Path] | None = None, executed: Path = EXECUTED) -> list[str]:
    """The chapters with no executed copy, or whose executed copy no longer has the notebook's cells (their
    source or slide metadata changed since the book was built)."""
    stale = []
    for path in notebooks if notebooks is not None else chapter_notebooks():
        copy = executed / path.name
        if not copy.exists():
            stale.append(path.stem)
            continue
        now, then = (nbformat.read(p, as_version=4) for p in (path, copy))
        if _cells(now) != _cells(then):
            stale.append(path.stem)
    return stale


def _cells(nb: nbformat.NotebookNode) -> list[tuple]:
    """What the deck is cut from: each cell's type, source, slide metadata and tags."""
    return [(c.cell_type, c.source, c.metadata.get("slideshow"), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def copy_assets(target: Path = SLIDES) -> None:
    """Copy reveal.js (from sphinx-revealjs) and MathJax 3 (from sphinx-mathjax-offline) into ``target``."""
    sources = {"reveal.js": _package_dir("sphinx_revealjs") / "_static" / "revealjs",
               "mathjax": _package_dir("sphinx-mathjax-offline") / "static" / "mathjax"}
    for name, source in sources.items():
        if not source.is_dir():
            raise FileNotFoundError(f"{source} is missing: install the pinned environment (make setup)")
        if not (target / name).is_dir():
            shutil.copytree(source, target / name)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {name} is not installed (make setup)")
    return Path(next(iter(spec.submodule_search_locations)))


def slides_exporter(reveal_prefix: str = "reveal.js", mathjax_url: str = "mathjax/tex-chtml.js") -> SlidesExporter:
    """nbconvert's SlidesExporter with local reveal.js and MathJax (paths relative to the deck) and no CDN."""
    exporter = SlidesExporter(extra_loaders=[jinja2.DictLoader({"mmtutor_slides.html.j2": _TEMPLATE})],
                              template_file="mmtutor_slides.html.j2", reveal_url_prefix=reveal_prefix,
                              mathjax_url=mathjax_url, reveal_transition="none", reveal_number="c/t",
                              reveal_width="1280", reveal_height="800", embed_images=True,
                              exclude_anchor_links=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"hide-input", "remove-input"},
                                                         remove_all_outputs_tags={"remove-output"}), enabled=True)
    return exporter


def build_deck(notebook: Path, target: Path = SLIDES, exporter: SlidesExporter | None = None) -> Path:
    """Convert one (executed) notebook into ``target/<stem>.slides.html``, with reveal.js and MathJax copied
    next to it; returns the deck's path."""
    target.mkdir(parents=True, exist_ok=True)
    copy_assets(target)
    exporter = exporter or slides_exporter()
    nb = nbformat.read(notebook, as_version=4)
    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem,
                                                                       "path": str(notebook.parent)}})
    deck = target / f"{notebook.stem}.slides.html"
    deck.write_text(html, encoding="utf-8")
    return deck


def build_decks(executed: Path = EXECUTED, target: Path = SLIDES) -> list[Path]:
    """One deck per chapter, from the book build's executed copies; fails if any is missing or stale."""
    stale = stale_chapters(executed=executed)
    if stale:
        raise RuntimeError(f"no up-to-date executed copy in {executed} for: {', '.join(stale)}; run `make book`")
    exporter = slides_exporter()
    return [build_deck(executed / path.name, target, exporter) for path in chapter_notebooks()]


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the executed copies are up to date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_chapters()
        print(f"executed copies missing or stale: {', '.join(stale)}" if stale else "executed copies up to date")
        return 1 if stale else 0
    start = time.perf_counter()
    try:
        decks = build_decks()
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    for deck in decks:
        nb = nbformat.read(EXECUTED / deck.name.replace(".slides.html", ".ipynb"), as_version=4)
        print(f"wrote {deck.relative_to(ROOT)}: {count_slides(nb)} slides, {count_slides(nb, vertical=True)} with "
              f"the subslides, {deck.stat().st_size / 1e6:.1f} MB")
    print(f"{time.perf_counter() - start:.1f} s; open file://{SLIDES / chapter_notebooks()[0].stem}.slides.html "
          "(s: speaker notes, esc: overview)")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
