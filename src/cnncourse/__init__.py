"""cnncourse: the layers, models and training loop behind the cnncourse book."""

from .arithmetic import (
    ReceptiveField,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    receptive_field,
    same_padding,
)
from .device import describe_device, get_device
from .notebook import fast_profile
from .seed import seed_everything
from .training import History, evaluate, fit, predict

__all__ = [
    "History",
    "ReceptiveField",
    "conv_output_size",
    "conv_transpose_output_size",
    "pool_output_size",
    "receptive_field",
    "same_padding",
    "describe_device",
    "evaluate",
    "fast_profile",
    "fit",
    "get_device",
    "predict",
    "seed_everything",
]
__version__ = "0.1.0"
