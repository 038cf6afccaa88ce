"""The book's data: Fashion-MNIST offline first, canvases of its items, scikit-learn's digits, tensor
loaders, and offline photos."""

from .canvas import (
    CANVAS_CLASSES,
    CANVAS_SPLITS,
    FashionCanvas,
    canvas_augmentation,
    canvas_splits,
    detection_collate,
    fashion_canvas,
)
from .digits import DIGITS_CLASSES, digits
from .fashion import (
    DEBIAN_FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    DataSplits,
    can_reach,
    default_data_root,
    fashion_mnist,
    prepare_fashion_mnist,
)
from .loaders import ShardedSampler, tensor_loader
from .photos import SAMPLE_IMAGES, sample_image

__all__ = [
    "CANVAS_CLASSES",
    "CANVAS_SPLITS",
    "DEBIAN_FASHION_MNIST",
    "DIGITS_CLASSES",
    "FASHION_MNIST_CLASSES",
    "SAMPLE_IMAGES",
    "ShardedSampler",
    "DataSplits",
    "FashionCanvas",
    "can_reach",
    "canvas_augmentation",
    "canvas_splits",
    "default_data_root",
    "detection_collate",
    "digits",
    "fashion_canvas",
    "fashion_mnist",
    "prepare_fashion_mnist",
    "sample_image",
    "tensor_loader",
]
