"""Canvases: scenes of Fashion-MNIST items, for segmentation and detection.

A canvas is a blank ``size x size`` image onto which 1 to ``max_items``
Fashion-MNIST items are pasted at random positions and scales, each later item
in front of the earlier ones. Every pixel shows at most one item, the front
one, so one canvas carries the targets of every task on the course's list:

* the class of each item (``labels``): classification, and detection with
  the boxes;
* the box of each item (``boxes``, the box of its visible pixels): detection;
* the visible pixels of each item (``masks``): instance segmentation;
* the class of every pixel (``semantic``, 0 for background): semantic
  segmentation; with the masks, panoptic segmentation.

The targets follow torchvision's detection convention: a dict with
``"boxes"`` ``(K, 4)`` float xyxy pixels (``torchvision.ops.masks_to_boxes``
of the masks, so the right and bottom edges are the last pixel's index),
``"labels"`` ``(K,)`` int64 in 1..10 (Fashion-MNIST's class + 1, 0 being the
background), ``"masks"`` ``(K, size, size)`` bool and ``"semantic"``
``(size, size)`` int64 in 0..10. Items are listed back to front.

How a canvas is drawn. All random numbers come from one seeded NumPy
generator, drawn before any picture is made, so canvas ``i`` is the same
whatever ``n`` is:

1. the number of items, uniform in 1..``max_items``;
2. for each item a source image from the split's pool, a side of
   ``28 * s`` pixels with ``s`` uniform in ``scale``, and a position
   uniform among those that keep the item inside the canvas;
3. each item is resampled onto the canvas (bilinear, ``grid_sample``) and
   rounded to bytes, like Fashion-MNIST's own pixels; its pixels are those
   it paints, the non-zero ones;
4. from the front item backwards, an item that would show less than
   ``min_visible`` of its pixels is left out altogether (not drawn), so every
   item in the target is plainly visible; the front item always is;
5. each pixel shows the front-most item that paints it, or 0.

So the image is non-zero exactly where ``semantic`` is. Nothing is drawn one
canvas at a time: the items of a chunk of canvases are resampled by two
batched matrix products, so 10 000 canvases of 64 x 64 take two or three
seconds on one CPU thread, and nothing needs to be cached on disk.

Which items: test canvases use only Fashion-MNIST's test images; train
canvases only the training images that :func:`~cnncourse.data.fashion_mnist`
keeps for training (never the validation images it holds out, with the same
``val_size`` and ``split_seed``), and val canvases only those validation
images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from .fashion import FASHION_MNIST_CLASSES, DataSplits, _load_bytes, _train_val_indices, prepare_fashion_mnist

__all__ = [
    "CANVAS_CLASSES",
    "CANVAS_SPLITS",
    "FashionCanvas",
    "canvas_augmentation",
    "canvas_splits",
    "detection_collate",
    "fashion_canvas",
]

#: The canvases' classes: background, then Fashion-MNIST's ten (label = class + 1).
CANVAS_CLASSES = ("background", *FASHION_MNIST_CLASSES)
#: The splits a canvas can come from.
CANVAS_SPLITS = ("train", "val", "test")

_ITEM = 28  # Fashion-MNIST's side
_SALT = {"train": 0, "val": 1, "test": 2}  # so that a seed draws other scenes for each split
_CHUNK = 512  # canvases resampled per call: about 2048 x 64 x 64 floats at a time

Target = dict[str, torch.Tensor]


class FashionCanvas(Dataset):
    """Canvases of Fashion-MNIST items; item ``i`` is ``(image, target)``.

    Built by :func:`fashion_canvas`. The canvases are stored compactly, as
    bytes; ``dataset[i]`` decodes one of them into torchvision's detection
    format, and :meth:`semantic_dataset` gives all of them at once as the
    tensors a segmenter trains on.

    Attributes:
        images: ``(n, size, size)`` uint8, the pictures.
        instances: ``(n, size, size)`` uint8, ``j + 1`` where item slot ``j``
            is visible, 0 on the background.
        labels: ``(n, max_items)`` int64, the label (class + 1) of each slot,
            0 for a slot without an item.
        sources: ``(n, max_items)`` int64, each slot's image in Fashion-MNIST
            (an index into the official training set for train and val
            canvases, into the test set for test canvases), -1 when empty.
        split: ``"train"``, ``"val"`` or ``"test"``.
        classes: :data:`CANVAS_CLASSES`.
        transform: Joint transform of ``(image, target)``, or None.

    Shape:
        - image: ``(1, size, size)`` float in [0, 1];
        - target: ``boxes (K, 4)`` float, ``labels (K,)`` int64, ``masks
          (K, size, size)`` bool, ``semantic (size, size)`` int64.
    """

    def __init__(
        self,
        images: torch.Tensor,
        instances: torch.Tensor,
        labels: torch.Tensor,
        sources: torch.Tensor,
        *,
        split: str,
        transform: Callable | None = None,
    ) -> None:
        self.images, self.instances, self.labels, self.sources = images, instances, labels, sources
        self.split, self.transform = split, transform
        self.classes = CANVAS_CLASSES

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    @property
    def max_items(self) -> int:
        return self.labels.shape[1]

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        extra = ", augmented" if self.transform is not None else ""
        return f"FashionCanvas({self.split!r}, n={len(self)}, size={self.size}, max_items={self.max_items}{extra})"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"canvas {index} is out of range for {len(self)} canvases")
        image = self.images[index].unsqueeze(0).float().div_(255)
        slots = (self.labels[index] > 0).nonzero().flatten()  # back to front
        instances = self.instances[index]
        masks = instances.unsqueeze(0) == (slots + 1).to(instances.dtype)[:, None, None]
        target = {
            "boxes": _masks_to_boxes(masks),
            "labels": self.labels[index, slots],
            "masks": masks,
            "semantic": self._semantic(index),
        }
        if self.transform is not None:
            image, target = _transform_jointly(self.transform, image, target)
        return image, target

    def _semantic(self, index: int | slice) -> torch.Tensor:
        labels = self.labels[index]
        table = torch.cat([torch.zeros_like(labels[..., :1]), labels], dim=-1)  # slot j + 1 -> its label
        instances = self.instances[index].long()
        if table.ndim == 1:
            return table[instances]
        return table.gather(1, instances.flatten(1)).view_as(instances)

    def semantic(self) -> torch.Tensor:
        """Every canvas's class map at once: ``(n, size, size)`` int64 in 0..10."""
        return self._semantic(slice(None))

    def semantic_dataset(self) -> TensorDataset:
        """``(images, semantic)`` as a :class:`TensorDataset`, what a segmenter trains on.

        Images ``(n, 1, size, size)`` float in [0, 1], class maps ``(n, size,
        size)`` int64: batch them with :func:`~cnncourse.data.tensor_loader`
        and train with :func:`~cnncourse.fit` and a per-pixel cross-entropy.
        The transform, if any, is not applied.
        """
        return TensorDataset(self.images.unsqueeze(1).float().div_(255), self.semantic())

    def boxes(self) -> torch.Tensor:
        """Every canvas's boxes at once, padded: ``(n, max_items, 5)`` rows ``(label, x1, y1, x2, y2)``.

        Row ``j`` is item slot ``j`` (back to front), all zeros where the slot
        is empty; each box is the box of the item's visible pixels, as in
        ``dataset[i]``. The format of :func:`cnncourse.models.centernet.pad_targets`.
        """
        n, size = len(self), self.size
        rows = torch.zeros(n, self.max_items, 5)
        coords = torch.arange(size)
        for slot in range(self.max_items):
            visible = self.instances == slot + 1  # n x S x S
            cols, lines = visible.any(1), visible.any(2)  # n x S: which columns and rows the item reaches
            present = cols.any(1)
            big = torch.tensor(size)
            x1 = torch.where(cols, coords, big).amin(1)
            x2 = torch.where(cols, coords, -1).amax(1)
            y1 = torch.where(lines, coords, big).amin(1)
            y2 = torch.where(lines, coords, -1).amax(1)
            box = torch.stack([x1, y1, x2, y2], 1).float()
            rows[present, slot, 0] = self.labels[present, slot].float()
            rows[present, slot, 1:] = box[present]
        return rows

    def detection_dataset(self) -> TensorDataset:
        """``(images, boxes)`` as a :class:`TensorDataset`, what a detector trains on.

        Images ``(n, 1, size, size)`` float in [0, 1], boxes ``(n, max_items,
        5)`` padded rows from :meth:`boxes`: fixed-size targets, so
        :func:`~cnncourse.data.tensor_loader` batches them (on a GPU too). The
        transform, if any, is not applied.
        """
        return TensorDataset(self.images.unsqueeze(1).float().div_(255), self.boxes())


