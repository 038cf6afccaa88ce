"""Training: the loop, its callbacks, metrics (segmentation's too), the history it returns and the learning-rate range test."""

from .callbacks import Callback, EarlyStopping, LRScheduler, ModelCheckpoint, TensorBoard
from .history import History
from .loop import evaluate, fit, predict
from .lr_finder import LRRangeTest, lr_range_test
from .metrics import (
    accuracy,
    confusion_matrix,
    iou_from_confusion,
    mean_iou,
    multilabel_accuracy,
    pixel_accuracy,
    top_k_accuracy,
)
from .segmentation import DiceLoss, SegmentationScores, class_weights, dice_loss, segmentation_scores

__all__ = [
    "Callback",
    "DiceLoss",
    "EarlyStopping",
    "History",
    "LRRangeTest",
    "LRScheduler",
    "ModelCheckpoint",
    "SegmentationScores",
    "TensorBoard",
    "accuracy",
    "class_weights",
    "confusion_matrix",
    "dice_loss",
    "evaluate",
    "fit",
    "iou_from_confusion",
    "lr_range_test",
    "mean_iou",
    "multilabel_accuracy",
    "pixel_accuracy",
    "predict",
    "segmentation_scores",
    "top_k_accuracy",
]
