"""Figures and arrays as PNG or JPEG bytes and ``ipywidgets.Image`` widgets.

The explorers precompute their pictures when a notebook runs; the website then
embeds every one of them in the page, so they are kept small: diagrams are
reduced to a palette of at most 256 colours (lossless for flat-coloured drawings,
a third of the size of full RGB) and every PNG is written with ``optimize=True``.
Photos and maps computed from photos compress far better as JPEG, a quarter to a
tenth of the PNG's size: :func:`array_to_jpeg` for explorer states, and
:func:`jpeg_figure` for a chapter's figure made of photos. A diagram with a handful
of colours (grids, arrows, text) is shown as a palette PNG by :func:`png_figure`,
a third of Jupyter's full-colour PNG and identical to the eye.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import Image as DisplayImage
from matplotlib.figure import Figure
from PIL import Image

__all__ = [
    "array_to_jpeg",
    "array_to_png",
    "figure_to_jpeg",
    "figure_to_png",
    "jpeg_figure",
    "png_figure",
    "png_widget",
]


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


def figure_to_jpeg(fig: Figure, *, quality: int = 85) -> bytes:
    """Render a matplotlib figure to JPEG bytes, at the figure's own dpi.

    For figures made of photos (or of feature maps computed from photos), which a
    PNG stores almost pixel by pixel; line art and text stay sharper as PNG.

    Args:
        fig: The figure; it is not closed.
        quality: JPEG quality, 1 to 95 (Pillow's scale).

    Returns:
        The JPEG file's bytes (RGB, the figure's transparent parts white),
        cropped to what the figure draws, as Jupyter crops its PNG figures.

    Example:
        >>> from matplotlib.figure import Figure
        >>> figure_to_jpeg(Figure(figsize=(1, 1)))[:2]
        b'\\xff\\xd8'
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    _check_quality(quality)
    # Cropped to what is drawn, as Jupyter's inline backend does with its PNGs.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight", pad_inches=0.1, facecolor="white")
    rgba = Image.open(buffer).convert("RGBA")
    image = Image.new("RGB", rgba.size, "white")
    image.paste(rgba, mask=rgba.getchannel("A"))
    return _save_jpeg(image, quality)


def jpeg_figure(fig: Figure, *, quality: int = 85) -> DisplayImage:
    """Show a figure of photos as a JPEG: end a notebook cell with it.

    The figure is closed, so that Jupyter does not also show it as a PNG; the
    cell's myst-nb figure metadata (caption, name, alt text) applies to the
    JPEG as to any image.

    Args:
        fig: The figure (from ``plt.subplots`` or a gallery function).
        quality: JPEG quality, 1 to 95.

    Returns:
        An ``IPython.display.Image`` holding the JPEG.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots(figsize=(2, 1))
        >>> jpeg_figure(fig).format
        'jpeg'
    """
    data = figure_to_jpeg(fig, quality=quality)
    import matplotlib.pyplot as plt  # only to forget a pyplot figure; harmless for others

    plt.close(fig)
    return DisplayImage(data=data, format="jpeg")


def png_figure(fig: Figure, *, colors: int = 64) -> DisplayImage:
    """Show a diagram as a palette PNG: end a notebook cell with it.

    Like :func:`jpeg_figure`, but lossless up to the palette: for drawings with
    few colours (the sliding-window pictures, grids of numbers), whose
    anti-aliased edges and text make Jupyter's RGBA PNG three times larger. The
    figure is cropped as the inline backend crops it, and closed.

    Args:
        fig: The figure.
        colors: Size of the palette, 2 to 256.

    Returns:
        An ``IPython.display.Image`` holding the PNG.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots(figsize=(2, 1))
        >>> png_figure(fig).format
        'png'
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if isinstance(colors, bool) or not isinstance(colors, int) or not 2 <= colors <= 256:
        raise ValueError(f"colors must be an int from 2 to 256, got {colors!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight", pad_inches=0.1, facecolor="white")
    import matplotlib.pyplot as plt  # only to forget a pyplot figure; harmless for others

    plt.close(fig)
    image = Image.open(buffer).convert("RGB")
    image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return DisplayImage(data=_save_png(image), format="png")


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
    if colors is not None and not 2 <= colors <= 256:
        raise ValueError(f"colors must be between 2 and 256 (or None for every colour), got {colors}")
    data = _uint8_image(array)
    image = Image.fromarray(data)
    if colors is not None and data.ndim == 3:
        image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return _save_png(image)


def array_to_jpeg(array: torch.Tensor | np.ndarray, *, quality: int = 85) -> bytes:
    """Encode an image in ``[0, 1]`` as a JPEG (values outside are clipped).

    Takes the layouts of :func:`array_to_png`; lossy, so for photos and maps
    computed from photos, not for diagrams.

    Args:
        array: ``H x W``, ``1 x H x W``, ``3 x H x W`` or ``H x W x 3``; floats in
            ``[0, 1]`` or ``uint8``.
        quality: JPEG quality, 1 to 95.

    Returns:
        The JPEG file's bytes: 8-bit grayscale or RGB.

    Example:
        >>> array_to_jpeg(torch.zeros(4, 4))[:2]
        b'\\xff\\xd8'
    """
    _check_quality(quality)
    return _save_jpeg(Image.fromarray(_uint8_image(array)), quality)


def png_widget(png: bytes, *, width: int | None = None, layout: widgets.Layout | None = None) -> widgets.Image:
    """Wrap PNG (or JPEG) bytes in an ``ipywidgets.Image``.

    Args:
        png: The PNG file's bytes (:func:`figure_to_png`, :func:`array_to_png`),
            or a JPEG's (:func:`array_to_jpeg`).
        width: Display width in CSS pixels; the image's own width by default.
        layout: A ``Layout`` to share between many images (one widget model
            instead of one each, which keeps a page of precomputed states light).

    Example:
        >>> png_widget(array_to_png(torch.zeros(4, 4))).format
        'png'
    """
    if not isinstance(png, (bytes, bytearray)):
        raise ValueError("png must be the bytes of a PNG file (see figure_to_png and array_to_png)")
    if bytes(png[:8]) == b"\x89PNG\r\n\x1a\n":
        image_format = "png"
    elif bytes(png[:3]) == b"\xff\xd8\xff":
        image_format = "jpeg"
    else:
        raise ValueError("png must be the bytes of a PNG (or JPEG) file: see figure_to_png, array_to_png and "
                         "array_to_jpeg")
    kwargs = {"layout": layout} if layout is not None else {}
    if width is not None:
        kwargs["width"] = str(width)
    return widgets.Image(value=bytes(png), format=image_format, **kwargs)


def _uint8_image(array: torch.Tensor | np.ndarray) -> np.ndarray:
    """``H x W`` or ``H x W x 3`` uint8 pixels from any layout the encoders accept."""
    data = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if data.ndim == 3 and data.shape[0] in (1, 3) and data.shape[-1] not in (1, 3):
        data = np.moveaxis(data, 0, -1)  # C x H x W -> H x W x C
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[-1] != 3):
        raise ValueError(
            f"expected an H x W, 1 x H x W or 3 x H x W image, got shape {tuple(np.shape(array))}"
        )
    if data.dtype != np.uint8:
        data = np.round(np.clip(data.astype(np.float64), 0.0, 1.0) * 255).astype(np.uint8)
    return data


def _check_quality(quality: int) -> None:
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an int from 1 to 95 (Pillow's JPEG scale), got {quality!r}")


def _save_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _save_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
