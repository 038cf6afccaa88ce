"""Instance and panoptic segmentation from a detector's boxes and a segmenter's class map.

A detector says where each item is (a box) and what it is; a semantic
segmenter says what every pixel shows, but not which item it belongs to.
Together they give instance masks: the pixels inside an item's box whose
predicted class is the item's. Mask R-CNN learns a mask head instead (a
small network that predicts a mask inside each box, chapter 19); this
combination needs no new training and shows what each part contributes.

A panoptic segmentation gives every pixel a class and, for the countable
"things", an instance: here the items are the things and the background is
the one "stuff" class. :func:`panoptic_map` paints the instance masks in
order of decreasing score, as Kirillov et al. (2019) combine Mask R-CNN's
masks with a semantic segmentation, and the rest is background.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["instance_masks", "panoptic_map", "panoptic_target"]

Detections = Sequence[Mapping[str, torch.Tensor]]


def _inside(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(D, H, W)`` bool: the pixels whose centre lies in each box (pixel ``i`` spans ``[i - 0.5, i + 0.5]``)."""
    ys = torch.arange(height, dtype=torch.float32, device=boxes.device)
    xs = torch.arange(width, dtype=torch.float32, device=boxes.device)
    x1, y1, x2, y2 = (boxes[:, i, None].float() for i in range(4))
    in_x = (xs >= x1.round()) & (xs <= x2.round())  # D x W
    in_y = (ys >= y1.round()) & (ys <= y2.round())  # D x H
    return in_y[:, :, None] & in_x[:, None, :]


def instance_masks(detections: Detections, class_maps: torch.Tensor, *, exclusive: bool = True) -> list[dict]:
    """Give each detection a mask: the pixels in its box that the class map assigns to its class.

    Args:
        detections: One dict per image with ``boxes`` (xyxy, pixel indices
            as the canvases' boxes are), ``labels`` and ``scores``.
        class_maps: ``(N, H, W)`` predicted classes (0 the background), e.g.
            the argmax of a U-Net's logits.
        exclusive: Each pixel goes to one detection at most, the best-scored
            one that claims it (as the canvases' visible masks are disjoint);
            ``False`` lets overlapping boxes share pixels.

    Returns:
        Copies of the dicts with ``masks`` ``(D, H, W)`` bool added.

    Example:
        >>> d = {"boxes": torch.tensor([[0.0, 0, 1, 1]]), "labels": torch.tensor([2]), "scores": torch.tensor([0.9])}
        >>> instance_masks([d], torch.tensor([[[2, 0], [2, 2]]]))[0]["masks"].int().tolist()
        [[[1, 0], [1, 1]]]
    """
    if len(detections) != len(class_maps):
        raise ValueError(f"{len(detections)} images of detections for {len(class_maps)} class maps")
    out = []
    for found, classes in zip(detections, class_maps):
        height, width = classes.shape
        boxes, labels = found["boxes"], found["labels"]
        masks = _inside(boxes, height, width) & (classes[None] == labels[:, None, None])
        if exclusive and len(masks):
            order = found["scores"].argsort(descending=True, stable=True)
            taken = torch.zeros_like(masks[0])
            for d in order.tolist():
                masks[d] &= ~taken
                taken |= masks[d]
        out.append({**found, "masks": masks})
    return out


def panoptic_map(
    detections: Mapping[str, torch.Tensor],
    size: tuple[int, int],
    *,
    score_threshold: float = 0.5,
    min_kept: float = 0.5,
    background: int = 0,
) -> torch.Tensor:
    """One image's panoptic segmentation from instance masks: things painted best first, stuff elsewhere.

    Args:
        detections: A dict with ``masks`` ``(D, H, W)``, ``labels`` and ``scores``.
        size: ``(H, W)``.
        score_threshold: Only detections scoring at least this become segments.
        min_kept: A detection whose mask keeps less than this fraction of its
            pixels after the better-scored ones are painted is dropped (a
            duplicate, or an item mostly hidden by another).
        background: The stuff class of the pixels no segment covers.

    Returns:
        ``(H, W, 2)`` int64: the class and the instance id (1, 2, ... for
        things, 0 for stuff) of every pixel, the format of
        :func:`~cnncourse.detection.panoptic_quality`.
    """
    category = torch.full(size, background, dtype=torch.int64)
    instance = torch.zeros(size, dtype=torch.int64)
    taken = torch.zeros(size, dtype=torch.bool)
    order = detections["scores"].argsort(descending=True, stable=True)
    next_id = 1
    for d in order.tolist():
        if detections["scores"][d] < score_threshold:
            break
        mask = detections["masks"][d].bool()
        area = int(mask.sum())
        free = mask & ~taken
        if area == 0 or int(free.sum()) < min_kept * area:
            continue
        category[free], instance[free] = int(detections["labels"][d]), next_id
        taken |= free
        next_id += 1
    return torch.stack([category, instance], -1)


def panoptic_target(target: Mapping[str, torch.Tensor], *, background: int = 0) -> torch.Tensor:
    """The true panoptic map of a canvas: its items (``masks``, ``labels``) as things, the rest background.

    Returns:
        ``(H, W, 2)`` int64, instance ids 1..K in the order of the target's items.
    """
    masks = target["masks"].bool()
    size = tuple(masks.shape[-2:]) if masks.ndim == 3 else tuple(target["semantic"].shape)
    category = torch.full(size, background, dtype=torch.int64)
    instance = torch.zeros(size, dtype=torch.int64)
    for k, (mask, label) in enumerate(zip(masks, target["labels"].tolist()), start=1):
        category[mask], instance[mask] = label, k
    return torch.stack([category, instance], -1)
