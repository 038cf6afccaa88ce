"""Training: the loop, its callbacks, metrics and the history it returns."""

from .callbacks import Callback, EarlyStopping, LRScheduler, ModelCheckpoint, TensorBoard
from .history import History
from .loop import evaluate, fit, predict
from .metrics import accuracy, confusion_matrix, top_k_accuracy

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "LRScheduler",
    "ModelCheckpoint",
    "TensorBoard",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "predict",
    "top_k_accuracy",
]
