"""Models: a small CNN for the training chapters and the architecture line."""

from .simple import simple_cnn

__all__ = ["simple_cnn"]
