"""Training: the loop, its callbacks, metrics, the history it returns and the learning-rate range test."""

from .callbacks import Callback, EarlyStopping, LRScheduler, ModelCheckpoint, TensorBoard
from .history import History
from .loop import evaluate, fit, predict
from .lr_finder import LRRangeTest, lr_range_test
from .metrics import accuracy, confusion_matrix, multilabel_accuracy, top_k_accuracy

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "LRRangeTest",
    "LRScheduler",
    "ModelCheckpoint",
    "TensorBoard",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "lr_range_test",
    "multilabel_accuracy",
    "predict",
    "top_k_accuracy",
]
