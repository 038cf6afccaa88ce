"""cnncourse.notebook: the smoke-profile switch and the Table display."""

import pytest

from cnncourse import Table, fast_profile


@pytest.mark.parametrize(("value", "fast"), [("1", True), ("yes", True), ("0", False), ("", False), ("false", False)])
def test_fast_profile_reads_the_environment(monkeypatch, value, fast):
    monkeypatch.setenv("CNNCOURSE_FAST", value)
    assert fast_profile() is fast


def test_table_text_aligns_names_left_and_numbers_right():
    table = Table(["entry", "params", "acc"], [["lenet5", "61,706", 0.9], ["resnet20", "269,434", 0.92]],
                  caption="The zoo", footer=["two entries"], rules=True)
    assert str(table).splitlines() == [
        "The zoo",
        "entry      params   acc",
        "-----------------------",
        "lenet5     61,706   0.9",
        "resnet20  269,434  0.92",
        "-----------------------",
        "two entries",
    ]
    assert str(Table(["a", "b"], [["x", ""]], align="ll")).splitlines() == ["a  b", "x"]  # no trailing blanks


def test_table_html_has_caption_header_rows_and_footer_escaped():
    page = Table(["name", "n"], [["<b>", 1]], caption="a & b", footer=["one", "two"])._repr_html_()
    assert page.startswith("<table class=\"cnncourse-table\"><caption>a &amp; b</caption><thead>")
    assert '<th style="text-align:left">name</th><th style="text-align:right">n</th>' in page
    assert "<td style=\"text-align:left\">&lt;b&gt;</td>" in page and "<b>" not in page
    assert page.endswith('<tfoot><tr><td colspan="2" style="text-align:left">one<br>two</td></tr></tfoot></table>')
    assert page.count("<tr>") == 3


def test_table_refuses_bad_shapes():
    with pytest.raises(ValueError, match="one 'l' or 'r' per column"):
        Table(["a", "b"], [], align="lc")
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        Table(["a", "b"], [["x"]])


def test_glue_hands_python_numbers_to_myst_nb(monkeypatch):
    import myst_nb
    import numpy as np
    import torch

    from cnncourse import glue

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: stored.update({name: (value, display)}))
    assert glue("acc", np.float64(0.25)) == 0.25 and type(stored["acc"][0]) is float
    assert glue("n", torch.tensor(7)) == 7 and type(stored["n"][0]) is int
    assert glue("name", "ResNet-20", display=True) == "ResNet-20" and stored["name"] == ("ResNet-20", True)
    assert stored["acc"][1] is False  # the chapter's printed output shows the number in Jupyter


def test_glue_without_myst_nb_does_nothing(monkeypatch):
    import sys

    from cnncourse import glue

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # as on Colab: importing it fails
    assert glue("acc", 0.5) == 0.5
