"""Data augmentation for the in-memory tensors of :mod:`cnncourse.data`.

``torchvision.transforms.v2`` does the geometry and the colour; this module adds
the three things the chapters need around it:

* :class:`AugmentedDataset` wraps a ``TensorDataset`` and transforms every image
  on its own, each time it is read. That matters because a v2 transform called
  on a *batch* tensor ``N x C x H x W`` treats the leading dimensions as a batch
  of images that belong together (like the frames of a video): it draws **one**
  set of random parameters and applies it to all of them, so the whole batch is
  flipped, or none of it. :func:`augment_batch` is the per-image loop.
* :class:`SaltAndPepper`, the impulse noise of the slides, as a v2 transform.
* :func:`fashion_mnist_augmentation`, named presets for Fashion-MNIST.
* :func:`shift_and_flip`, the "light" preset done on a whole batch at once with
  one gather, so it costs next to nothing on a GPU (the model zoo trains with it).
* :func:`random_erasing`, torchvision's ``v2.RandomErasing`` drawn for every image
  of a batch at once (the zoo's GPU recipe uses it).

Randomness comes from torch's global generator (what
:func:`~cnncourse.seed_everything` seeds), as in torchvision; with ``DataLoader``
workers, each worker's generator is seeded by the loader, so runs repeat.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "AugmentedDataset",
    "SaltAndPepper",
    "augment_batch",
    "fashion_mnist_augmentation",
    "random_erasing",
    "shift_and_flip",
    "STRENGTHS",
]

log = logging.getLogger(__name__)

#: The presets of :func:`fashion_mnist_augmentation`, weakest first.
STRENGTHS = ("none", "light", "strong")

Transform = Callable[[torch.Tensor], torch.Tensor]


def augment_batch(images: torch.Tensor, transform: Transform) -> torch.Tensor:
    """Apply ``transform`` to each image of a batch separately, with its own random draw.

    ``transform(images)`` on an ``N x C x H x W`` tensor would draw one set of
    parameters for the whole batch (one angle, one crop, one coin flip); this
    loops over the images instead. It works on any device, but on a GPU the
    loop costs a few small kernel launches per image.

    Args:
        images: A batch, ``N x C x H x W``.
        transform: Any callable mapping a ``C x H x W`` tensor to one of the same
            shape (e.g. a ``v2.Compose``).

    Returns:
        The transformed batch, ``N x C x H x W``.

    Raises:
        ValueError: ``images`` is not 4-D, or the transform changes the shape.

    Example:
        >>> flip = v2.RandomHorizontalFlip(p=0.5)
        >>> augment_batch(torch.rand(8, 1, 28, 28), flip).shape
        torch.Size([8, 1, 28, 28])
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"augment_batch needs an N x C x H x W batch, got {shape}; for one image call the transform")
    outputs = [transform(image) for image in images]
    if any(out.shape != images.shape[1:] for out in outputs):
        raise ValueError(
            f"the transform changed an image's shape from {tuple(images.shape[1:])} to "
            f"{tuple(next(o.shape for o in outputs if o.shape != images.shape[1:]))}: images of one batch must "
            "keep a common shape (give crops and resizes an explicit output size)"
        )
    return torch.stack(outputs) if outputs else images.clone()


