"""cnncourse.published: the typed-in ILSVRC results are consistent and cite entries that exist."""

from __future__ import annotations

import re
from pathlib import Path

from cnncourse.published import (
    HUMAN_TOP5,
    ILSVRC_2012_EXTRA_DATA,
    ILSVRC_2014_RUNNER_UP,
    ILSVRC_WINNERS,
)

BIB = Path(__file__).resolve().parents[1] / "references.bib"


def test_one_winner_a_year_and_the_error_falls_every_year():
    years = [e.year for e in ILSVRC_WINNERS]
    assert years == list(range(2010, 2018))
    errors = [e.top5 for e in ILSVRC_WINNERS]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert not any(e.extra_data for e in ILSVRC_WINNERS)


def test_human_benchmark_falls_between_2014_and_2015():
    by_year = {e.year: e.top5 for e in ILSVRC_WINNERS}
    assert by_year[2014] > HUMAN_TOP5 > by_year[2015]


def test_2012_entries_and_the_runner_up():
    winner = next(e for e in ILSVRC_WINNERS if e.year == 2012)
    assert (winner.top5, ILSVRC_2012_EXTRA_DATA.top5) == (16.4, 15.3)
    assert ILSVRC_2012_EXTRA_DATA.extra_data and winner.label == "SuperVision (AlexNet)"
    assert ILSVRC_2014_RUNNER_UP.top5 > next(e.top5 for e in ILSVRC_WINNERS if e.year == 2014)


def test_every_source_is_in_the_bibliography():
    keys = set(re.findall(r"^@\w+\{([^,]+),", BIB.read_text(), flags=re.MULTILINE))
    for entry in (*ILSVRC_WINNERS, ILSVRC_2012_EXTRA_DATA, ILSVRC_2014_RUNNER_UP):
        assert entry.source in keys, entry
