"""scikit-learn's handwritten digits: a small target that ships with the installed packages.

The data set is the test part of the UCI "Optical Recognition of Handwritten
Digits" collection: 1 797 images of the digits 0 to 9, written by 13 people,
scanned as 32 x 32 bitmaps and reduced to 8 x 8 by counting the ink in each
4 x 4 block (so each pixel is an integer from 0 to 16). scikit-learn bundles it
(``sklearn.datasets.load_digits``), so it needs no network. Chapter 10 uses it
as a target far from Fashion-MNIST, the source its pretrained networks learned
on: pen strokes instead of clothes.

:func:`digits` upsamples the images to the input size of the book's networks
(28 x 28, bilinear), scales them to [0, 1] with ink bright on a dark
background, as in Fashion-MNIST, and splits them per class, so that every
split holds every digit in about the same proportion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .fashion import DataSplits

__all__ = ["DIGITS_CLASSES", "digits"]

#: The class names: the digits themselves.
DIGITS_CLASSES = tuple(str(d) for d in range(10))
#: The smallest number of images of one digit in the data set (the 8s).
_FEWEST_PER_CLASS = 174


def _load() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1 797 images as ``N x 1 x 8 x 8`` floats in [0, 1], and their labels."""
    try:
        from sklearn.datasets import load_digits  # imported here: scikit-learn takes a second to import
    except ImportError as error:  # a dependency of cnncourse, but a bare environment may lack it
        raise ImportError("the digits need scikit-learn: pip install scikit-learn") from error

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(bunch.target, dtype=torch.long)


def digits(
    *,
    size: int = 28,
    test_per_class: int = 50,
    val_per_class: int = 20,
    seed: int = 0,
) -> DataSplits:
    """Load scikit-learn's 8 x 8 digits, upsampled to ``size`` x ``size``, as stratified splits.

    Each digit's images are shuffled with ``seed``; the first ``test_per_class``
    go to the test split, the next ``val_per_class`` to the validation split and
    the rest (104 to 113 per digit with the defaults) to the training split. Draw
    a label budget from the training split with
    :func:`cnncourse.transfer.class_subset` or
    :func:`cnncourse.transfer.label_budget`.

    Args:
        size: Side of the returned images; 8 keeps the originals.
        test_per_class: Test images per digit.
        val_per_class: Validation images per digit (0: an empty validation split).
        seed: Seed of the split.

    Returns:
        A :class:`DataSplits` of ``N x 1 x size x size`` float32 images in [0, 1]
        and integer labels 0 to 9; ``mean`` and ``std`` are the training split's.

    Raises:
        ValueError: ``size < 8``, negative split sizes, or test and validation
            images leave fewer than one training image of some digit.

    Example:
        >>> data = digits()
        >>> data.train.tensors[0].shape[1:], len(data.test), len(data.val)
        (torch.Size([1, 28, 28]), 500, 200)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8 (the images are 8 x 8), got {size!r}")
    if test_per_class < 1 or val_per_class < 0:
        raise ValueError(
            f"test_per_class must be >= 1 and val_per_class >= 0, got {test_per_class} and {val_per_class}"
        )
    if test_per_class + val_per_class >= _FEWEST_PER_CLASS:
        raise ValueError(
            f"test_per_class + val_per_class = {test_per_class + val_per_class} leaves no training image of "
            f"the digit 8, which has only {_FEWEST_PER_CLASS} images: ask for fewer"
        )
    images, labels = _load()
    if size != 8:
        # upsampling: bilinear interpolation stays within [0, 1] and needs no antialiasing
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)

    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {"test": [], "val": [], "train": []}
    for digit in range(10):
        index = torch.nonzero(labels == digit).flatten()
        index = index[torch.randperm(len(index), generator=generator)]
        parts["test"].append(index[:test_per_class])
        parts["val"].append(index[test_per_class : test_per_class + val_per_class])
        parts["train"].append(index[test_per_class + val_per_class :])
    split = {name: torch.cat(chunks).sort().values for name, chunks in parts.items()}  # in the data set's order
    X_train = images[split["train"]]
    return DataSplits(
        train=TensorDataset(X_train, labels[split["train"]]),
        val=TensorDataset(images[split["val"]], labels[split["val"]]),
        test=TensorDataset(images[split["test"]], labels[split["test"]]),
        classes=DIGITS_CLASSES,
        mean=X_train.mean().item(),
        std=X_train.std().item(),
    )