class AugmentedDataset(Dataset):
    """A dataset whose images are transformed afresh, one by one, every time they are read.

    Only the first tensor (the images) is transformed; labels and anything else
    pass through. It works in an ordinary ``DataLoader(..., batch_size=...)``,
    with or without worker processes. Besides single indices it accepts a list
    (or tensor) of indices and returns a whole batch, each image with its own
    random draw, so a ``BatchSampler`` can also ask for whole batches at once
    (``DataLoader(data, sampler=BatchSampler(...), batch_size=None)``, the way
    :func:`cnncourse.data.tensor_loader` batches tensors).

    Args:
        dataset: A ``TensorDataset`` (or any dataset of ``(image, label, ...)``
            tuples whose indexing accepts an int).
        transform: The augmentation, a callable on one ``C x H x W`` image
            (a ``v2.Compose`` of random transforms, typically).

    Shape:
        ``dataset[i]`` gives ``(C x H x W, label)``; ``dataset[[i, j, ...]]``
        gives ``(N x C x H x W, N labels)``.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> base = TensorDataset(torch.rand(10, 1, 28, 28), torch.arange(10))
        >>> train = AugmentedDataset(base, fashion_mnist_augmentation("light"))
        >>> x, y = train[[0, 1, 2]]
        >>> x.shape, y.tolist()
        (torch.Size([3, 1, 28, 28]), [0, 1, 2])
    """

    def __init__(self, dataset: Dataset, transform: Transform) -> None:
        if not callable(transform):
            raise TypeError(f"transform must be callable (e.g. a v2.Compose), got {type(transform).__name__}")
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset must support len() and indexing, got {type(dataset).__name__}")
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int | Sequence[int] | torch.Tensor) -> tuple[Any, ...]:
        # an int (or a 0-d tensor, or a numpy integer): one sample; a list or 1-d tensor: a batch
        if isinstance(index, torch.Tensor) and index.ndim == 0:
            index = int(index)
        if isinstance(index, Integral):
            image, *rest = self.dataset[int(index)]
            return (self.transform(image), *rest)
        samples = [self.dataset[int(i)] for i in index]  # per image, so that each gets its own draw
        if not samples:
            raise ValueError("AugmentedDataset got an empty list of indices")
        images = torch.stack([self.transform(sample[0]) for sample in samples])
        rest = (torch.stack([torch.as_tensor(sample[k]) for sample in samples]) for k in range(1, len(samples[0])))
        return (images, *rest)

    def __getitems__(self, indices: list[int]) -> list[tuple[Any, ...]]:
        # What DataLoader calls with automatic batching: one sample per index, collated afterwards.
        return [self[int(i)] for i in indices]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, transform={self.transform!r})"


class SaltAndPepper(v2.Transform):
    """Impulse noise: a random ``amount`` of the pixels turn white (salt) or black (pepper).

    Every pixel is hit independently with probability ``amount``; a hit pixel
    takes the largest value of its dtype (1.0 for floats, 255 for ``uint8``)
    with probability ``salt_vs_pepper``, else 0. In a colour image a hit
    changes all channels of the pixel together, as a dead or stuck sensor
    pixel would. On a batch tensor each image gets its own pixels (the mask is
    drawn per pixel of the whole tensor), but ``p``, whether to add noise at
    all, is one draw per call.

    Args:
        amount: Expected fraction of pixels replaced, in ``[0, 1]``.
        p: Probability that the transform does anything.
        salt_vs_pepper: Fraction of the replaced pixels that become white.
        generator: A ``torch.Generator`` to draw from (for reproducible noise
            independent of everything else); default torch's global generator.
            Leave it out in a ``DataLoader`` with workers: each worker would get
            a copy of the same generator and draw the same noise, whereas the
            workers' global generators are seeded differently.

    Shape:
        Any ``... x C x H x W`` tensor (or ``tv_tensors.Image``); the output has
        the same shape, dtype and type. Masks and bounding boxes pass through.

    Example:
        >>> noisy = SaltAndPepper(0.1)(torch.full((1, 100, 100), 0.5))
        >>> 0.08 < (noisy != 0.5).float().mean().item() < 0.12
        True
    """

    def __init__(
        self,
        amount: float = 0.05,
        *,
        p: float = 1.0,
        salt_vs_pepper: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("amount", amount), ("p", p), ("salt_vs_pepper", salt_vs_pepper)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability: give a number in [0, 1], got {value!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.amount = float(amount)
        self.p = float(p)
        self.salt_vs_pepper = float(salt_vs_pepper)
        self.generator = generator

    # torchvision >= 0.21 calls make_params/transform; 0.19 and 0.20 called the same
    # methods _get_params/_transform. We define both, so any torchvision >= 0.19 works.
    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"apply": self.p == 1.0 or torch.rand(1, generator=self.generator).item() < self.p}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, (tv_tensors.Mask, tv_tensors.BoundingBoxes)):
            return inpt  # geometry and labels, not pixels
        if not isinstance(inpt, torch.Tensor):
            raise TypeError(
                f"SaltAndPepper works on tensors, got {type(inpt).__name__}: put v2.ToImage() and "
                "v2.ToDtype(torch.float32, scale=True) before it"
            )
        if not params["apply"] or self.amount == 0.0:
            return inpt
        if inpt.ndim < 3:
            raise ValueError(f"SaltAndPepper needs a ... x C x H x W image, got shape {tuple(inpt.shape)}")
        # one draw per pixel, shared by its channels: shape ... x 1 x H x W
        shape = (*inpt.shape[:-3], 1, *inpt.shape[-2:])
        u = torch.rand(shape, generator=self.generator, device=inpt.device)
        hit = u < self.amount
        salt = hit & (u < self.amount * self.salt_vs_pepper)  # given a hit, u is uniform on [0, amount)
        high = 1.0 if inpt.is_floating_point() else torch.iinfo(inpt.dtype).max
        out = inpt.clone()
        out.masked_fill_(hit, 0)
        out.masked_fill_(salt, high)
        return out

    _get_params = make_params
    _transform = transform

    def extra_repr(self) -> str:
        return f"amount={self.amount}, p={self.p}, salt_vs_pepper={self.salt_vs_pepper}"


