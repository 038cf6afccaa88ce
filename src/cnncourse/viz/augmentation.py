"""The augmentation explorer: pick a random transform and its strength, see what it draws.

Each state shows a few images and, beside each, several random draws of one
transform at one strength. Like the other explorers (see
:mod:`cnncourse.viz.explorers`), it works without a kernel on the book's website:
every state (transform x strength) is computed when the explorer is built, kept
as a PNG in nested ``ipywidgets.Stack`` widgets, and the controls are
``jslink``-ed to the stacks' ``selected_index``, links the browser runs by itself.

The random draws are seeded, and every state uses the same seed. So when the
strength slider moves, the draws do not jump to new random values: a rotation
that turned an image a little to the left turns it further to the left, which
shows what the strength controls.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ..augment import SaltAndPepper
from .explorers import MAX_STATES, _explorer, _nested_stacks, _shrink
from .kernels import as_image
from .png import array_to_png, png_widget

__all__ = ["AUGMENTATION_EXPLORER_CLASS", "augmentation_explorer", "default_augmentations"]

#: CSS class of the explorer's top widget on the page.
AUGMENTATION_EXPLORER_CLASS = "cnncourse-augmentation-explorer"

#: A transform of a given strength: ``factory(0.5)`` returns a callable on one ``C x H x W`` image.
AugmentationFactory = Callable[[float], Callable[[torch.Tensor], torch.Tensor]]

_GAP = 0.85  # light grey between the tiles, visible on black and on white backgrounds
_MIN_TILE = 84  # small images are enlarged (nearest neighbour) to at least this many pixels


def default_augmentations(*, colour: bool = False) -> dict[str, AugmentationFactory]:
    """The transforms of the course, each as a function of a strength in ``(0, 1]``.

    Strength 1 is deliberately strong (rotations up to 60 degrees, 15 % of the
    pixels salted), so that the largest setting shows where a transform stops
    preserving the label.

    Args:
        colour: Add saturation and hue jitter, which only make sense for colour images.

    Returns:
        Names mapped to factories: ``factory(strength)`` builds the v2 transform.

    Example:
        >>> rotate = default_augmentations()["rotation"](0.5)
        >>> rotate
        RandomRotation(degrees=[-30.0, 30.0], interpolation=InterpolationMode.BILINEAR, expand=False, fill=0)
    """
    bilinear = v2.InterpolationMode.BILINEAR
    factories: dict[str, AugmentationFactory] = {
        "horizontal flip": lambda s: v2.RandomHorizontalFlip(p=s),
        "vertical flip": lambda s: v2.RandomVerticalFlip(p=s),
        "shift (padded crop)": lambda s: _PaddedCrop(s),
        "scale": lambda s: v2.RandomAffine(degrees=0, scale=(1 - 0.4 * s, 1 + 0.4 * s), interpolation=bilinear),
        "crop and resize": lambda s: _ResizedCrop(s),
        "rotation": lambda s: v2.RandomRotation(60 * s, interpolation=bilinear),
        "brightness": lambda s: v2.ColorJitter(brightness=0.8 * s),
        "contrast": lambda s: v2.ColorJitter(contrast=0.8 * s),
    }
    if colour:
        factories["saturation"] = lambda s: v2.ColorJitter(saturation=s)
        factories["hue"] = lambda s: v2.ColorJitter(hue=0.5 * s)
    factories["salt and pepper"] = lambda s: SaltAndPepper(amount=0.15 * s)
    factories["random erasing (cutout)"] = lambda s: v2.RandomErasing(p=1.0, scale=(0.02, 0.02 + 0.28 * s), value=0.0)
    return factories


class _PaddedCrop(torch.nn.Module):
    """``RandomCrop`` back to the input's size after zero padding of up to 15 % of it."""

    def __init__(self, strength: float) -> None:
        super().__init__()
        self.strength = strength

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = list(image.shape[-2:])
        padding = max(1, round(0.15 * self.strength * max(size)))
        return v2.RandomCrop(size, padding=padding, fill=0)(image)

    def __repr__(self) -> str:
        return f"RandomCrop(size=input size, padding={0.15 * self.strength:.1%} of the size, at least 1 pixel, fill=0)"


class _ResizedCrop(torch.nn.Module):
    """``RandomResizedCrop`` back to the input's size, keeping from 100 % down to 25 % of the area."""

    def __init__(self, strength: float) -> None:
        super().__init__()
        self.strength = strength

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return v2.RandomResizedCrop(list(image.shape[-2:]), scale=(1 - 0.75 * self.strength, 1.0),
                                    antialias=True)(image)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size=input size, scale=({1 - 0.75 * self.strength:.4g}, 1.0), antialias=True)"


