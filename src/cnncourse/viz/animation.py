"""Matplotlib animations whose HTML works offline, in Jupyter and on the website.

``FuncAnimation.to_jshtml`` embeds every frame in the HTML, which is what a
static website needs, but its player links Font Awesome 4 from a CDN for the
icons on its buttons. :func:`offline_jshtml` removes that link and draws the
icons with plain Unicode shapes instead (the buttons keep their titles and
aria-labels), gives the ``<img>`` its first frame so that the picture shows
even before (or without) JavaScript, and reduces the frames to a palette, which
makes diagrams three to four times lighter.
"""

from __future__ import annotations

import base64
import html as html_module
import io
import re

import matplotlib
from matplotlib.animation import FuncAnimation
from PIL import Image

__all__ = ["OfflineFuncAnimation", "offline_jshtml"]

# Font Awesome 4 classes in matplotlib's player (matplotlib/_animation_data.py) and
# shapes from Unicode's Geometric Shapes block, which every common font covers.
_ICONS = {
    "fa fa-minus": "\u2212",  # decrease speed
    "fa fa-fast-backward": "\u25ae\u25c0\u25c0",  # first frame
    "fa fa-step-backward": "\u25ae\u25c0",  # previous frame
    "fa fa-play fa-flip-horizontal": "\u25c0",  # play backwards
    "fa fa-pause": "\u25ae\u25ae",  # pause
    "fa fa-play": "\u25b6",  # play
    "fa fa-step-forward": "\u25b6\u25ae",  # next frame
    "fa fa-fast-forward": "\u25b6\u25b6\u25ae",  # last frame
    "fa fa-plus": "+",  # increase speed
}
_ICON = re.compile(r'<i class="(fa [^"]+)"></i>')
_FONT_AWESOME_LINK = re.compile(r"<link[^>]*font-awesome[^>]*>\s*", re.S)
_FRAME = re.compile(r'(frames\[(\d+)\] = ")data:image/png;base64,([^"]*)"')
_FIRST_FRAME = re.compile(r'frames\[0\] = "(data:image/[a-z+]+;base64,[^"]*)"')
_IMG = re.compile(r'<img id="(_anim_img[0-9a-f]+)">')
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def offline_jshtml(html: str, *, colors: int | None = 64, alt: str = "animation frame") -> str:
    """Make the HTML of ``Animation.to_jshtml`` load nothing from the internet.

    Args:
        html: What ``to_jshtml()`` returned.
        colors: Reduce each PNG frame to a palette of at most this many colours
            (``None`` leaves the frames as they are).
        alt: The image's alt text, what a screen reader says about the animation.

    Returns:
        The same player without the Font Awesome ``<link>``, with Unicode shapes
        for the button icons and the first frame as the image's ``src``.

    Raises:
        ValueError: The HTML still refers to another host or does not look like
            matplotlib's player (a matplotlib release changed its template).
    """
    if 'class="animation"' not in html or "frames[0]" not in html:
        raise ValueError("this is not the HTML of matplotlib's Animation.to_jshtml()")
    html = _FONT_AWESOME_LINK.sub("", html)

    def icon(match: re.Match) -> str:
        glyph = _ICONS.get(match.group(1))
        if glyph is None:
            raise ValueError(f"unknown icon {match.group(1)!r} in matplotlib's player: add it to _ICONS")
        return f'<span aria-hidden="true">{glyph}</span>'

    html = _ICON.sub(icon, html)
    if colors is not None:
        html = _FRAME.sub(lambda m: f'{m.group(1)}data:image/png;base64,{_palette(m.group(3), colors)}"', html)
    first = _FIRST_FRAME.search(html)
    if first is not None:  # embed_frames=False writes file names instead
        src = first.group(1).replace("\\\n", "")
        alt_text = html_module.escape(alt, quote=True)
        html = _IMG.sub(lambda m: f'<img id="{m.group(1)}" src="{src}" alt="{alt_text}">', html, count=1)
    if _EXTERNAL.search(html):
        raise ValueError("the animation's HTML still loads something from another host")
    return html


def _palette(encoded: str, colors: int) -> str:
    """A base64 PNG (with matplotlib's backslash-newline line breaks) reduced to a palette."""
    image = Image.open(io.BytesIO(base64.b64decode(encoded.replace("\\\n", ""))))
    image = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class OfflineFuncAnimation(FuncAnimation):
    """A :class:`~matplotlib.animation.FuncAnimation` whose HTML works without internet.

    ``to_jshtml()`` returns :func:`offline_jshtml`'s version of matplotlib's player,
    and a notebook cell that ends with the animation shows that player (whatever
    ``rcParams["animation.html"]`` says), not a link to a CDN. The keyword ``alt``
    (after FuncAnimation's own arguments) is the player image's alt text.

    Example:
        >>> from matplotlib.figure import Figure
        >>> fig = Figure(figsize=(1, 1), dpi=20)
        >>> ax = fig.add_subplot()
        >>> anim = OfflineFuncAnimation(fig, lambda i: ax.set_title(str(i)), frames=2)
        >>> "font-awesome" in anim.to_jshtml()
        False
    """

    def __init__(self, *args, alt: str = "animation frame", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.alt = alt

    def to_jshtml(self, fps=None, embed_frames=True, default_mode=None) -> str:
        # Frames at the figure's own dpi, whatever savefig.dpi a style sets (the book's
        # sets 100): every frame is embedded in the page, so its size is the page's.
        with matplotlib.rc_context({"savefig.dpi": "figure"}):
            html = super().to_jshtml(fps=fps, embed_frames=embed_frames, default_mode=default_mode)
        return offline_jshtml(html, alt=self.alt)

    def _repr_html_(self) -> str:
        return self.to_jshtml()