def fashion_canvas(
    split: str = "train",
    *,
    n: int = 1_000,
    size: int = 64,
    max_items: int = 4,
    scale: tuple[float, float] = (0.75, 1.25),
    min_visible: float = 0.7,
    seed: int = 0,
    transform: Callable | None = None,
    val_size: int = 10_000,
    split_seed: int = 0,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> FashionCanvas:
    """Draw ``n`` seeded canvases of Fashion-MNIST items (see the module docstring).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``: which Fashion-MNIST images
            the items come from.
        n: Number of canvases.
        size: Height and width of a canvas in pixels.
        max_items: Most items on one canvas (each canvas has 1 to ``max_items``,
            fewer when occluded items are left out).
        scale: Range of an item's side relative to Fashion-MNIST's 28 pixels.
        min_visible: Smallest visible fraction of an item's pixels; items
            hidden more are left out of the canvas.
        seed: Seeds the scenes (together with the split).
        transform: A joint transform of ``(image, target)`` applied by
            ``dataset[i]``, such as :func:`canvas_augmentation`; torchvision's
            ``transforms.v2`` with ``tv_tensors``.
        val_size, split_seed: The validation split of
            :func:`~cnncourse.data.fashion_mnist` whose images train canvases
            leave out (its defaults: 10 000 images, seed 0).
        root, download: Where Fashion-MNIST is, as for ``fashion_mnist``.

    Returns:
        A :class:`FashionCanvas`.

    Raises:
        ValueError: An unknown split, ``n`` or ``max_items`` below 1, a
            ``scale`` range that is not positive and increasing, items larger
            than the canvas, or ``min_visible`` outside (0, 1].

    Example:
        >>> canvases = fashion_canvas("test", n=100)  # doctest: +SKIP
        >>> image, target = canvases[0]  # doctest: +SKIP
        >>> image.shape, target["semantic"].shape  # doctest: +SKIP
        (torch.Size([1, 64, 64]), torch.Size([64, 64]))
    """
    lo, hi = _check_arguments(split, n, size, max_items, scale, min_visible)
    root = prepare_fashion_mnist(root, download=download)
    images, labels = _load_bytes(root, train=split != "test")
    if split == "test":
        pool = torch.arange(len(images))
    else:
        if not 0 < val_size < len(images):
            raise ValueError(f"val_size must be between 1 and {len(images) - 1}, got {val_size}")
        train_idx, val_idx = _train_val_indices(len(images), val_size, split_seed)
        pool = train_idx if split == "train" else val_idx

    rng = np.random.default_rng(np.random.SeedSequence([seed, _SALT[split]]))
    draws = torch.from_numpy(rng.random((n, max_items, 5)))  # count, item, side, x, y
    count = (draws[:, 0, 0] * max_items).long().clamp_(max=max_items - 1) + 1
    occupied = torch.arange(max_items) < count[:, None]
    sources = pool[(draws[..., 1] * len(pool)).long().clamp_(max=len(pool) - 1)]
    side = _ITEM * (lo + (hi - lo) * draws[..., 2])
    corner = draws[..., 3:5] * (size - side).unsqueeze(-1)  # (x, y) of the top-left corner

    canvas = torch.zeros(n, size, size, dtype=torch.uint8)
    instances = torch.zeros(n, size, size, dtype=torch.uint8)
    kept = torch.zeros(n, max_items, dtype=torch.bool)
    for start in range(0, n, _CHUNK):
        part = slice(start, min(start + _CHUNK, n))
        painted = _paste(images[sources[part]], side[part], corner[part], size)  # (b, K, S, S) uint8
        canvas[part], instances[part], kept[part] = _composite(painted, occupied[part], min_visible)
    slot_labels = torch.where(kept, labels[sources] + 1, 0)
    return FashionCanvas(
        canvas, instances, slot_labels, torch.where(kept, sources, -1), split=split, transform=transform
    )


def _check_arguments(split, n, size, max_items, scale, min_visible) -> tuple[float, float]:
    if split not in CANVAS_SPLITS:
        raise ValueError(f"unknown split {split!r}: pass split='train', 'val' or 'test'")
    for name, value in (("n", n), ("size", size), ("max_items", max_items)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if max_items > 255:
        raise ValueError(f"max_items must be at most 255 (the instance map is bytes), got {max_items}")
    try:
        lo, hi = (float(s) for s in scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a pair (smallest, largest) such as (0.75, 1.25), got {scale!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"scale must be a range 0 < smallest <= largest, got {scale!r}")
    if math.ceil(_ITEM * hi) > size:
        raise ValueError(
            f"an item of scale {hi:g} is {math.ceil(_ITEM * hi)} pixels wide, larger than the {size}-pixel canvas: "
            f"pass size >= {math.ceil(_ITEM * hi)} or a largest scale <= {size / _ITEM:.3g}"
        )
    if not 0 < min_visible <= 1:
        raise ValueError(f"min_visible must be a fraction in (0, 1], got {min_visible!r}")
    return lo, hi


def _paste(items: torch.Tensor, side: torch.Tensor, corner: torch.Tensor, size: int) -> torch.Tensor:
    """Resample ``(b, K, 28, 28)`` uint8 items onto ``(b, K, size, size)`` uint8 canvases, one per item.

    Bilinear interpolation, with zeros outside the item, as ``grid_sample``
    computes it (``align_corners=False``: pixel centres at half-integers). The
    map only scales and shifts, so it is separable: a canvas row's value
    depends on the item's rows through one ``size x 28`` matrix of weights
    (the "tent" ``max(0, 1 - |distance|)``), the columns through another, and
    the whole batch is two batched matrix products.
    """
    b, k = side.shape
    centres = torch.arange(size, dtype=torch.float64) + 0.5  # canvas pixel centres
    taps = torch.arange(_ITEM, dtype=torch.float64) + 0.5  # item pixel centres
    scale = (_ITEM / side).reshape(-1, 1, 1)  # item pixels per canvas pixel
    corner = corner.reshape(-1, 1, 2)

    def weights(axis: int) -> torch.Tensor:  # (b K, size, 28)
        position = (centres[:, None] - corner[..., axis : axis + 1]) * scale  # in item pixels
        return (1 - (position - taps).abs()).clamp_(min=0).float()

    rows, cols = weights(1), weights(0)
    values = rows @ items.reshape(b * k, _ITEM, _ITEM).float() @ cols.transpose(1, 2)
    return values.view(b, k, size, size).round_().clamp_(0, 255).to(torch.uint8)


def _composite(painted: torch.Tensor, occupied: torch.Tensor, min_visible: float):
    """Stack the pasted items back to front, leaving out those hidden too much.

    Returns the canvas ``(b, S, S)`` uint8, the instance map ``(b, S, S)``
    uint8 (slot + 1) and which slots were kept ``(b, K)``.
    """
    b, k = occupied.shape
    paints = (painted > 0) & occupied[:, :, None, None]
    covered = torch.zeros_like(paints[:, 0])
    kept = torch.zeros_like(occupied)
    canvas = torch.zeros_like(painted[:, 0])
    instances = torch.zeros_like(painted[:, 0])
    for slot in reversed(range(k)):  # front to back
        paint = paints[:, slot]
        visible = paint & ~covered
        area = paint.flatten(1).sum(1)
        keep = (area > 0) & (visible.flatten(1).sum(1) >= min_visible * area)
        visible &= keep[:, None, None]
        kept[:, slot] = keep
        covered |= paint & keep[:, None, None]
        canvas = torch.where(visible, painted[:, slot], canvas)
        instances = torch.where(visible, torch.tensor(slot + 1, dtype=torch.uint8), instances)
    return canvas, instances, kept


def _masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    if len(masks) == 0:  # masks_to_boxes handles no masks too, but torchvision need not be imported for it
        return torch.zeros(0, 4)
    from torchvision.ops import masks_to_boxes  # imported here: torchvision takes seconds to import

    return masks_to_boxes(masks)


def _transform_jointly(transform: Callable, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    """Apply a ``transforms.v2`` transform to the image and every target, then tidy up.

    The image, masks and semantic map travel as ``tv_tensors`` (masks as
    bytes: torchvision resizes and rotates them with nearest neighbours), the
    boxes as ``BoundingBoxes``. Afterwards items cropped out of the picture are
    dropped and every box is recomputed from its transformed mask, so the
    contract (box = box of the visible mask) still holds.
    """
    from torchvision import tv_tensors

    size = tuple(image.shape[-2:])
    image, out = transform(
        tv_tensors.Image(image),
        {
            "boxes": tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=size),
            "labels": target["labels"],
            "masks": tv_tensors.Mask(target["masks"].to(torch.uint8)),
            "semantic": tv_tensors.Mask(target["semantic"].to(torch.uint8)),
        },
    )
    masks = out["masks"].as_subclass(torch.Tensor).bool()
    present = masks.flatten(1).any(1)
    masks = masks[present]
    labels = out["labels"][present]
    semantic = out["semantic"].as_subclass(torch.Tensor).long()
    return image.as_subclass(torch.Tensor), {
        "boxes": _masks_to_boxes(masks),
        "labels": labels,
        "masks": masks,
        "semantic": semantic,
    }


def canvas_augmentation(size: int, *, flip: float = 0.5, scale: tuple[float, float] = (0.5, 1.0)):
    """A joint augmentation of canvases: a horizontal flip, then a random crop resized to ``size``.

    Built from ``torchvision.transforms.v2``, which moves the image, the
    boxes and the masks together; pass it as ``fashion_canvas(...,
    transform=canvas_augmentation(64))``.

    Args:
        size: The output's height and width (the canvas size keeps it unchanged).
        flip: Probability of a horizontal flip (clothes are never upside down,
            so no vertical flips).
        scale: Range of the crop's area relative to the canvas; the crop is
            resized back to ``size``, so smaller crops zoom in.

    Returns:
        A ``v2.Compose``.

    Example:
        >>> canvas_augmentation(64)  # doctest: +ELLIPSIS
        Compose(
        ...
    """
    from torchvision.transforms import v2

    if not 0 <= flip <= 1:
        raise ValueError(f"flip is a probability in [0, 1], got {flip!r}")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"scale must be a range of area fractions 0 < smallest <= largest <= 1, got {scale!r}")
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(p=flip),
            v2.RandomResizedCrop(size, scale=scale, ratio=(3 / 4, 4 / 3), antialias=True),
        ]
    )


