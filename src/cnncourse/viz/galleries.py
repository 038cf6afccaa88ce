"""Galleries: many feature maps, or many kernels, in one grid of small pictures.

Both use a diverging colour map centred on zero by default (blue negative, white
zero, red positive), each picture scaled to its own largest magnitude: what matters
in a feature map or a kernel is its pattern and sign, and one strong channel would
otherwise wash out all the others. First-layer kernels of an RGB network are shown
as colour pictures instead, the way the AlexNet paper did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .style import FIGURE_WIDTH

__all__ = ["show_feature_maps", "show_kernels"]

_FONT_SIZE = 9  # titles and numbers: the smallest size the website shows legibly
_MIN_CELL_POINTS = 26  # the width of a kernel cell that a 9-point "-0.25" fits in


def show_feature_maps(
    maps: torch.Tensor | np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "RdBu_r",
    symmetric: bool = True,
    size: float = 1.3,
) -> Figure:
    """Show each channel of a feature map as a small picture.

    Args:
        maps: The output of a convolution for one image: ``C x H x W``, or
            ``1 x C x H x W`` (a batch of one).
        titles: One title per channel; ``"0"``, ``"1"``, ... by default.
        ncols: Pictures per row (fewer when there are fewer channels).
        cmap: Matplotlib colour map.
        symmetric: Centre the colours on zero (``vmin = -vmax``), per channel;
            ``False`` stretches each channel from its minimum to its maximum.
        size: Width of one picture in inches (less where ``ncols`` pictures
            would make a row wider than :data:`~cnncourse.viz.FIGURE_WIDTH`).

    Returns:
        The figure (shown at the end of a notebook cell, like any pyplot figure).

    Raises:
        TypeError: ``maps`` is not a tensor or an array.
        ValueError: Its shape is not ``C x H x W`` or ``1 x C x H x W``, ``ncols``
            is below 1, or ``titles`` has the wrong length.

    Shape:
        ``maps``: ``(C, H, W)`` or ``(1, C, H, W)``.

    Example:
        >>> conv = torch.nn.Conv2d(1, 8, 3)
        >>> fig = show_feature_maps(conv(torch.rand(1, 1, 28, 28)))
    """
    data = _numpy(maps, "maps")
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise ValueError(
            f"maps must be C x H x W (or 1 x C x H x W, one image), got shape {tuple(data.shape)}: "
            "for a batch, pick one image, e.g. maps[0]"
        )
    titles = _titles(titles, len(data), "channel")
    fig, axes = _grid(len(data), ncols, size, aspect=data.shape[1] / data.shape[2])
    for ax, channel, title in zip(axes, data, titles):
        limit = float(np.abs(channel).max()) or 1.0
        kwargs = dict(vmin=-limit, vmax=limit) if symmetric else {}
        ax.imshow(channel, cmap=cmap, **kwargs)
        ax.set_title(title, fontsize=_FONT_SIZE)
    return fig


def show_kernels(
    weight: torch.Tensor | np.ndarray | Mapping[str, torch.Tensor],
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    in_channel: int | None = None,
    cmap: str = "RdBu_r",
    annotate: bool | None = None,
    size: float = 1.1,
) -> Figure:
    """Show convolution kernels as small pictures.

    Args:
        weight: A layer's weight ``out_channels x in_channels x kH x kW``
            (``conv.weight``), a stack of kernels ``N x kH x kW``, one kernel
            ``kH x kW``, or a dict of named 2-D kernels (the names become titles).
        titles: One title per kernel; the dict's keys or ``"0"``, ``"1"``, ... by default.
        ncols: Pictures per row.
        in_channel: Which input channel to show for a 4-D weight. By default a
            weight with 3 input channels (a first layer on RGB images) is shown
            in colour, each kernel stretched to [0, 1]; one with a single input
            channel shows that one; any other needs ``in_channel``.
        cmap: Colour map of the one-channel pictures (centred on zero).
        annotate: Write each weight in its cell; by default when there are at
            most 16 kernels and their cells are large enough for 9-point numbers.
        size: Width of one picture in inches (less where ``ncols`` pictures
            would make a row wider than :data:`~cnncourse.viz.FIGURE_WIDTH`).

    Returns:
        The figure.

    Raises:
        TypeError: ``weight`` is not a tensor, an array or a dict of them.
        ValueError: Its shape is not one of the above, ``in_channel`` is out of
            range or missing for a weight with 2 or more than 3 input channels.

    Shape:
        ``weight``: ``(C_out, C_in, kH, kW)``, ``(N, kH, kW)`` or ``(kH, kW)``.

    Example:
        >>> fig = show_kernels(torch.nn.Conv2d(3, 16, 5).weight)  # 16 colour kernels
    """
    if isinstance(weight, Mapping):
        if not weight:
            raise ValueError("weight is an empty dict: give at least one kernel")
        names = list(weight)
        kernels = [_numpy(weight[name], f"weight[{name!r}]") for name in names]
        shapes = {k.shape for k in kernels}
        if len(shapes) != 1 or kernels[0].ndim != 2:
            raise ValueError(f"the dict's kernels must be 2-D and of one shape, got {sorted(shapes)}")
        data, titles = np.stack(kernels), titles if titles is not None else names
    else:
        data = _numpy(weight, "weight")
        if data.ndim == 2:
            data = data[None]
    colour = False
    if data.ndim == 4:
        in_channels = data.shape[1]
        if in_channel is None and in_channels == 3:
            colour = True
        elif in_channel is None and in_channels == 1:
            data = data[:, 0]
        elif in_channel is None:
            raise ValueError(
                f"weight has {in_channels} input channels: choose the one to show with "
                f"in_channel=0 ... {in_channels - 1}"
            )
        elif not 0 <= in_channel < in_channels:
            raise ValueError(f"in_channel must be between 0 and {in_channels - 1}, got {in_channel}")
        else:
            data = data[:, in_channel]
    elif in_channel is not None:
        raise ValueError("in_channel only applies to a 4-D weight (out_channels x in_channels x kH x kW)")
    if data.ndim not in (3, 4):
        raise ValueError(
            f"weight must be C_out x C_in x kH x kW, N x kH x kW or kH x kW, got shape {tuple(np.shape(weight))}"
        )
    count, kh, kw = len(data), data.shape[-2], data.shape[-1]
    titles = _titles(titles, count, "kernel")
    fig, axes = _grid(count, ncols, size, aspect=kh / kw)
    if annotate is None:  # a cell holds a number such as "-0.25" at 9 points
        cell_points = fig.get_figwidth() / min(ncols, count) * 72 / kw
        annotate = not colour and count <= 16 and cell_points >= _MIN_CELL_POINTS
    for ax, kernel, title in zip(axes, data, titles):
        if colour:  # C_in x kH x kW -> kH x kW x 3, stretched to [0, 1]
            picture = np.moveaxis(kernel, 0, -1)
            low, high = picture.min(), picture.max()
            ax.imshow((picture - low) / (high - low) if high > low else np.zeros_like(picture))
        else:
            limit = float(np.abs(kernel).max()) or 1.0
            ax.imshow(kernel, cmap=cmap, vmin=-limit, vmax=limit)
            if annotate:
                for (r, c), value in np.ndenumerate(kernel):
                    text = f"{value:.2g}" if abs(value - round(value)) > 1e-6 else str(int(round(value)))
                    ax.text(c, r, text.replace("-", "\u2212"), ha="center", va="center", fontsize=_FONT_SIZE,
                            color="white" if abs(value) > 0.6 * limit else "black")
        ax.set_title(title, fontsize=_FONT_SIZE)
    return fig


def _numpy(data, name: str) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().float().numpy()
    if isinstance(data, np.ndarray):
        return data.astype(np.float32, copy=False)
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(data).__name__}")


def _titles(titles: Sequence[str] | None, count: int, what: str) -> list[str]:
    if titles is None:
        return [str(i) for i in range(count)]
    titles = [str(t) for t in titles]
    if len(titles) != count:
        raise ValueError(f"got {len(titles)} titles for {count} {what}s: give one per {what}")
    return titles


def _grid(count: int, ncols: int, size: float, *, aspect: float):
    """A figure with ``count`` axes (no ticks) in rows of ``ncols``; unused axes removed."""
    if not (isinstance(ncols, int) and ncols >= 1):
        raise ValueError(f"ncols must be an int >= 1, got {ncols!r}")
    if count < 1:
        raise ValueError("nothing to show: the tensor has no channels or kernels")
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    size = min(size, FIGURE_WIDTH / ncols)  # a row never wider than the website's column
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size * aspect + 0.3)),
                             squeeze=False, layout="constrained")
    axes = axes.ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[count:]:
        ax.remove()
    return fig, list(axes[:count])
