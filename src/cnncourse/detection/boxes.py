"""Boxes from scratch, for teaching: area, intersection over union and non-maximum suppression.

Chapter 19 builds these step by step and checks them against
``torchvision.ops`` (``box_area``, ``box_iou``, ``nms``, ``batched_nms``);
``tests/test_detection.py`` runs the same checks on many random boxes. The
rest of the package calls ``torchvision.ops`` itself, which is written in C++
and CUDA and handles the corner cases: these functions are here so that the
chapter's versions are the tested ones, not pasted copies.

Boxes are ``(x1, y1, x2, y2)`` ("xyxy"), as in torchvision: the top-left and
the bottom-right corner, continuous coordinates, so a box's width is
``x2 - x1``. ``torchvision.ops.box_convert`` turns other formats (``"xywh"``,
COCO's; ``"cxcywh"``, a centre and a size) into this one.
"""

from __future__ import annotations

import torch

__all__ = ["batched_nms", "box_area", "box_iou", "nms"]


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """The area of each box: ``(x2 - x1) (y2 - y1)``.

    Shape:
        - boxes: ``(N, 4)`` xyxy; output: ``(N,)``.

    Example:
        >>> box_area(torch.tensor([[0.0, 0.0, 2.0, 3.0]]))
        tensor([6.])
    """
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every box of ``boxes1`` with every box of ``boxes2``.

    The intersection of two boxes is a box too: its top-left corner is the
    larger of the two top-left corners, its bottom-right corner the smaller of
    the two bottom-right corners; when those cross, the boxes do not overlap
    and the width or height is clamped to 0. The union is the sum of the areas
    less the intersection, counted twice.

    Shape:
        - boxes1: ``(N, 4)``, boxes2: ``(M, 4)``, xyxy; output: ``(N, M)``.

    Example:
        >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0]]))
        tensor([[0.3333]])
    """
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # N x M x 2
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # N x M x 2
    sides = (bottom_right - top_left).clamp(min=0)
    intersection = sides[..., 0] * sides[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - intersection
    return intersection / union


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: keep the best box, drop those that overlap it, repeat.

    Take the boxes in order of decreasing score; keep a box unless its IoU
    with a box already kept is larger than ``iou_threshold``.

    Returns:
        The indices of the kept boxes, ``int64``, in order of decreasing score
        (what ``torchvision.ops.nms`` returns).

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
        >>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        tensor([0, 2])
    """
    order = scores.argsort(descending=True, stable=True)
    overlaps = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i].item())
        suppressed |= overlaps[i] > iou_threshold  # the later (lower-scoring) boxes it overlaps too much
    return torch.tensor(keep, dtype=torch.int64)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Non-maximum suppression within each class: boxes of different classes never suppress each other.

    The trick torchvision uses: shift every class's boxes by its own offset,
    larger than any coordinate, so boxes of different classes cannot
    overlap, then run :func:`nms` once over all of them.

    Returns:
        The indices of the kept boxes, in order of decreasing score.

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10]])
        >>> batched_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([1, 2]), 0.5)
        tensor([0, 1])
    """
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.int64)
    offsets = labels.to(boxes) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
