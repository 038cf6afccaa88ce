"""Conventions shared by the chapters (see the README's "Notebook conventions")."""

from __future__ import annotations

import os

__all__ = ["fast_profile"]


def fast_profile() -> bool:
    """Return True when ``CNNCOURSE_FAST`` asks for the smoke profile.

    The smoke profile runs a chapter's code on a sliver of the data so that
    ``make test`` proves every cell executes in seconds; the default profile
    is what a reader runs and what the numbers in the prose describe.

    Example:
        >>> epochs = 1 if fast_profile() else 5
    """
    return os.environ.get("CNNCOURSE_FAST", "0").strip().lower() not in ("", "0", "false", "no")