def fashion_mnist_augmentation(strength: str = "light") -> v2.Transform:
    """A named augmentation for Fashion-MNIST's 28 x 28 images in ``[0, 1]``.

    Every transform here keeps the label: a shirt mirrored left to right is
    still a shirt. Vertical flips and large rotations are left out on purpose,
    because the photos are all taken upright (an upside-down ankle boot is not
    something the test set contains). Fill values are 0, the black background.

    * ``"none"``: the identity, so that experiments can loop over the presets.
    * ``"light"``: a horizontal flip (p = 0.5) and a random shift of up to 2
      pixels (``RandomCrop`` with padding).
    * ``"strong"``: a horizontal flip, a small affine transform (rotation up
      to 10 degrees, shift up to 10 %, scale 0.9 to 1.1) and random erasing of
      a black rectangle (p = 0.5, 2 to 15 % of the image; cutout).

    Args:
        strength: One of :data:`STRENGTHS`.

    Returns:
        A ``v2.Compose`` for one ``1 x 28 x 28`` image (wrap the data in an
        :class:`AugmentedDataset`, do not call it on a batch).

    Raises:
        ValueError: ``strength`` is not a known preset.

    Example:
        >>> fashion_mnist_augmentation("strong")(torch.rand(1, 28, 28)).shape
        torch.Size([1, 28, 28])
    """
    if strength == "none":
        return v2.Compose([v2.Identity()])
    if strength == "light":
        return v2.Compose([
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomCrop(28, padding=2, fill=0),
        ])
    if strength == "strong":
        return v2.Compose([
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1),
                            interpolation=v2.InterpolationMode.BILINEAR, fill=0),
            v2.RandomErasing(p=0.5, scale=(0.02, 0.15), value=0.0),
        ])
    raise ValueError(f"unknown strength {strength!r}: choose one of {', '.join(map(repr, STRENGTHS))}")