def augmentation_explorer(
    images: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    augmentations: Mapping[str, AugmentationFactory] | None = None,
    *,
    strengths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    draws: int = 6,
    seed: int = 0,
    invert: bool = False,
    max_size: int = 96,
    levels: int | None = None,
) -> widgets.VBox:
    """Choose a transform and a strength; see random draws of it on a few images.

    Each row of a state is one image: the original, then ``draws`` random
    versions. Every state is precomputed (``len(augmentations) *
    len(strengths)`` PNGs, 40 by default), so the controls work on the website
    as well as in a notebook. Drawing does not touch torch's global random
    generator.

    Args:
        images: One image (``C x H x W``, any layout that
            :func:`~cnncourse.viz.kernels.as_image` accepts), a batch
            ``N x C x H x W``, or a list of images; at most 6, values in ``[0, 1]``.
        augmentations: Names mapped to factories, ``factory(strength)`` returning
            a transform of one image (:func:`default_augmentations` by default,
            with colour jitter when an image has three channels).
        strengths: The values the slider offers, each in ``(0, 1]``.
        draws: Random versions per image.
        seed: Seed of the draws (the same for every state).
        invert: Show ``1 - image``: dark on light, as the book draws Fashion-MNIST.
        max_size: Larger images are shrunk so that their longer side is at most
            this; small ones are enlarged (nearest neighbour) for the screen.
        levels: Round every pixel (every channel) to this many evenly spaced
            values, 2 to 256, for lighter pages: 16 grey levels look the same at
            this size and make the PNGs about 40 % smaller. ``None`` keeps them
            exact.

    Returns:
        The explorer's top widget (end a notebook cell with it to show it).

    Raises:
        TypeError: An argument has the wrong type, or a factory does not return
            a callable.
        ValueError: No images or more than 6, images of different sizes, an
            empty or repeated option, a strength outside ``(0, 1]``, a transform
            that changes an image's shape, or more than
            :data:`~cnncourse.viz.explorers.MAX_STATES` states.

    Example:
        >>> explorer = augmentation_explorer(torch.rand(2, 1, 28, 28), strengths=(0.5, 1.0), draws=3)
        >>> len(explorer.children)  # the controls, the stacked pictures, the help text
        3
    """
    pictures = _as_pictures(images, max_size)
    if augmentations is None:
        augmentations = default_augmentations(colour=any(p.shape[0] == 3 for p in pictures))
    if not isinstance(augmentations, Mapping) or not augmentations:
        raise ValueError("augmentations must be a non-empty dict of name -> factory(strength), "
                         "e.g. default_augmentations()")
    for name, factory in augmentations.items():
        if not callable(factory):
            raise TypeError(f"augmentation {name!r} must be a function of the strength, got {type(factory).__name__}")
    strengths = _strengths(strengths)
    if levels is not None and (isinstance(levels, bool) or not isinstance(levels, Integral)
                               or not 2 <= levels <= 256):
        raise ValueError(f"levels must be an int from 2 to 256 (or None for exact pictures), got {levels!r}")
    for name, value, low in (("draws", draws, 1), ("seed", seed, 0), ("max_size", max_size, 8)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    count = len(augmentations) * len(strengths)
    if count > MAX_STATES:
        raise ValueError(
            f"{len(augmentations)} transforms x {len(strengths)} strengths = {count} states is more than "
            f"{MAX_STATES}: every one is a picture in the page, so offer fewer"
        )

    names = list(augmentations)
    image_layout = widgets.Layout()  # one Layout model shared by every picture
    html_layout = widgets.Layout()

    def leaf(index: tuple[int, int]) -> widgets.Widget:
        name, strength = names[index[0]], strengths[index[1]]
        transform = augmentations[name](strength)
        if not callable(transform):
            raise TypeError(f"augmentation {name!r} returned {type(transform).__name__}, not a transform")
        grid = _grid(pictures, _augmented_copies(pictures, transform, draws=draws, seed=seed), invert=invert)
        if levels is not None:
            grid = torch.round(grid * (levels - 1)) / (levels - 1)
        caption = (f"<b>{html.escape(name)}</b>, strength {strength:g}: the original, then {draws} random "
                   f"draws<br><code style='font-size: 85%'>{html.escape(_describe(transform))}</code>")
        return widgets.VBox([widgets.HTML(caption, layout=html_layout), png_widget(array_to_png(grid),
                                                                                     layout=image_layout)])

    choice = widgets.Dropdown(options=[(name, i) for i, name in enumerate(names)], index=0, description="transform",
                              style={"description_width": "6.5em"})
    middle = len(strengths) // 2
    slider = widgets.SelectionSlider(options=[(f"{s:g}", i) for i, s in enumerate(strengths)], index=middle,
                                     description="strength", continuous_update=True,
                                     style={"description_width": "6.5em"})
    controls = [choice, slider]
    stack = _nested_stacks((0, middle), (len(names), len(strengths)), leaf, controls)
    return _explorer(
        [widgets.VBox(controls), stack],
        AUGMENTATION_EXPLORER_CLASS,
        "Each row is one image: first as it is, then as the transform draws it at random, a new draw "
        "per copy (what a network sees in different epochs). The draws are seeded and the same for every "
        "strength, so moving the slider shows what the strength changes. Every state is precomputed, so the "
        "controls work on the website as well as in a notebook.",
    )


def _augmented_copies(
    pictures: Sequence[torch.Tensor], transform: Callable[[torch.Tensor], torch.Tensor], *, draws: int, seed: int
) -> list[list[torch.Tensor]]:
    """``draws`` seeded random versions of each picture, one transform call each.

    The global generator is forked, so drawing neither depends on nor changes
    the notebook's random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rows = []
        for picture in pictures:
            row = [transform(picture.clone()) for _ in range(draws)]
            for out in row:
                if not isinstance(out, torch.Tensor) or out.shape != picture.shape:
                    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ValueError(
                        f"the transform turned a {tuple(picture.shape)} image into {shape}: the explorer shows "
                        "transforms that keep the size (give crops and resizes the input's size)"
                    )
            rows.append(row)
    return rows


# --- helpers -------------------------------------------------------------------------


def _as_pictures(images, max_size: int) -> list[torch.Tensor]:
    if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim == 4:
        images = list(images)
    elif isinstance(images, (torch.Tensor, np.ndarray)):
        images = [images]
    elif not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
        raise TypeError(f"images must be a tensor, an array or a list of them, got {type(images).__name__}")
    if not 1 <= len(images) <= 6:
        raise ValueError(f"give between 1 and 6 images (one row each), got {len(images)}")
    if not isinstance(max_size, Integral) or isinstance(max_size, bool) or max_size < 8:
        raise ValueError(f"max_size must be an int >= 8, got {max_size!r}")
    pictures = [_shrink(as_image(image), max_size) for image in images]
    sizes = {tuple(p.shape[1:]) for p in pictures}
    if len(sizes) > 1:
        raise ValueError(f"the images must share one size, got {sorted(sizes)}: resize them first")
    return pictures


def _strengths(strengths: Sequence[float]) -> tuple[float, ...]:
    if isinstance(strengths, (str, bytes)) or not isinstance(strengths, Sequence):
        raise TypeError(f"strengths must be a sequence of numbers, e.g. (0.5, 1.0), got {strengths!r}")
    values = tuple(strengths)
    if not values:
        raise ValueError("strengths is empty: give at least one value in (0, 1]")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, Real):
            raise TypeError(f"strengths must hold numbers, got {s!r}")
        if not 0 < s <= 1:
            raise ValueError(f"each strength must be in (0, 1], got {s}")
    if len(set(values)) != len(values):
        raise ValueError(f"strengths repeats a value: {values}")
    return tuple(float(s) for s in values)


def _grid(pictures: list[torch.Tensor], copies: list[list[torch.Tensor]], *, invert: bool) -> torch.Tensor:
    """One row per picture: the original, a wider gap, then its copies; enlarged for the screen."""
    channels = max(p.shape[0] for p in pictures)
    height, width = pictures[0].shape[1:]
    scale = max(1, math.ceil(_MIN_TILE / max(height, width)))
    gap, wide_gap = max(2, scale), 4 * max(2, scale)

    def tile(image: torch.Tensor) -> torch.Tensor:
        image = image.clamp(0, 1).expand(channels, -1, -1)
        image = 1 - image if invert else image
        return F.interpolate(image[None], scale_factor=scale, mode="nearest")[0] if scale > 1 else image

    rows = []
    for picture, row in zip(pictures, copies):
        tiles = [tile(picture)] + [tile(out) for out in row]
        pieces = [tiles[0], torch.full((channels, tiles[0].shape[1], wide_gap), _GAP)]
        for t in tiles[1:]:
            pieces += [t, torch.full((channels, t.shape[1], gap), _GAP)]
        rows.append(torch.cat(pieces[:-1], dim=2))
        rows.append(torch.full((channels, gap, rows[-1].shape[2]), _GAP))
    return torch.cat(rows[:-1], dim=1)


def _describe(transform: Callable) -> str:
    text = repr(transform)
    return " ".join(text.split())  # one line: v2.Compose prints one transform per line
