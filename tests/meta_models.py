"""Models built on the meta device, shared by the model and summary tests."""

from __future__ import annotations

import torch
from torch import nn

from cnncourse import create_model

_BUILT: dict[tuple, nn.Module] = {}


def on_meta(name: str, **kwargs) -> nn.Module:
    """Build a model on the meta device (shapes only: no memory, no initialisation), once per test session.

    The same object is returned to every caller: tests must not change it.
    """
    key = (name, tuple(sorted(kwargs.items())))
    if key not in _BUILT:
        with torch.device("meta"):
            _BUILT[key] = create_model(name, **kwargs)
    return _BUILT[key]
