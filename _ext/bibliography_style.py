"""Bibliography labels in author-year form, matching the author-year citations in the text.

sphinxcontrib-bibtex cites as "He et al. (2016)" (``bibtex_reference_style:
author_year``) but labels the list of references with pybtex's default alpha
labels ("[HZRS16]"), and mangles accents on the way ("[GDollarG+17]" for Goyal,
Dollár, Girshick ...). This registers a pybtex style, ``cnncourse_author_year``,
whose labels are "He et al., 2016", "Kingma and Ba, 2015" or "Fukushima, 1980",
with LaTeX accents decoded and "a", "b" appended where two works would share
a label; entries are sorted by author, year and title.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter, defaultdict

import latexcodec  # noqa: F401 (registers the "ulatex" codec)
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

STYLE_NAME = "cnncourse_author_year"


def _plain(latex: str) -> str:
    return re.sub(r"[{}]", "", codecs.decode(latex, "ulatex"))


def _surname(person) -> str:
    return _plain(" ".join(person.prelast_names + person.last_names))


def author_year_label(entry) -> str:
    """The label of one pybtex entry, e.g. ``"He et al., 2016"``."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    year = entry.fields.get("year", "n.d.")
    if not persons:
        name = _plain(entry.fields.get("organization") or entry.fields.get("title", "Anonymous"))
    elif len(persons) == 1:
        name = _surname(persons[0])
    elif len(persons) == 2:
        name = f"{_surname(persons[0])} and {_surname(persons[1])}"
    else:
        name = f"{_surname(persons[0])} et al."
    return f"{name}, {year}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        labels = [author_year_label(entry) for entry in sorted_entries]
        counts, used = Counter(labels), defaultdict(int)
        for label in labels:
            if counts[label] > 1:
                used[label] += 1
                label += "abcdefghijklmnopqrstuvwxyz"[used[label] - 1]
            yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.formatting", STYLE_NAME, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
