"""The book's figure style and the widest figure its website shows unscaled.

Chapters start with ``plt.style.use(viz.STYLE)``: fonts of 9 to 11 points at
100 dpi. The website's text column is about 730 pixels wide in a 1280-pixel
window, so a figure at most :data:`FIGURE_WIDTH` inches wide is shown at its
own size and its fonts stay at their size in points; a wider one is scaled
down, fonts included (tests/test_site_layout.py fails on that).
"""

from __future__ import annotations

__all__ = ["FIGURE_WIDTH", "STYLE"]

#: The widest figure, in inches at 100 dpi, that the website shows without scaling it down.
FIGURE_WIDTH = 7.0
#: The name ``plt.style.use`` takes for ``book.mplstyle`` (matplotlib >= 3.7 finds styles in packages).
STYLE = "cnncourse.viz.book"
