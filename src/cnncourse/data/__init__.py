"""The book's data: Fashion-MNIST offline first, tensor loaders, and offline photos."""

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
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_CLASSES",
    "SAMPLE_IMAGES",
    "ShardedSampler",
    "DataSplits",
    "can_reach",
    "default_data_root",
    "fashion_mnist",
    "prepare_fashion_mnist",
    "sample_image",
    "tensor_loader",
]
