"""Convolution and pooling from scratch (chapter 2): loops, then im2col, checked against torch."""

from .conv import Conv2d, col2im, conv2d, im2col
from .pool import AvgPool2d, MaxPool2d, avg_pool2d, max_pool2d

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "MaxPool2d",
    "avg_pool2d",
    "col2im",
    "conv2d",
    "im2col",
    "max_pool2d",
]