def detection_collate(batch: Sequence[tuple[torch.Tensor, Target]]) -> tuple[torch.Tensor, list[Target]]:
    """Batch canvases as detection models take them: stacked images and a list of targets.

    The images of a batch share one size; the targets cannot be stacked (each
    canvas has its own number of items), so they stay a list of dicts. Pass
    it to a ``DataLoader(canvases, batch_size=..., collate_fn=detection_collate)``.

    Returns:
        ``(images, targets)``: ``(N, 1, size, size)`` and ``N`` dicts.

    Raises:
        ValueError: An empty batch, or images of different sizes.
    """
    if not batch:
        raise ValueError("detection_collate got an empty batch")
    images, targets = zip(*batch)
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise ValueError(
            f"the batch mixes image shapes {sorted(shapes)}: resize them to one size first "
            "(e.g. canvas_augmentation(size))"
        )
    return torch.stack(images), list(targets)


def canvas_splits(
    *,
    train_size: int,
    val_size: int = 1_000,
    test_size: int = 1_000,
    seed: int = 0,
    targets: str = "semantic",
    **options: Any,
) -> DataSplits:
    """Train, validation and test canvases as the tensors a segmenter (or a detector) trains on.

    Args:
        train_size, val_size, test_size: Canvases in each split.
        seed: Seeds the scenes of all three.
        targets: ``"semantic"``, the class maps (:meth:`FashionCanvas.semantic_dataset`),
            or ``"boxes"``, the padded boxes (:meth:`FashionCanvas.detection_dataset`).
        **options: ``size``, ``max_items``, ``scale``, ``min_visible`` (the
            same for every split), as for :func:`fashion_canvas`.

    Returns:
        A :class:`~cnncourse.data.DataSplits` whose datasets hold images
        ``(n, 1, size, size)`` and class maps ``(n, size, size)`` (or boxes
        ``(n, max_items, 5)``), with :data:`CANVAS_CLASSES` and the training
        images' mean and std; its ``loaders()`` batch them as for Fashion-MNIST.
    """
    if targets not in ("semantic", "boxes"):
        raise ValueError(f"targets must be 'semantic' (class maps) or 'boxes' (detection), got {targets!r}")
    sets = {
        split: getattr(fashion_canvas(split, n=count, seed=seed, **options),
                       "semantic_dataset" if targets == "semantic" else "detection_dataset")()
        for split, count in (("train", train_size), ("val", val_size), ("test", test_size))
    }
    images = sets["train"].tensors[0]
    return DataSplits(**sets, classes=CANVAS_CLASSES, mean=images.mean().item(), std=images.std().item())
