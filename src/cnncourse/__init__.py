"""cnncourse: the layers, models and training loop behind the cnncourse book."""

from .device import describe_device, get_device
from .notebook import fast_profile
from .seed import seed_everything
from .training import History, evaluate, fit, predict

__all__ = [
    "History",
    "describe_device",
    "evaluate",
    "fast_profile",
    "fit",
    "get_device",
    "predict",
    "seed_everything",
]
__version__ = "0.1.0"
