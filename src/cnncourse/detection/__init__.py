"""Detection: boxes from scratch (for teaching), AP and panoptic quality, scoring detectors, masks from boxes."""

from .boxes import batched_nms, box_area, box_iou, nms
from .evaluation import DetectionValidation, detect, evaluate_detector
from .instances import instance_masks, panoptic_map, panoptic_target
from .metrics import (
    COCO_IOU_THRESHOLDS,
    COCO_RECALL_LEVELS,
    DetectionScores,
    PanopticScores,
    average_precision,
    match_detections,
    mean_average_precision,
    panoptic_quality,
    precision_recall_curve,
)

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_LEVELS",
    "DetectionScores",
    "DetectionValidation",
    "PanopticScores",
    "average_precision",
    "batched_nms",
    "box_area",
    "box_iou",
    "detect",
    "evaluate_detector",
    "instance_masks",
    "match_detections",
    "mean_average_precision",
    "nms",
    "panoptic_map",
    "panoptic_quality",
    "panoptic_target",
    "precision_recall_curve",
]
