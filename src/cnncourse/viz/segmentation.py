"""Pictures of segmentations: one colour per class, and an explorer of models' predictions.

Class maps are drawn with a fixed palette: white for the background and
matplotlib's ``tab10`` colours for the ten Fashion-MNIST classes, so a class
has the same colour in every figure of the book. Canvases are drawn dark on
light, as the book draws Fashion-MNIST.

The explorer works like the others (see :mod:`cnncourse.viz.explorers`):
every canvas's picture is computed when it is built and kept in an
``ipywidgets.Stack``, and the list of canvases is ``jslink``-ed to the stack,
so it works on the website without a kernel.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.patches import Patch

from .explorers import MAX_STATES, _explorer, _nested_stacks
from .png import array_to_png, png_widget

__all__ = [
    "SEGMENTATION_EXPLORER_CLASS",
    "class_colours",
    "colour_labels",
    "legend_handles",
    "segmentation_explorer",
    "segmentation_strip",
]

#: CSS class of the explorer's top widget on the page.
SEGMENTATION_EXPLORER_CLASS = "cnncourse-segmentation-explorer"

_GAP = 0.75  # grey between the panels of a strip


def class_colours(num_classes: int = 11) -> np.ndarray:
    """The palette: white for class 0 (background), then ``tab10`` (and ``tab20`` beyond ten classes).

    Returns:
        ``(num_classes, 3)`` RGB floats in [0, 1].

    Example:
        >>> class_colours(3)[0].tolist()
        [1.0, 1.0, 1.0]
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    colours = [(1.0, 1.0, 1.0), *colormaps["tab10"].colors]
    if num_classes > len(colours):
        colours += colormaps["tab20"].colors[1::2]  # the light halves of tab20's pairs
    if num_classes > len(colours):
        raise ValueError(f"the palette has {len(colours)} colours, not enough for {num_classes} classes")
    return np.asarray(colours[:num_classes], dtype=np.float64)


def colour_labels(labels: torch.Tensor | np.ndarray, num_classes: int = 11) -> np.ndarray:
    """Paint a class map: ``(H, W)`` class indices to an ``(H, W, 3)`` RGB image in [0, 1].

    Example:
        >>> colour_labels(torch.tensor([[0, 1]])).shape
        (1, 2, 3)
    """
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels hold class {labels.min()}..{labels.max()}, outside 0..{num_classes - 1}")
    return class_colours(num_classes)[labels]


def legend_handles(classes: Sequence[str]) -> list[Patch]:
    """Patches for ``ax.legend(handles=...)`` or ``fig.legend``: one per class, in the palette's colours."""
    colours = class_colours(len(classes))
    return [Patch(facecolor=c, edgecolor="0.5", label=name) for name, c in zip(classes, colours)]


def segmentation_strip(
    image: torch.Tensor,
    maps: Sequence[torch.Tensor],
    *,
    num_classes: int = 11,
    scale: int = 3,
    invert: bool = True,
) -> np.ndarray:
    """One picture: the image, then each class map beside it, enlarged ``scale`` times (nearest neighbour).

    Args:
        image: ``(1, H, W)`` or ``(H, W)`` in [0, 1].
        maps: ``(H, W)`` class maps (the truth, the predictions).
        num_classes: Size of the palette.
        scale: Each pixel becomes ``scale x scale``.
        invert: Draw the image dark on light.

    Returns:
        ``(scale H, (1 + len(maps)) scale W + gaps, 3)`` RGB floats in [0, 1].
    """
    grey = image.detach().cpu().reshape(image.shape[-2:]).clamp(0, 1).numpy()
    grey = 1 - grey if invert else grey
    panels = [np.repeat(grey[..., None], 3, axis=-1), *(colour_labels(m, num_classes) for m in maps)]
    height = panels[0].shape[0]
    for panel in panels[1:]:
        if panel.shape[0] != height or panel.shape[1] != panels[0].shape[1]:
            raise ValueError(f"a class map of shape {panel.shape[:2]} beside an image of shape {panels[0].shape[:2]}")
    gap = np.full((height * scale, max(2, scale), 3), _GAP)
    pieces = []
    for panel in panels:
        pieces += [panel.repeat(scale, axis=0).repeat(scale, axis=1), gap]
    return np.concatenate(pieces[:-1], axis=1)


