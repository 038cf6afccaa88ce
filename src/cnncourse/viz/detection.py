"""Pictures of detections: boxes drawn on canvases, and an explorer of non-maximum suppression.

Boxes have their class's colour from :func:`~cnncourse.viz.class_colours`
(the palette of the segmentation figures, so a class looks the same in
every figure), a solid line for a detection, a dashed one for the truth.

The explorer works like the others (see :mod:`cnncourse.viz.explorers`):
every state (a canvas and a score threshold) is drawn when it is built and
kept in nested ``ipywidgets.Stack``s, to which the list and the slider are
``jslink``-ed, so it works on the website without a kernel.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .explorers import MAX_STATES, _explorer, _nested_stacks
from .png import figure_to_png, png_widget
from .segmentation import class_colours

__all__ = ["DETECTION_EXPLORER_CLASS", "detection_explorer", "draw_detections"]

#: CSS class of the explorer's top widget on the page.
DETECTION_EXPLORER_CLASS = "cnncourse-detection-explorer"

Detections = Mapping[str, torch.Tensor]


def draw_detections(
    ax: Axes,
    image: torch.Tensor,
    detections: Detections | None = None,
    *,
    truth: Detections | None = None,
    classes: Sequence[str] | None = None,
    score_threshold: float = 0.0,
    labels: bool = True,
    invert: bool = True,
    linewidth: float = 1.5,
) -> None:
    """Show a canvas with boxes: detections solid (with class and score), the truth dashed.

    Args:
        ax: Where to draw; its ticks are removed.
        image: ``(1, H, W)`` or ``(H, W)`` in [0, 1].
        detections: ``boxes``, ``labels`` and ``scores`` (torchvision's format), or None.
        truth: ``boxes`` and ``labels`` of the items, drawn dashed, or None.
        classes: Names of the classes, background first, for the labels.
        score_threshold: Draw only detections scoring at least this.
        labels: Write the class name (and score) at each detection's corner.
        invert: Draw the canvas dark on light, as the book draws Fashion-MNIST.
        linewidth: Of the boxes, in points.
    """
    picture = image.detach().cpu().reshape(image.shape[-2:]).clamp(0, 1).numpy()
    ax.imshow(1 - picture if invert else picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    colours = class_colours(11 if classes is None else max(len(classes), 2))
    height, width = picture.shape

    def box(xyxy: list[float], label: int, style: str) -> None:
        x1, y1, x2, y2 = xyxy
        # boxes hold pixel indices (masks_to_boxes): the box spans from the first pixel's edge to the last's
        ax.add_patch(
            Rectangle(
                (x1 - 0.5, y1 - 0.5),
                x2 - x1 + 1,
                y2 - y1 + 1,
                fill=False,
                linestyle=style,
                edgecolor=colours[label % len(colours)],
                linewidth=linewidth,
            )
        )

    if truth is not None:
        for xyxy, label in zip(truth["boxes"].tolist(), truth["labels"].tolist()):
            box(xyxy, label, "--")
    if detections is not None:
        keep = detections["scores"] >= score_threshold
        # the weakest first, so that the best box is drawn on top (a dense detector's boxes of several classes
        # often coincide: its size and offset do not depend on the class)
        keep = keep.nonzero().flatten()[detections["scores"][keep].argsort(stable=True)]
        for xyxy, label, score in zip(
            detections["boxes"][keep].tolist(), detections["labels"][keep].tolist(), detections["scores"][keep].tolist()
        ):
            box(xyxy, label, "-")
            if labels:
                name = classes[label] if classes is not None else str(label)
                ax.text(
                    xyxy[0] - 0.5,
                    xyxy[1] - 1,
                    f"{name} {score:.2f}",
                    fontsize=9,
                    color="black",
                    va="bottom",
                    ha="left",
                    clip_on=True,
                    bbox={"facecolor": colours[label % len(colours)], "alpha": 0.6, "pad": 1, "linewidth": 0},
                )
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():  # a light frame all round: the canvas is white
        spine.set(visible=True, color="0.7")


def _count(detections: Detections, threshold: float) -> int:
    return int((detections["scores"] >= threshold).sum())


def detection_explorer(
    images: torch.Tensor,
    candidates: Sequence[Detections],
    *,
    classes: Sequence[str],
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.5, 0.7),
    iou_threshold: float = 0.5,
    truth: Sequence[Detections] | None = None,
    width: float = 6.6,
    dpi: float = 100,
) -> widgets.VBox:
    """Pick a canvas and a score threshold; see the candidate boxes before and after non-maximum suppression.

    The candidates are every box a detector proposes (say, one per position
    and class of a dense detector, without its peak picking or NMS). Each
    state shows, for one canvas, the candidates scoring at least the
    threshold, and what per-class NMS (``torchvision.ops.batched_nms`` at
    ``iou_threshold``) keeps of them; the true boxes are drawn dashed in the
    third panel. All states are precomputed: (canvases x thresholds) pictures.

    Args:
        images: ``(N, 1, H, W)`` in [0, 1].
        candidates: ``N`` dicts with ``boxes``, ``scores`` and ``labels``.
        classes: Class names, background first.
        thresholds: The score thresholds the slider offers.
        iou_threshold: NMS removes a box that overlaps a better one of its
            class by more than this.
        truth: ``N`` dicts with the true ``boxes`` and ``labels`` (optional).
        width: Of each picture, in inches (at most 7, the website's column).
        dpi: Resolution of the pictures.

    Returns:
        The explorer's top widget.

    Raises:
        ValueError: Mismatched lengths, no canvases, more states than
            :data:`~cnncourse.viz.explorers.MAX_STATES`, or bad thresholds.

    Example:
        >>> c = {"boxes": torch.tensor([[1.0, 1, 6, 6], [2, 1, 7, 6]]), "scores": torch.tensor([0.9, 0.4]),
        ...      "labels": torch.tensor([1, 1])}
        >>> explorer = detection_explorer(torch.rand(1, 1, 8, 8), [c], classes=["background", "a"])
        >>> len(explorer.children)  # the controls, the pictures, the help text
        3
    """
    from torchvision.ops import batched_nms  # here: torchvision takes seconds to import

    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be N x 1 x H x W, got {tuple(images.shape)}")
    n = len(images)
    if len(candidates) != n or (truth is not None and len(truth) != n):
        raise ValueError(
            f"give one dict of candidates (and of truth) per canvas: {n} canvases, "
            f"{len(candidates)} candidates" + ("" if truth is None else f", {len(truth)} truths")
        )
    thresholds = [float(t) for t in thresholds]
    if not thresholds or sorted(set(thresholds)) != thresholds or not all(0 <= t <= 1 for t in thresholds):
        raise ValueError(f"thresholds must be increasing, distinct values in [0, 1], got {thresholds}")
    if not 1 <= n * len(thresholds) <= MAX_STATES:
        raise ValueError(
            f"{n} canvases x {len(thresholds)} thresholds is {n * len(thresholds)} pictures; "
            f"give at most {MAX_STATES} (each is a picture in the page)"
        )
    if not 2 <= width <= 7:
        raise ValueError(f"width must be between 2 and 7 inches (the website's column), got {width}")
    kept = []
    for c in candidates:
        keep = batched_nms(c["boxes"].float(), c["scores"].float(), c["labels"], iou_threshold)
        kept.append({k: c[k][keep] for k in ("boxes", "scores", "labels")})
    panels = 3 if truth is not None else 2
    figure = Figure(figsize=(width, width / panels + 0.3), dpi=dpi, layout="constrained")
    image_layout = widgets.Layout()  # one Layout model shared by every picture
    caption_layout = widgets.Layout()

    def leaf(index: tuple[int, int]) -> widgets.Widget:
        i, threshold = index[0], thresholds[index[1]]
        figure.clear()
        axes = figure.subplots(1, panels)
        before, after = _count(candidates[i], threshold), _count(kept[i], threshold)
        draw_detections(
            axes[0], images[i], candidates[i], classes=classes, score_threshold=threshold, labels=False, linewidth=1.0
        )
        axes[0].set_title(f"before NMS: {before}", fontsize=10)
        draw_detections(axes[1], images[i], kept[i], classes=classes, score_threshold=threshold, labels=False)
        axes[1].set_title(f"after NMS: {after}", fontsize=10)
        if truth is not None:
            draw_detections(axes[2], images[i], truth=truth[i], classes=classes)
            axes[2].set_title(f"truth: {len(truth[i]['labels'])}", fontsize=10)
        found = ", ".join(
            f"{html.escape(classes[int(label)])} {score:.2f}"
            for label, score in zip(kept[i]["labels"].tolist(), kept[i]["scores"].tolist())
            if score >= threshold
        )
        caption = f"canvas {i}, score &ge; {threshold:g}: {before} candidate boxes, {after} after NMS" + (
            f" ({found})" if found else ""
        )
        return widgets.VBox(
            [
                widgets.HTML(caption, layout=caption_layout),
                png_widget(figure_to_png(figure, colors=128), layout=image_layout),
            ]
        )

    choice = widgets.Dropdown(
        options=[(f"canvas {i}", i) for i in range(n)],
        index=0,
        description="canvas",
        style={"description_width": "5em"},
    )
    start = min(range(len(thresholds)), key=lambda k: abs(thresholds[k] - 0.3))
    slider = widgets.SelectionSlider(
        options=[(f"{t:g}", k) for k, t in enumerate(thresholds)],
        index=start,
        description="min. score",
        continuous_update=True,
        style={"description_width": "5em"},
    )
    controls = [choice, slider]
    stack = _nested_stacks((0, start), (n, len(thresholds)), leaf, controls)
    return _explorer(
        [widgets.VBox(controls), stack],
        DETECTION_EXPLORER_CLASS,
        "Choose a canvas and the lowest score a box needs. Left: every candidate box that scores at least that "
        f"(one per position and class of the output map); middle: what non-maximum suppression keeps of them, "
        f"within each class, removing a box that overlaps a better one by an IoU above {iou_threshold:g}; right: "
        "the true boxes, dashed. Colours are classes. Every state is precomputed, so the controls work on the "
        "website as well as in a notebook.",
    )
