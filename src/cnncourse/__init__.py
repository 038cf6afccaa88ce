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
from .models import create_model, list_models
from .notebook import Table, fast_profile, glue
from .seed import seed_everything
from .summary_table import summary
from .training import History, evaluate, fit, predict

__all__ = [
    "History",
    "ReceptiveField",
    "Table",
    "conv_output_size",
    "conv_transpose_output_size",
    "pool_output_size",
    "receptive_field",
    "same_padding",
    "create_model",
    "describe_device",
    "evaluate",
    "fast_profile",
    "fit",
    "get_device",
    "glue",
    "list_models",
    "predict",
    "seed_everything",
    "summary",
]
__version__ = "0.1.0"