def shift_and_flip(
    images: torch.Tensor, *, max_shift: int = 2, p_flip: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift every image of a batch by its own random offset and mirror about half of them.

    The same augmentation as the ``"light"`` preset of
    :func:`fashion_mnist_augmentation` (``RandomCrop`` with zero padding
    ``max_shift``, then a horizontal flip), vectorized: the batch is padded once
    and each output pixel is gathered from its shifted, possibly mirrored, source.
    The random draws come from ``generator`` on the CPU, so a seeded generator
    gives the same batches on every device.

    Args:
        images: A batch, ``N x C x H x W``, on any device.
        max_shift: Largest shift in pixels, in each direction.
        p_flip: Probability that an image is mirrored left to right.
        generator: Source of randomness (default: torch's global generator).

    Returns:
        A new batch of the same shape, device and dtype.

    Raises:
        ValueError: ``images`` is not 4-D, ``max_shift`` is negative or
            ``p_flip`` is not a probability.

    Example:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> torch.equal(shift_and_flip(x, max_shift=0, p_flip=1.0), x.flip(-1))
        True
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"shift_and_flip needs an N x C x H x W batch, got {shape}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if not 0.0 <= p_flip <= 1.0:
        raise ValueError(f"p_flip must be a probability in [0, 1], got {p_flip}")
    n, c, h, w = images.shape
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < p_flip
    rows = offsets[0].view(n, 1) + torch.arange(h)  # n x h rows of the padded image
    cols = offsets[1].view(n, 1) + torch.arange(w)
    cols = torch.where(flips.view(n, 1), cols.flip(1), cols)
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    batch = torch.arange(n).view(n, 1, 1, 1)
    channel = torch.arange(c).view(1, c, 1, 1)
    index = [i.to(images.device) for i in (batch, channel, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w))]
    return padded[index[0], index[1], index[2], index[3]]


def random_erasing(
    images: torch.Tensor,
    *,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Erase one random rectangle in each image of a batch with probability ``p`` (Zhong et al., 2017).

    The rectangles are drawn as torchvision's ``v2.RandomErasing`` draws them,
    but for every image of the batch at once (a ``v2.RandomErasing`` called on
    a batch erases the same rectangle in all of its images): an area of
    ``scale`` times the image's, uniformly; an aspect ratio ``h / w`` from
    ``ratio``, uniformly on a log scale; sides rounded to whole pixels; up to
    ten tries for a rectangle that fits inside the image (none fits: the image
    stays as it is); then a uniformly random position. The draws come from
    ``generator`` on the CPU, so a seeded generator gives the same batches on
    every device, and the erasing itself is one ``torch.where`` on the
    batch's device.

    Args:
        images: A batch, ``N x C x H x W``, on any device.
        p: Probability that an image is erased.
        scale: Range of the erased area, as a fraction of the image.
        ratio: Range of the rectangle's aspect ratio.
        value: What the erased pixels become (0: black, Fashion-MNIST's background).
        generator: Source of randomness (default: torch's global generator).

    Returns:
        A new batch of the same shape, device and dtype.

    Raises:
        ValueError: ``images`` is not 4-D, or ``p``, ``scale`` or ``ratio`` are out of range.

    Example:
        >>> x = torch.ones(8, 1, 28, 28)
        >>> erased = random_erasing(x, p=1.0)
        >>> bool((erased == 0).flatten(1).any(1).all())  # every image lost a rectangle
        True
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"random_erasing needs an N x C x H x W batch, got {shape}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    if not 0.0 <= scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"scale must be (low, high) fractions of the area with 0 <= low <= high <= 1, got {scale}")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must be (low, high) aspect ratios with 0 < low <= high, got {ratio}")
    n, _, height, width = images.shape
    tries = 10
    area = height * width * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, tries, generator=generator))
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_low + (log_high - log_low) * torch.rand(n, tries, generator=generator))
    h = torch.round(torch.sqrt(area * aspect)).long()  # torchvision rounds half to even too
    w = torch.round(torch.sqrt(area / aspect)).long()
    fits = (h < height) & (w < width)
    first = fits.long().argmax(dim=1)  # the first try that fits (0 if none does)
    h, w = h.gather(1, first[:, None])[:, 0], w.gather(1, first[:, None])[:, 0]
    erase = fits.any(dim=1) & (torch.rand(n, generator=generator) < p)
    # top-left corners, uniform over the positions where the rectangle fits
    top = (torch.rand(n, generator=generator) * (height - h + 1)).long()
    left = (torch.rand(n, generator=generator) * (width - w + 1)).long()
    rows, cols = torch.arange(height), torch.arange(width)
    inside_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])  # n x H
    inside_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])  # n x W
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :] & erase[:, None, None])[:, None]  # n x 1 x H x W
    return torch.where(mask.to(images.device), torch.as_tensor(value, dtype=images.dtype), images)
