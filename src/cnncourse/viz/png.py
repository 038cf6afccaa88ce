"""Figures and arrays as PNG bytes and ``ipywidgets.Image`` widgets.

The explorers precompute their pictures when a notebook runs; the website then
embeds every one of them in the page, so they are kept small: diagrams are
reduced to a palette of at most 256 colours (lossless for flat-coloured drawings,
a third of the size of full RGB) and every PNG is written with ``optimize=True``.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

__all__ = ["array_to_png", "figure_to_png", "png_widget"]


def figure_to_png(fig: Figure, *, colors: int | None = 256) -> bytes:
    """Render a matplotlib figure to PNG bytes, at the figure's own dpi.

    Args:
        fig: The figure (from ``plt.subplots`` or a bare ``Figure``); it is not closed.
        colors: Reduce the picture to a palette of at most this many colours
            (smaller files; exact for diagrams with few colours). ``None`` keeps RGB.

    Returns:
        The PNG file's bytes.

    Example:
        >>> from matplotlib.figure import Figure
        >>> figure_to_png(Figure(figsize=(1, 1)))[:4]
        b'\\x89PNG'
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if colors is not None and not 2 <= colors <= 256:
        raise ValueError(f"colors must be between 2 and 256 (or None for RGB), got {colors}")
    # Raw RGBA rather than a PNG that would be decoded again: one encoding, not two.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="rgba", dpi=fig.dpi)
    width, height = fig.canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), buffer.getbuffer(), "raw", "RGBA", 0, 1).convert("RGB")
    if colors is not None:
        image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return _save_png(image)


def array_to_png(array: torch.Tensor | np.ndarray, *, colors: int | None = None) -> bytes:
    """Encode an image in ``[0, 1]`` as a PNG (values outside are clipped), lossless by default.

    Args:
        array: ``H x W`` (grayscale), ``1 x H x W`` or ``3 x H x W`` (torch's
            layout), or ``H x W x 3`` (numpy's); floats in ``[0, 1]`` or ``uint8``.
        colors: Reduce an RGB picture to a palette of at most this many colours
            (a third of the size or less; close but no longer exact). ``None``
            keeps every colour.

    Returns:
        The PNG file's bytes: 8-bit grayscale, RGB, or a palette.

    Example:
        >>> array_to_png(torch.zeros(4, 4))[:4]
        b'\\x89PNG'
    """
    data = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if data.ndim == 3 and data.shape[0] in (1, 3) and data.shape[-1] not in (1, 3):
        data = np.moveaxis(data, 0, -1)  # C x H x W -> H x W x C
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[-1] != 3):
        raise ValueError(
            f"expected an H x W, 1 x H x W or 3 x H x W image, got shape {tuple(np.shape(array))}"
        )
    if colors is not None and not 2 <= colors <= 256:
        raise ValueError(f"colors must be between 2 and 256 (or None for every colour), got {colors}")
    if data.dtype != np.uint8:
        data = np.round(np.clip(data.astype(np.float64), 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(data)
    if colors is not None and data.ndim == 3:
        image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return _save_png(image)


def png_widget(png: bytes, *, width: int | None = None, layout: widgets.Layout | None = None) -> widgets.Image:
    """Wrap PNG bytes in an ``ipywidgets.Image``.

    Args:
        png: The PNG file's bytes (:func:`figure_to_png`, :func:`array_to_png`).
        width: Display width in CSS pixels; the image's own width by default.
        layout: A ``Layout`` to share between many images (one widget model
            instead of one each, which keeps a page of precomputed states light).

    Example:
        >>> png_widget(array_to_png(torch.zeros(4, 4))).format
        'png'
    """
    if not isinstance(png, (bytes, bytearray)) or not bytes(png[:8]) == b"\x89PNG\r\n\x1a\n":
        raise ValueError("png must be the bytes of a PNG file (see figure_to_png and array_to_png)")
    kwargs = {"layout": layout} if layout is not None else {}
    if width is not None:
        kwargs["width"] = str(width)
    return widgets.Image(value=bytes(png), format="png", **kwargs)


def _save_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
