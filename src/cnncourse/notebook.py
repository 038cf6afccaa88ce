"""Conventions shared by the chapters (see the README's "Notebook conventions")."""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Table", "fast_profile", "glue"]


def fast_profile() -> bool:
    """Return True when ``CNNCOURSE_FAST`` asks for the smoke profile.

    The smoke profile runs a chapter's code on a sliver of the data so that
    ``make test`` proves every cell executes in seconds; the default profile
    is what a reader runs and what the numbers in the prose describe.

    Example:
        >>> epochs = 1 if fast_profile() else 5
    """
    return os.environ.get("CNNCOURSE_FAST", "0").strip().lower() not in ("", "0", "false", "no")


def glue(name: str, value: Any, *, display: bool = False) -> Any:
    """Hand ``value`` to the prose of the built book as ``{glue:text}`name```; return it unchanged.

    A wrapper around myst-nb's ``glue`` that works wherever a chapter runs: where
    myst-nb is not installed (Colab, a bare Jupyter) it does nothing, and the
    reader sees the numbers in the printed output instead. NumPy and torch
    scalars are stored as Python numbers, so that a format spec such as
    ``{glue:text}`acc:.3f``` can format them (myst-nb parses the stored text).

    Args:
        name: The key the prose refers to; unique within the chapter.
        value: A number, a string, or anything Jupyter can display.
        display: Also show the value as the cell's output.

    Example:
        >>> accuracy = glue("cnn_accuracy", 0.9123)
        >>> accuracy
        0.9123
    """
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy and torch scalars
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # no book tools here: the printed output is what the reader sees
        return value
    myst_glue(name, value, display=display)
    return value


class Table:
    """Rows of cells that show as an HTML table in Jupyter and on the website, and as aligned text elsewhere.

    Args:
        header: The column titles.
        rows: One sequence of cells per row; cells are shown with ``str``.
        align: One letter per column, ``"l"`` or ``"r"`` (default: the first
            column left, the others right, as suits a column of names beside
            columns of numbers).
        caption: A title: the first line of the text, the ``<caption>`` in HTML.
        footer: Lines below the table: a footer cell across all columns in HTML.
        rules: In the text form, dashed lines under the header and above the footer.

    Example:
        >>> print(Table(["layer", "params"], [["conv1", "456"], ["fc", "1,290"]]))
        layer  params
        conv1     456
        fc      1,290
    """

    def __init__(
        self,
        header: Sequence[Any],
        rows: Iterable[Sequence[Any]],
        *,
        align: str | None = None,
        caption: str = "",
        footer: Sequence[str] = (),
        rules: bool = False,
    ) -> None:
        self.header = [str(cell) for cell in header]
        self.rows = [[str(cell) for cell in row] for row in rows]
        self.align = align or "l" + "r" * (len(self.header) - 1)
        if len(self.align) != len(self.header) or set(self.align) - {"l", "r"}:
            raise ValueError(f"align needs one 'l' or 'r' per column ({len(self.header)}), got {self.align!r}")
        if bad := [row for row in self.rows if len(row) != len(self.header)]:
            raise ValueError(f"every row needs {len(self.header)} cells, like the header; this one has "
                             f"{len(bad[0])}: {bad[0]}")
        self.caption, self.footer, self.rules = caption, list(footer), rules

    def __str__(self) -> str:
        widths = [max(len(line[c]) for line in [self.header, *self.rows]) for c in range(len(self.header))]

        def fmt(line: list[str]) -> str:
            cells = [cell.rjust(w) if a == "r" else cell.ljust(w) for cell, w, a in zip(line, widths, self.align)]
            return "  ".join(cells).rstrip()

        rule = ["-" * len(fmt(self.header))] if self.rules else []
        body = [fmt(self.header), *rule, *map(fmt, self.rows), *(rule if self.footer else [])]
        return "\n".join([*([self.caption] if self.caption else []), *body, *self.footer])

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        def line(cells: list[str], tag: str) -> str:
            return "".join(f'<{tag} style="text-align:{"right" if a == "r" else "left"}">{html.escape(cell)}</{tag}>'
                           for cell, a in zip(cells, self.align))

        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        body = "".join(f"<tr>{line(row, 'td')}</tr>" for row in self.rows)
        foot = ""
        if self.footer:
            lines = "<br>".join(html.escape(text) for text in self.footer)
            foot = f'<tfoot><tr><td colspan="{len(self.header)}" style="text-align:left">{lines}</td></tr></tfoot>'
        return (f'<table class="cnncourse-table">{caption}'
                f"<thead><tr>{line(self.header, 'th')}</tr></thead><tbody>{body}</tbody>{foot}</table>")
