"""The model registry: every builder of the architecture line under one name.

A registry is a dict from names to builder functions plus a decorator that adds
to it. Builders register themselves where they are defined (``@register_model``
above ``def resnet18``); importing :mod:`cnncourse.models` imports every model
file and so fills the registry. :func:`create_model` then builds a model from a
string, which is what a chapter comparing architectures loops over::

    for name in ["vgg_small", "googlenet_small", "resnet20"]:
        model = create_model(name, num_classes=10, in_channels=1)
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from .simple import simple_cnn

__all__ = ["create_model", "list_models", "register_model"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(builder: Builder) -> Builder:
    """Add a builder to the registry under its function name and return it unchanged.

    Args:
        builder: A function that takes ``num_classes`` and ``in_channels``
            (and keyword options) and returns an ``nn.Module``.

    Returns:
        The same function, so that it can be used as a decorator.

    Raises:
        ValueError: A model of that name is already registered.

    Example::

        @register_model
        def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
            return LeNet5(num_classes, in_channels)
    """
    name = builder.__name__
    if name in _MODELS:
        raise ValueError(
            f"a model named {name!r} is already registered (by {_MODELS[name].__module__}); "
            "give the new builder a different function name"
        )
    _MODELS[name] = builder
    return builder


def list_models(pattern: str | None = None) -> list[str]:
    """Return the registered model names, sorted, optionally filtered by a shell-style pattern.

    Args:
        pattern: ``fnmatch`` pattern such as ``"resnet*"`` or ``"*_small"``;
            None lists everything.

    Returns:
        The matching names in alphabetical order.

    Example:
        >>> list_models("vgg1*")
        ['vgg11', 'vgg13', 'vgg16', 'vgg19']
    """
    names = sorted(_MODELS)
    return names if pattern is None else fnmatch.filter(names, pattern)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name.

    Args:
        name: One of :func:`list_models`.
        **kwargs: Passed to the builder: ``num_classes``, ``in_channels`` and
            the builder's own options (``batch_norm=True`` for VGG, ...).

    Returns:
        The freshly initialised model.

    Raises:
        ValueError: No model has that name (the message lists them and
            suggests the closest).

    Example:
        >>> model = create_model("resnet20", num_classes=10, in_channels=1)
        >>> sum(p.numel() for p in model.parameters())
        269434
    """
    try:
        builder = _MODELS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), _MODELS, n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise ValueError(
            f"there is no model named {name!r}; {hint}the registered models are: {', '.join(list_models())}"
        ) from None
    return builder(**kwargs)


# simple.py predates the registry and stays as it is; it is registered here.
register_model(simple_cnn)