def segmentation_explorer(
    images: torch.Tensor,
    truth: torch.Tensor,
    predictions: Mapping[str, torch.Tensor],
    *,
    classes: Sequence[str],
    scale: int = 3,
) -> widgets.VBox:
    """Pick a canvas; see the image, the true class map and each model's prediction side by side.

    Each state is one picture (a strip of panels) with a line giving each
    model's mean IoU on that canvas; all are precomputed, so the list works on
    the website as well as in a notebook.

    Args:
        images: ``(N, 1, H, W)`` in [0, 1].
        truth: ``(N, H, W)`` class indices.
        predictions: Model name -> its ``(N, H, W)`` predicted classes.
        classes: The class names, background first.
        scale: Enlargement of each pixel (3: a 64 x 64 canvas is shown at 192 x 192).

    Returns:
        The explorer's top widget.

    Raises:
        ValueError: Shapes that do not match, no canvases or more than
            :data:`~cnncourse.viz.explorers.MAX_STATES`, or no predictions.

    Example:
        >>> truth = torch.randint(0, 3, (2, 8, 8))
        >>> explorer = segmentation_explorer(torch.rand(2, 1, 8, 8), truth, {"model": truth},
        ...                                  classes=["background", "a", "b"])
        >>> len(explorer.children)  # the list, the panel names, the pictures, the legend, the help text
        5
    """
    from ..training import mean_iou  # imported here: the training package is not needed to draw

    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be N x 1 x H x W, got {tuple(images.shape)}")
    n = len(images)
    if not 1 <= n <= MAX_STATES:
        raise ValueError(f"give between 1 and {MAX_STATES} canvases (each is a picture in the page), got {n}")
    if not predictions:
        raise ValueError("predictions is empty: give at least one model's class maps, {name: (N, H, W)}")
    for name, maps in {"truth": truth, **predictions}.items():
        if tuple(maps.shape) != (n, *images.shape[2:]):
            raise ValueError(f"{name} has shape {tuple(maps.shape)}, expected {(n, *images.shape[2:])}")
    num_classes = len(classes)
    names = list(predictions)

    image_layout = widgets.Layout()  # one Layout model shared by every picture
    caption_layout = widgets.Layout()

    def leaf(index: tuple[int]) -> widgets.Widget:
        i = index[0]
        strip = segmentation_strip(
            images[i], [truth[i], *(predictions[m][i] for m in names)], num_classes=num_classes, scale=scale
        )
        scores = ", ".join(
            f"{html.escape(m)} {mean_iou(predictions[m][i], truth[i], num_classes).item():.2f}" for m in names
        )
        present = sorted(set(truth[i].unique().tolist()) - {0})
        items = ", ".join(html.escape(classes[c]) for c in present)
        caption = f"canvas {i}: {items}. Mean IoU on this canvas: {scores}"
        return widgets.VBox(
            [widgets.HTML(caption, layout=caption_layout), png_widget(array_to_png(strip), layout=image_layout)]
        )

    choice = widgets.Dropdown(options=[(f"canvas {i}", i) for i in range(n)], index=0, description="canvas")
    stack = _nested_stacks((0,), (n,), leaf, [choice])
    tile = images.shape[-1] * scale
    gap = max(2, scale)
    labels = "".join(
        f"<span style='display:inline-block; width:{tile + gap}px; text-align:center'>{html.escape(text)}</span>"
        for text in ["image", "truth", *names]
    )
    colours = class_colours(num_classes)
    swatches = " ".join(
        f"<span style='white-space:nowrap'><span style='display:inline-block; width:0.9em; height:0.9em; "
        f"border:1px solid #888; background:rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})'></span> "
        f"{html.escape(name)}</span>"
        for name, (r, g, b) in zip(classes, colours)
    )
    return _explorer(
        [choice, widgets.HTML(f"<b>{labels}</b>"), stack, widgets.HTML(f"<small>{swatches}</small>")],
        SEGMENTATION_EXPLORER_CLASS,
        "Choose a canvas from the list: the picture shows it, its true class map, and the class map each "
        "model predicts, one colour per class (white is background). Every canvas is precomputed, so the "
        "list works on the website as well as in a notebook.",
    )
