"""The classic 3x3 image kernels, and applying one to a picture.

These are the hand-made filters of image processing that the kernel chapters
start from (Victor Powell's "Image Kernels Explained Visually", setosa.io, shows
the same set): before a network learns its kernels, we see what fixed ones do.
Like ``torch.nn.functional.conv2d``, :func:`apply_kernel` computes a
cross-correlation (the kernel is not flipped), so "Sobel left" responds where the
left side of an edge is brighter than its right side.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["apply_kernel", "as_image", "classic_kernels"]


def classic_kernels() -> dict[str, torch.Tensor]:
    """Return the classic 3x3 kernels by name, as new float32 tensors.

    Returns:
        ``identity``, ``outline``, four Sobel kernels, ``box blur``,
        ``Gaussian blur``, ``sharpen``, ``emboss``, ``lighten`` (centre 1.5) and
        ``darken`` (centre 0.5), in that order.

    Example:
        >>> classic_kernels()["sharpen"]
        tensor([[ 0., -1.,  0.],
                [-1.,  5., -1.],
                [ 0., -1.,  0.]])
    """
    sobel_left = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    sobel_top = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    kernels = {
        "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
        "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
        "Sobel left": sobel_left,
        "Sobel right": [[-v for v in row] for row in sobel_left],
        "Sobel top": sobel_top,
        "Sobel bottom": [[-v for v in row] for row in sobel_top],
        "box blur": [[1 / 9] * 3] * 3,
        "Gaussian blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
        "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
        "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
        "lighten": [[0, 0, 0], [0, 1.5, 0], [0, 0, 0]],
        "darken": [[0, 0, 0], [0, 0.5, 0], [0, 0, 0]],
    }
    return {name: torch.tensor(values, dtype=torch.float32) for name, values in kernels.items()}


def as_image(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Return a picture as a ``C x H x W`` float32 tensor in ``[0, 1]`` (C is 1 or 3).

    Args:
        image: ``H x W``, ``1 x H x W`` or ``3 x H x W`` (like
            :func:`cnncourse.data.sample_image`), or ``H x W x 3`` (numpy's layout);
            floats in ``[0, 1]`` or ``uint8``; a tensor or an array.

    Raises:
        TypeError: ``image`` is not a tensor or an array.
        ValueError: Its shape is none of the above.
    """
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[-1] == 3 and image.shape[0] != 3:
            image = np.moveaxis(image, -1, 0)  # H x W x 3 -> 3 x H x W
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor or a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image.unsqueeze(0)
    if image.ndim != 3 or image.shape[0] not in (1, 3) or min(image.shape[1:]) < 3:
        raise ValueError(
            f"image must be H x W, 1 x H x W or 3 x H x W with H, W >= 3, got shape {tuple(image.shape)}"
        )
    if image.dtype == torch.uint8:
        return image.float() / 255
    return image.detach().float().cpu()


def apply_kernel(image: torch.Tensor | np.ndarray, kernel, *, clip: bool = True) -> torch.Tensor:
    """Filter every channel of a picture with one 2-D kernel, keeping its size.

    The border pixels are repeated (``padding_mode="replicate"``) rather than
    padded with zeros, so a blur does not darken the edges of the picture.

    Args:
        image: A picture (see :func:`as_image` for the layouts accepted).
        kernel: ``kH x kW`` with odd sides (a tensor, array or nested lists).
        clip: Clip the result to ``[0, 1]``, the range a picture can show;
            ``False`` keeps the raw values (negative ones for edge kernels).

    Returns:
        ``C x H x W`` float32, the same size as the picture.

    Raises:
        TypeError, ValueError: ``image`` is not a picture, or ``kernel`` is not
            a 2-D kernel with odd sides.

    Shape:
        ``image``: ``(C, H, W)``; ``kernel``: ``(kH, kW)``; returns ``(C, H, W)``.

    Example:
        >>> picture = torch.rand(1, 8, 8)
        >>> torch.equal(apply_kernel(picture, classic_kernels()["identity"]), picture)
        True
    """
    image = as_image(image)
    kernel = torch.as_tensor(kernel, dtype=torch.float32)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2-D with odd sides (e.g. 3 x 3), got shape {tuple(kernel.shape)}")
    kh, kw = kernel.shape
    channels = image.shape[0]
    padded = F.pad(image.unsqueeze(0), (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    weight = kernel.expand(channels, 1, kh, kw)  # the same kernel for every channel
    out = F.conv2d(padded, weight, groups=channels)[0]  # C x H x W
    return out.clamp(0, 1) if clip else out
