"""Sphinx extension for the book's API reference: the package's docstrings write maths as in the
notebooks (``$x$`` inline, ``$$ ... $$`` displayed); reStructuredText needs ``:math:`` and ``.. math::``.

This converts one to the other when autodoc reads a docstring, so one docstring serves a reader of
the source, ``help()`` in JupyterLab and the rendered book.
"""

from __future__ import annotations

import re

_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$`])\$(?!\$)([^$\n]+?)(?<!\\)\$(?!\$)")


def dollars_to_rst(lines: list[str]) -> list[str]:
    r"""``$$a$$`` -> a ``.. math::`` block; ``$a$`` -> ``:math:`a```. Code spans (````...````) are left alone."""
    text = "\n".join(lines)

    def display(match: re.Match) -> str:
        body = " ".join(part.strip() for part in match.group(1).strip().splitlines())
        return f"\n\n.. math::\n\n   {body}\n\n"

    text = _DISPLAY.sub(display, text)
    pieces = re.split(r"(``.*?``)", text)  # keep literal code untouched
    text = "".join(p if p.startswith("``") else _INLINE.sub(lambda m: f":math:`{m.group(1)}`", p) for p in pieces)
    return text.split("\n")


def _process(app, what, name, obj, options, lines: list[str]) -> None:  # noqa: ANN001 - Sphinx's hook signature
    lines[:] = dollars_to_rst(lines)


def setup(app) -> dict:  # noqa: ANN001
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
