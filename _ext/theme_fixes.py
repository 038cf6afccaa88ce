"""Make sphinx-book-theme's navigation work with pydata-sphinx-theme 0.17.

pydata-sphinx-theme 0.17 gives every page a top navbar of its own, holding a
second menu button, a second contents button and a search field, unless the
site sets ``navbar_persistent`` (it defaults to the search field). The book
theme hides that navbar's buttons and draws its own in the article header,
but the scripts of both themes bind their click handlers with
``document.querySelector(".primary-toggle")``: the first match, which is the
hidden navbar button. So the visible menu button did nothing, on a phone it
showed only its tooltip, and an empty 64-pixel bar held the second search
field (pydata-sphinx-theme#2451, sphinx-book-theme#988).

With ``navbar_persistent`` empty, and the book theme's other navbar slots
empty as they are by default, the navbar holds nothing: its buttons are
never written, the article header's buttons are the first (and only)
matches, and the empty bar is hidden by ``_static/cnncourse.css``.
tests/test_site_layout.py opens the menu on a phone and collapses it on a
desktop, so an upgrade that changes this fails there.
"""

from __future__ import annotations


def _no_navbar(app, config) -> None:
    config.html_theme_options.setdefault("navbar_persistent", [])


def setup(app):
    # Before pydata-sphinx-theme's builder-inited handler fills in its default.
    app.connect("config-inited", _no_navbar)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
