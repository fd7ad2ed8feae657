r"""Tables as rendered tables: in JupyterLab, the book and the slides they wrap at the page width instead of
hiding columns behind a horizontal scroll bar, as a printed, space-aligned table does.

``show_table(rows, header)`` displays an HTML table (and, outside a notebook, prints the same table as text,
so scripts and logs still read it). Numbers are formatted with ``floatfmt``; strings are escaped.

Raises ``ValueError`` when a row's length differs from the header's.
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Sequence


class Table:
    r"""A small table that Jupyter renders as HTML (``_repr_html_``) and Python prints as aligned text."""

    def __init__(self, rows: Sequence[Sequence[object]], header: Sequence[str], floatfmt: str = ".3f",
                 caption: str | None = None) -> None:
        header = [str(h) for h in header]
        for i, row in enumerate(rows):
            if len(row) != len(header):
                raise ValueError(f"row {i} has {len(row)} cells but the header has {len(header)}: {list(row)!r}")
        self.header, self.caption, self.floatfmt = header, caption, floatfmt
        self.rows = [[self._cell(value) for value in row] for row in rows]

    def _cell(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return str(value)
        if isinstance(value, numbers.Integral):
            return f"{value:,}"
        return format(value, self.floatfmt)

    def _repr_html_(self) -> str:
        def cells(values: Sequence[str], tag: str) -> str:
            return "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values)

        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in self.rows)
        return (f'<table class="mmtutor-table">{caption}<thead><tr>{cells(self.header, "th")}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    def __str__(self) -> str:
        widths = [max(len(r[j]) for r in [self.header, *self.rows]) for j in range(len(self.header))]
        line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
        lines = [line(self.header), line(["-" * w for w in widths]), *map(line, self.rows)]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    __repr__ = __str__


def show_table(rows: Sequence[Sequence[object]], header: Sequence[str], floatfmt: str = ".3f",
               caption: str | None = None) -> None:
    r"""Display ``rows`` under ``header`` as a table that wraps (HTML in a notebook, text elsewhere).

    Integers get thousands separators, other numbers ``floatfmt``. Returns nothing, so a call that ends a cell
    shows the table once; build a :class:`Table` to keep it.
    """
    table = Table(rows, header, floatfmt, caption)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython
        print(table)
        return
    if get_ipython() is None:
        print(table)
    else:
        display(table)
