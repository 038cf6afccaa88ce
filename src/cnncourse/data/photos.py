"""Real photos that ship with the installed packages, so the chapters can use them offline."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SAMPLE_IMAGES", "sample_image"]

#: The scikit-image photos the kernel chapters use, by name.
SAMPLE_IMAGES = ("camera", "chelsea", "astronaut", "coffee")


def sample_image(name: str = "camera", *, gray: bool = False) -> torch.Tensor:
    """Return one of scikit-image's bundled photos as a ``C x H x W`` float tensor in [0, 1].

    Args:
        name: One of :data:`SAMPLE_IMAGES`: ``"camera"`` (512 x 512 grayscale),
            ``"chelsea"`` (a cat), ``"astronaut"`` or ``"coffee"`` (colour).
        gray: Convert a colour photo to one luminance channel.

    Raises:
        ValueError: ``name`` is not a known photo.

    Example:
        >>> sample_image("camera").shape
        torch.Size([1, 512, 512])
    """
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"unknown sample image {name!r}: choose one of {', '.join(SAMPLE_IMAGES)}")
    from skimage import color, data  # imported here: only the kernel chapters need it

    image = getattr(data, name)()  # uint8, H x W or H x W x 3
    if gray and image.ndim == 3:
        image = color.rgb2gray(image)  # float64 in [0, 1]
    elif image.dtype == np.uint8:
        image = image / 255.0
    tensor = torch.from_numpy(np.asarray(image, dtype=np.float32))
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
