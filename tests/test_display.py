"""Tables that wrap: the HTML and text forms of mmtutor.display.show_table.

covers: mmtutor.display
"""

from __future__ import annotations

import pytest

from mmtutor.display import Table, show_table


def test_html_table_escapes_formats_and_has_every_cell():
    table = Table([["a<b", 1234567, 0.123456], ["c", 2, True]], ["name", "count", "score"], floatfmt=".2f",
                  caption="demo")
    html = table._repr_html_()
    assert html.startswith('<table class="mmtutor-table"><caption>demo</caption>')
    assert "<th>name</th><th>count</th><th>score</th>" in html
    assert "<td>a&lt;b</td><td>1,234,567</td><td>0.12</td>" in html
    assert "<td>True</td>" in html  # a bool is not formatted as a number


def test_text_table_aligns_columns():
    text = str(Table([["x", 1.5], ["longer", 22.25]], ["k", "v"], floatfmt=".1f")).splitlines()
    assert text == ["k       v", "------  ----", "x       1.5", "longer  22.2"]


def test_show_table_prints_outside_a_notebook(capsys):
    assert show_table([[1, 2]], ["a", "b"]) is None
    assert "a  b" in capsys.readouterr().out


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="row 1 has 1 cells but the header has 2"):
        Table([[1, 2], [3]], ["a", "b"])
