"""The feature explorer: pick an image and a layer, see the layer's feature maps and its Grad-CAM.

Each state shows, for one image and one layer of a classifier, the image, the
Grad-CAM map of the predicted class at that layer laid over the image
(:func:`cnncourse.interpret.grad_cam`), and the layer's most active feature maps
(:func:`cnncourse.interpret.activations`). Like the other explorers (see
:mod:`cnncourse.viz.explorers`), it works on the book's website without a kernel:
every state (image x layer) is computed when the explorer is built, kept as one
small PNG in nested ``ipywidgets.Stack`` widgets, and the controls are
``jslink``-ed to the stacks' ``selected_index``, links the browser runs by itself.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib
import torch
import torch.nn.functional as F
from torch import nn

from ..interpret import activations, grad_cam
from ..interpret.hooks import check_images, evaluating, model_device, resolve_layer
from .explorers import MAX_STATES, _explorer, _nested_stacks
from .png import array_to_png, png_widget

__all__ = ["FEATURE_EXPLORER_CLASS", "feature_explorer", "feature_panel"]

#: CSS class of the explorer's top widget on the page.
FEATURE_EXPLORER_CLASS = "cnncourse-feature-explorer"

_GAP = 0.85  # light grey between the tiles
_SMALL = 56  # side of a feature-map tile: 28, 14 and 7 pixel maps enlarged by whole factors
_BIG = 2 * _SMALL + 4  # side of the image and the Grad-CAM tiles: two rows of maps and their gap


def feature_explorer(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    channels: int = 8,
    invert: bool = False,
) -> widgets.VBox:
    """Choose an image and a layer; see the layer's feature maps and its Grad-CAM for the predicted class.

    Every state is precomputed (``len(images) * len(layers)`` PNGs of about
    470 x 116 pixels, reduced to 256 colours: about 4 kB each), so the controls work on the website as
    well as in a notebook. Each state's caption names the layer, its size, the
    channels shown and the prediction.

    Args:
        model: A classifier returning logits (run in eval mode; its modes are restored).
        images: The images, values in ``[0, 1]``; at most 8.
        layers: Dotted names of layers with ``N x C x h x w`` outputs, in the
            order of the slider (input side first); at most 8.
        labels: One name per image for the list (``"image 0"``, ... by default).
        class_names: Names of the classes, for the captions.
        channels: Feature maps shown per state: the most active ones (largest
            mean absolute activation for that image), at most 8.
        invert: Show images as ``1 - image``: dark on light, as the book draws
            Fashion-MNIST.

    Returns:
        The explorer's top widget (end a notebook cell with it to show it).

    Raises:
        ValueError: No images or more than 8, more than 8 layers, an unknown
            layer or one whose output is not ``N x C x h x w``, labels or class
            names of the wrong length, or more than
            :data:`~cnncourse.viz.explorers.MAX_STATES` states.

    Shape:
        ``images``: ``(N, C, H, W)`` with ``C`` 1 or 3.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
        >>> explorer = feature_explorer(model, torch.rand(2, 1, 8, 8), ["0", "1"])
        >>> len(explorer.children)  # the controls, the stacked states, the help text
        3
    """
    images = check_images(images, "images").detach()
    if not 1 <= len(images) <= 8:
        raise ValueError(f"give between 1 and 8 images, got {len(images)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    if isinstance(layers, str):
        layers = [layers]
    layers = [resolve_layer(model, layer)[0] for layer in layers]
    if not 1 <= len(layers) <= 8:
        raise ValueError(f"give between 1 and 8 layers, got {len(layers)}")
    if not (isinstance(channels, int) and 1 <= channels <= 8):
        raise ValueError(f"channels must be an int from 1 to 8, got {channels!r}")
    labels = [f"image {i}" for i in range(len(images))] if labels is None else [str(v) for v in labels]
    if len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images: give one per image")
    if len(images) * len(layers) > MAX_STATES:
        raise ValueError(f"{len(images) * len(layers)} states is more than {MAX_STATES}")

    maps = activations(model, images, layers)
    for name, output in maps.items():
        if output.dim() != 4:
            raise ValueError(f"layer {name!r} outputs shape {tuple(output.shape)}, not N x C x h x w: "
                             "choose convolutional layers or blocks")
    with evaluating(model), torch.no_grad():
        probabilities = model(images.to(model_device(model, images))).softmax(dim=1).cpu()
    predicted = probabilities.argmax(dim=1)
    if class_names is not None and len(class_names) != probabilities.shape[1]:
        raise ValueError(f"got {len(class_names)} class names for a model with {probabilities.shape[1]} classes")
    names = [str(c) for c in class_names] if class_names is not None else [f"class {k}" for k in
                                                                          range(probabilities.shape[1])]
    cams = {name: grad_cam(model, images, predicted, name).cpu() for name in layers}

    image_layout, html_layout = widgets.Layout(), widgets.Layout()  # shared: fewer models in the page

    def leaf(index: tuple[int, int]) -> widgets.Widget:
        i, name = index[0], layers[index[1]]
        output = maps[name][i].cpu()
        shown = output.abs().flatten(1).mean(dim=1).argsort(descending=True, stable=True)[:channels].tolist()
        picture = feature_panel(images[i].cpu(), cams[name][i], output[shown], invert=invert)
        k = int(predicted[i])
        caption = (
            f"<b>{html.escape(name)}</b>: {output.shape[0]} channels of {output.shape[1]}&times;{output.shape[2]}. "
            f"Left, the image; middle, Grad-CAM at this layer for the prediction, "
            f"<i>{html.escape(names[k])}</i> ({probabilities[i, k]:.0%}); right, the {len(shown)} most active "
            f"maps (channels {', '.join(map(str, shown))}; red positive, blue negative)."
        )
        return widgets.VBox([widgets.HTML(caption, layout=html_layout), png_widget(array_to_png(picture, colors=256),
                                                                                  layout=image_layout)])

    choice = widgets.Dropdown(options=[(label, i) for i, label in enumerate(labels)], index=0, description="image",
                              style={"description_width": "4em"})
    slider = widgets.SelectionSlider(options=[(name, i) for i, name in enumerate(layers)], index=len(layers) - 1,
                                     description="layer", continuous_update=True,
                                     style={"description_width": "4em"})
    controls = [choice, slider]
    stack = _nested_stacks((0, len(layers) - 1), (len(images), len(layers)), leaf, controls)
    return _explorer(
        [widgets.VBox(controls), stack],
        FEATURE_EXPLORER_CLASS,
        "Early layers keep the image's resolution and respond to edges and strokes; deeper ones have smaller "
        "maps that respond to larger parts. Grad-CAM weighs a layer's maps by how much the predicted class's "
        "score depends on them: at the last block it is coarse but picks the parts that decide the class. "
        "Every state is precomputed, so the controls work on the website as well as in a notebook.",
    )


def feature_panel(
    image: torch.Tensor, cam: torch.Tensor, maps: torch.Tensor, *, invert: bool = False
) -> torch.Tensor:
    """One explorer state as an RGB picture: the image, its Grad-CAM overlay, and feature maps in two rows.

    Args:
        image: ``C x H x W`` in ``[0, 1]`` (C is 1 or 3).
        cam: The Grad-CAM map, ``H x W`` (normalised here to its maximum).
        maps: The feature maps to show, ``K x h x w`` with ``K <= 8``; each is
            scaled to its own largest magnitude, red positive and blue negative.
        invert: Show the image as ``1 - image``.

    Returns:
        ``3 x 116 x W`` floats in ``[0, 1]``.
    """
    colour = image.clamp(0, 1).expand(3, -1, -1)
    colour = 1 - colour if invert else colour
    big = _resize(colour, _BIG)  # nearest neighbour: sharp pixels, and PNGs a fraction of the size
    heat = cam / cam.max() if cam.max() > 0 else torch.zeros_like(cam)
    heat = torch.from_numpy(matplotlib.colormaps["inferno"](heat.numpy())[..., :3]).permute(2, 0, 1).float()
    grey = colour.mean(dim=0, keepdim=True).expand(3, -1, -1)
    overlay = _resize(0.45 * grey + 0.55 * heat, _BIG)
    diverging = matplotlib.colormaps["RdBu_r"]
    tiles = []
    for channel in maps:
        limit = float(channel.abs().max()) or 1.0
        rgb = diverging((channel / limit * 0.5 + 0.5).clamp(0, 1).numpy())[..., :3]
        tiles.append(_resize(torch.from_numpy(rgb).permute(2, 0, 1).float(), _SMALL))
    gap = _BIG - 2 * _SMALL
    columns = (len(tiles) + 1) // 2
    rows = []
    for r in range(2):
        row = tiles[r * columns: (r + 1) * columns]
        row += [torch.full((3, _SMALL, _SMALL), _GAP)] * (columns - len(row))
        rows.append(_hstack(row, gap))
    grid = torch.cat([rows[0], torch.full((3, gap, rows[0].shape[2]), _GAP), rows[1]], dim=1)
    return _hstack([big, overlay, grid], 3 * gap)


def _resize(picture: torch.Tensor, side: int) -> torch.Tensor:
    """Enlarge a ``3 x h x w`` picture by the largest whole factor that fits in ``side``, centred on a square.

    Whole factors and nearest neighbour keep pixels square and sharp, and the
    PNG small. A picture larger than ``side`` is shrunk (antialiased) instead.
    """
    height, width = picture.shape[1:]
    scale = side / max(height, width)
    scale = int(scale) if scale >= 1 else scale
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if scale >= 1:
        resized = F.interpolate(picture[None], size=size, mode="nearest-exact")[0]
    else:
        resized = F.interpolate(picture[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    resized = resized.clamp(0, 1)
    square = torch.full((3, side, side), _GAP)
    top, left = (side - size[0]) // 2, (side - size[1]) // 2
    square[:, top: top + size[0], left: left + size[1]] = resized
    return square


def _hstack(pictures: list[torch.Tensor], gap: int) -> torch.Tensor:
    pieces = []
    for picture in pictures:
        pieces += [picture, torch.full((3, picture.shape[1], gap), _GAP)]
    return torch.cat(pieces[:-1], dim=2)

