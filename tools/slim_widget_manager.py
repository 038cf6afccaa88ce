"""Slim the vendored widget manager (``embed-amd.js``) to what the book's pages use.

``@jupyter-widgets/html-manager``'s ``dist/embed-amd.js`` is six webpack bundles
one after the other, each behind a ``/*! For license information please see
NAME.js.LICENSE.txt */`` comment. Two of them, ``base7`` and ``controls7``, render
widget states saved by ipywidgets 7; the book saves ipywidgets 8 states
(``@jupyter-widgets/base`` 2.0.0), which the other bundles render, so the two are
dropped. Every bundle also carries the source maps of its stylesheets inline
(css-loader's ``{version:3,sources:[...],mappings:"..."}``), which only developer
tools read; they become ``null``, which css-loader's runtime treats as "no map".
Together that is about a third of the file (1.2 of 3.6 MB), on every page with an
explorer.

Usage: ``python tools/slim_widget_manager.py _static/vendor/jupyter-widgets/embed-amd.js``
(``tools/vendor_js.sh`` runs it after copying the file from npm).
``tests/test_explorers_site.py`` drives every explorer in Chromium with the result.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DROPPED_BUNDLES = ("base7", "controls7")
_BUNDLE = re.compile(r"/\*! For license information please see (?P<name>[\w.-]+)\.js\.LICENSE\.txt \*/\n")
_CSS_MAP = "{version:3,sources:["


def _end_of_object(text: str, start: int) -> int:
    """Index just past the JavaScript object literal that opens at ``text[start] == "{"``."""
    depth, i, quote = 0, start, None
    while True:
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def slim(text: str) -> str:
    """``embed-amd.js`` without the ipywidgets 7 bundles and the inline CSS source maps."""
    marks = list(_BUNDLE.finditer(text))
    names = [m["name"] for m in marks]
    missing = [name for name in DROPPED_BUNDLES if name not in names]
    if missing or not text.startswith(marks[0][0]):
        raise ValueError(f"unexpected embed-amd.js layout: bundles {names}; expected {DROPPED_BUNDLES} among them")
    ends = [m.start() for m in marks[1:]] + [len(text)]
    kept = "".join(text[m.start():end] for m, end in zip(marks, ends) if m["name"] not in DROPPED_BUNDLES)
    out, i = [], 0
    while (start := kept.find(_CSS_MAP, i)) != -1:
        out += [kept[i:start], "null"]
        i = _end_of_object(kept, start)
    out.append(kept[i:])
    return re.sub(r"\n//# sourceMappingURL=\S+", "", "".join(out))


def main() -> None:
    path = Path(sys.argv[1])
    before = path.read_text(encoding="utf8")
    after = slim(before)
    path.write_text(after, encoding="utf8")
    print(f"{path}: {len(before.encode()) / 1e6:.2f} MB -> {len(after.encode()) / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
