"""Helpers shared by the tests of the widgets and explorers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import ipywidgets as widgets
import numpy as np
from PIL import Image


def walk(widget: widgets.Widget) -> Iterator[widgets.Widget]:
    """The widget and everything under it (children of boxes and stacks)."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def decode(png: bytes, mode: str | None = None) -> np.ndarray:
    """The pixels of a PNG, converted to ``mode`` (such as "RGB") if given."""
    image = Image.open(io.BytesIO(png))
    return np.asarray(image.convert(mode) if mode else image)


@contextmanager
def recording_jslinks() -> Iterator[list[tuple]]:
    """Record every jslink made inside the block as (source, target) pairs, and still make it."""
    links: list[tuple] = []
    original = widgets.jslink

    def record(source, target):
        links.append((source, target))
        return original(source, target)

    widgets.jslink = record
    try:
        yield links
    finally:
        widgets.jslink = original
