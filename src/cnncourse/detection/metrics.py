"""How detectors are scored: precision and recall over a ranking, average precision, mAP, panoptic quality.

A detector returns, for each image, boxes with a class and a score. Each
class is scored on its own:

1. **Match.** In each image, take the class's detections in order of
   decreasing score; a detection is a true positive when it overlaps a
   ground-truth box of its class, not yet taken by a better-scored
   detection, with an IoU of at least the threshold (the one it overlaps
   most); otherwise it is a false positive. A second detection of an item
   already found is a false positive: detecting twice is an error.
2. **Rank.** Pool the class's detections of every image and sort them by
   score. Going down the list, precision (true positives among the
   detections so far) and recall (true positives among all ground-truth
   items) trace the precision-recall curve.
3. **Average.** Average precision (AP) summarises the curve: the precision,
   made monotone (at each recall, the best precision at that recall or
   beyond), averaged over recall levels. PASCAL VOC 2007 averaged it at 11
   recall levels 0, 0.1, ..., 1; VOC 2010 and later take the exact area
   under the monotone curve (``interpolation="all"``); COCO averages at 101
   levels 0, 0.01, ..., 1 (``"coco"``, the default here, as in
   ``pycocotools`` and ``torchmetrics``).
4. **Mean.** mAP is the mean of the classes' APs. "AP at IoU 0.5" (VOC's
   criterion, ``map_50``) counts a box as found when it overlaps by half;
   COCO's mAP averages AP over the IoU thresholds 0.5, 0.55, ..., 0.95, so it
   also rewards precise boxes.

:func:`mean_average_precision` follows COCO's evaluation (``pycocotools``'
``COCOeval``) to the letter for boxes and for masks (``iou_type="segm"``):
at most ``max_detections`` detections per image and class, ties between
equal IoUs resolved as it does; ``tests/test_detection.py`` checks it
against ``torchmetrics.detection.MeanAveragePrecision`` on the same
predictions. Classes with no ground truth anywhere have no AP (NaN) and are
left out of the mean, as in COCO.

:func:`panoptic_quality` scores panoptic segmentations (Kirillov et al.,
2019): every pixel has a class and, for the countable "things", an instance;
segments of the same class match when their IoU exceeds 0.5, and
``PQ = sum of matched IoUs / (TP + FP / 2 + FN / 2)`` per class, averaged
over the classes: segmentation quality (the mean IoU of the matches) times
recognition quality (an F1 score).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_LEVELS",
    "DetectionScores",
    "PanopticScores",
    "average_precision",
    "match_detections",
    "mean_average_precision",
    "panoptic_quality",
    "precision_recall_curve",
]

#: COCO's IoU thresholds 0.5, 0.55, ..., 0.95, exactly as pycocotools computes them (``np.linspace``, so
#: 0.7 is 0.7000000000000001: an IoU of exactly 0.7 fails it there, and here).
COCO_IOU_THRESHOLDS = tuple(np.linspace(0.5, 0.95, 10).tolist())
#: COCO's recall levels 0, 0.01, ..., 1, likewise (torchmetrics' defaults are float32 values close to these,
#: which shifts a few levels when a recall equals one exactly: pass these to compare).
COCO_RECALL_LEVELS = tuple(np.linspace(0.0, 1.0, 101).tolist())
_INTERPOLATIONS = ("coco", "voc2007", "all")

Target = Mapping[str, torch.Tensor]


def precision_recall_curve(
    scores: torch.Tensor, matched: torch.Tensor, num_ground_truth: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Precision and recall after each detection of a ranking, best score first.

    Args:
        scores: ``(D,)`` the detections' scores.
        matched: ``(D,)`` bool, True for a true positive.
        num_ground_truth: Ground-truth items of the class (all images).

    Returns:
        ``(precision, recall)``, two ``(D,)`` float64 tensors in the order
        of decreasing score (equal scores keep their given order).

    Example:
        >>> p, r = precision_recall_curve(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]), 4)
        >>> p.tolist(), r.tolist()
        ([1.0, 0.5, 0.6666666666666666], [0.25, 0.25, 0.5])
    """
    if num_ground_truth < 0:
        raise ValueError(f"num_ground_truth must be >= 0, got {num_ground_truth}")
    if scores.shape != matched.shape or scores.ndim != 1:
        raise ValueError(
            f"scores and matched must be two (D,) tensors, got {tuple(scores.shape)} and {tuple(matched.shape)}"
        )
    order = scores.argsort(descending=True, stable=True)
    hits = matched[order].to(torch.float64)
    true_positives = hits.cumsum(0)
    false_positives = (1 - hits).cumsum(0)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / num_ground_truth if num_ground_truth else torch.zeros_like(true_positives)
    return precision, recall


def average_precision(
    scores: torch.Tensor, matched: torch.Tensor, num_ground_truth: int, *, interpolation: str = "coco"
) -> float:
    """The average precision of one class's ranked detections.

    Args:
        scores: ``(D,)`` the detections' scores (of every image).
        matched: ``(D,)`` bool, True for a true positive (see :func:`match_detections`).
        num_ground_truth: Ground-truth items of the class, found or not.
        interpolation: How the monotone precision-recall curve is averaged:
            ``"coco"``, at the 101 recall levels 0, 0.01, ..., 1 (COCO, and
            pycocotools); ``"voc2007"``, at 11 levels 0, 0.1, ..., 1 (PASCAL
            VOC 2007); ``"all"``, the exact area under it (VOC 2010 on).

    Returns:
        AP in [0, 1]; NaN when there is no ground truth.

    Example:
        >>> average_precision(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]), 2,
        ...                   interpolation="all")
        0.8333333333333333
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    if num_ground_truth == 0:
        return float("nan")
    precision, recall = precision_recall_curve(scores, matched, num_ground_truth)
    # make precision monotone: at each rank, the best precision at that recall or beyond
    envelope = precision.flip(0).cummax(0).values.flip(0)
    if interpolation == "all":
        steps = torch.diff(recall, prepend=recall.new_zeros(1))
        return float((steps * envelope).sum())
    if interpolation == "coco":  # pycocotools: the precision at the first rank whose recall reaches each level
        levels = torch.tensor(COCO_RECALL_LEVELS, dtype=torch.float64)
        ranks = torch.searchsorted(recall, levels, side="left")
        padded = torch.cat([envelope, envelope.new_zeros(1)])  # levels never reached count 0
        return float(padded[ranks.clamp(max=len(envelope))].mean())
    # VOC 2007: the best precision at recall >= each level (0 where never reached)
    if not len(recall):
        return 0.0
    levels = torch.linspace(0, 1, 11, dtype=torch.float64)
    reached = recall[None, :] >= levels[:, None] - 1e-12
    return float(torch.where(reached, precision[None, :], 0.0).amax(1).mean())


def match_detections(ious: torch.Tensor, iou_thresholds: float | Sequence[float] = 0.5) -> torch.Tensor:
    """Greedy matching of one image's detections of one class to its ground truth, as COCO does it.

    The detections must come in order of decreasing score. Each in turn takes
    the ground-truth item it overlaps most, among those not taken yet and
    overlapping by at least the threshold (equal IoUs: the later item, as in
    pycocotools); without one it is a false positive.

    Args:
        ious: ``(D, G)`` IoUs of the detections (rows, best score first) with
            the ground-truth items (columns).
        iou_thresholds: One threshold, or several (each matched separately).

    Returns:
        ``(T, D)`` bool: which detections are true positives at each
        threshold (``T = 1`` for a single threshold).

    Example:
        >>> ious = torch.tensor([[0.8, 0.1], [0.6, 0.0], [0.0, 0.55]])
        >>> match_detections(ious, 0.5)
        tensor([[ True, False,  True]])
    """
    thresholds = torch.as_tensor(iou_thresholds, dtype=torch.float64).reshape(-1)
    thresholds = thresholds.clamp(max=1 - 1e-10)  # pycocotools: an IoU of exactly 1 passes every threshold
    num_det, num_gt = ious.shape
    matched = torch.zeros(len(thresholds), num_det, dtype=torch.bool)
    taken = torch.zeros(len(thresholds), num_gt, dtype=torch.bool)
    if num_det == 0 or num_gt == 0:
        return matched
    ious = ious.to(torch.float64)
    for d in range(num_det):
        candidates = torch.where(taken, -1.0, ious[d][None, :])  # T x G
        ok = candidates >= thresholds[:, None]
        found = ok.any(1)
        masked = torch.where(ok, candidates, -1.0)
        best = num_gt - 1 - masked.flip(1).argmax(1)  # the last of equal maxima, as pycocotools picks
        matched[found, d] = True
        taken[found, best[found]] = True
    return matched


@dataclass(frozen=True)
class DetectionScores:
    """Average precision per IoU threshold and class, and the means a paper reports.

    Attributes:
        ap: ``(T, C)`` float64: AP of class ``c`` (label ``c + 1``) at
            threshold ``iou_thresholds[t]``; NaN for a class with no ground
            truth in the data set.
        iou_thresholds: The ``T`` thresholds.
        num_ground_truth: ``(C,)`` items of each class in the data set.
        iou_type: ``"bbox"`` or ``"segm"``.
    """

    ap: torch.Tensor
    iou_thresholds: tuple[float, ...]
    num_ground_truth: torch.Tensor
    iou_type: str = "bbox"

    def _at(self, threshold: float) -> torch.Tensor:
        for t, value in enumerate(self.iou_thresholds):
            if abs(value - threshold) < 1e-9:
                return self.ap[t]
        raise KeyError(f"IoU {threshold} was not evaluated; the thresholds are {self.iou_thresholds}")

    @property
    def per_class(self) -> torch.Tensor:
        """``(C,)`` each class's AP averaged over the thresholds (COCO's per-class AP)."""
        return self.ap.mean(0)

    @property
    def map(self) -> float:
        """The mean over classes (with ground truth) of :attr:`per_class`: COCO's mAP over IoU 0.5:0.95."""
        return float(self.per_class.nanmean())

    @property
    def ap_50(self) -> torch.Tensor:
        """``(C,)`` each class's AP at IoU 0.5."""
        return self._at(0.5)

    @property
    def map_50(self) -> float:
        """mAP at IoU 0.5 (VOC's criterion, COCO's "AP50")."""
        return float(self._at(0.5).nanmean())

    @property
    def map_75(self) -> float:
        """mAP at IoU 0.75 (COCO's "AP75", strict localisation)."""
        return float(self._at(0.75).nanmean())

    def to_dict(self) -> dict[str, float | list[float]]:
        """The headline numbers and per-class lists (NaN as None), as the zoo records them."""

        def listed(values: torch.Tensor) -> list[float | None]:
            return [None if v != v else round(v, 6) for v in values.tolist()]

        out: dict[str, float | list[float]] = {"map": self.map}
        for name, t in (("map_50", 0.5), ("map_75", 0.75)):
            if any(abs(v - t) < 1e-9 for v in self.iou_thresholds):
                out[name] = getattr(self, name)
        if "map_50" in out:
            out["ap_50"] = listed(self.ap_50)
        out["ap"] = listed(self.per_class)
        return out


def _pairwise_iou(pred: Target, target: Target, iou_type: str) -> torch.Tensor:
    if iou_type == "bbox":
        from torchvision.ops import box_iou

        return box_iou(pred["boxes"].to(torch.float64), target["boxes"].to(torch.float64))
    a = pred["masks"].flatten(1).to(torch.float64)
    b = target["masks"].flatten(1).to(torch.float64)
    intersection = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), 0.0)


def _check_pair(pred: Target, target: Target, iou_type: str, index: int) -> None:
    need = {"boxes", "scores", "labels"} if iou_type == "bbox" else {"masks", "scores", "labels"}
    missing = need - set(pred)
    if missing:
        raise ValueError(f"prediction {index} lacks {sorted(missing)}: detections are dicts with {sorted(need)}")
    key = "boxes" if iou_type == "bbox" else "masks"
    if key not in target or "labels" not in target:
        raise ValueError(f"target {index} lacks {key!r} or 'labels'")


def mean_average_precision(
    predictions: Sequence[Target],
    targets: Sequence[Target],
    *,
    iou_type: str = "bbox",
    iou_thresholds: Iterable[float] = COCO_IOU_THRESHOLDS,
    num_classes: int | None = None,
    max_detections: int = 100,
) -> DetectionScores:
    """Average precision of each class at each IoU threshold, over a data set, as COCO computes it.

    Args:
        predictions: One dict per image, torchvision's detection format:
            ``boxes`` ``(D, 4)`` xyxy (or ``masks`` ``(D, H, W)`` bool for
            ``iou_type="segm"``), ``scores`` ``(D,)``, ``labels`` ``(D,)`` in
            1..``num_classes``.
        targets: One dict per image: ``boxes`` (or ``masks``) and ``labels``.
        iou_type: ``"bbox"`` (box IoU) or ``"segm"`` (mask IoU: instance
            segmentation).
        iou_thresholds: Default COCO's 0.5, 0.55, ..., 0.95; ``(0.5,)`` for VOC's AP.
        num_classes: Classes are labels 1..``num_classes`` (default: the
            largest label seen).
        max_detections: At most this many detections per image and class
            count, the best-scored (COCO: 100).

    Returns:
        :class:`DetectionScores`: ``.map_50``, ``.map``, ``.ap_50`` and
        ``.per_class`` give the usual numbers.

    Raises:
        ValueError: Different numbers of predictions and targets, a bad
            ``iou_type``, or dicts without the fields.

    Example:
        >>> target = {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])}
        >>> pred = {"boxes": torch.tensor([[0.0, 0, 10, 9]]), "scores": torch.tensor([0.9]),
        ...         "labels": torch.tensor([1])}
        >>> scores = mean_average_precision([pred], [target])
        >>> scores.map_50, round(scores.map, 2)
        (1.0, 0.9)
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' (boxes) or 'segm' (masks), got {iou_type!r}")
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets: give one dict per image each")
    thresholds = tuple(float(t) for t in iou_thresholds)
    if not thresholds or not all(0 < t <= 1 for t in thresholds):
        raise ValueError(f"iou_thresholds must be values in (0, 1], got {thresholds}")
    if num_classes is None:
        labels = [d["labels"] for d in (*predictions, *targets) if len(d["labels"])]
        num_classes = int(max((int(l.max()) for l in labels), default=0))
    # per class: the scores and true-positive flags (T x D) of every image's detections, and the number of items
    scores: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    hits: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for index, (pred, target) in enumerate(zip(predictions, targets)):
        _check_pair(pred, target, iou_type, index)
        pred_labels, gt_labels = pred["labels"].cpu(), target["labels"].cpu()
        if len(gt_labels):
            counts += torch.bincount(gt_labels - 1, minlength=num_classes)[:num_classes]
        for label in torch.cat([pred_labels, gt_labels]).unique().tolist():
            if not 1 <= label <= num_classes:
                raise ValueError(f"label {label} in image {index} is outside 1..{num_classes}")
            mine = (pred_labels == label).nonzero().flatten()
            order = pred["scores"].cpu()[mine].argsort(descending=True, stable=True)[:max_detections]
            mine = mine[order]
            if not len(mine):
                continue
            theirs = (gt_labels == label).nonzero().flatten()
            selected = {k: v.cpu()[mine] for k, v in pred.items() if k in ("boxes", "masks")}
            truth = {k: v.cpu()[theirs] for k, v in target.items() if k in ("boxes", "masks")}
            ious = _pairwise_iou(selected, truth, iou_type) if len(theirs) else torch.zeros(len(mine), 0)
            scores[label - 1].append(pred["scores"].cpu()[mine])
            hits[label - 1].append(match_detections(ious, thresholds))
    ap = torch.full((len(thresholds), num_classes), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        if counts[c] == 0:
            continue
        if not scores[c]:
            ap[:, c] = 0.0
            continue
        class_scores, class_hits = torch.cat(scores[c]), torch.cat(hits[c], dim=1)
        for t in range(len(thresholds)):
            ap[t, c] = average_precision(class_scores, class_hits[t], int(counts[c]))
    return DetectionScores(ap, thresholds, counts, iou_type)


# --- panoptic quality ----------------------------------------------------------


@dataclass(frozen=True)
class PanopticScores:
    """Panoptic quality and its two factors, over all classes and per class.

    Attributes:
        pq, sq, rq: Means over the classes that occur (in the truth or the
            predictions): panoptic, segmentation and recognition quality.
        per_class: ``{class: (pq, sq, rq)}``.
        tp, fp, fn: ``{class: count}`` of matched, unmatched predicted and
            unmatched true segments.
    """

    pq: float
    sq: float
    rq: float
    per_class: dict[int, tuple[float, float, float]]
    tp: dict[int, int]
    fp: dict[int, int]
    fn: dict[int, int]


def _segments(panoptic: torch.Tensor, stuffs: set[int]) -> tuple[torch.Tensor, dict[int, int]]:
    """Segment ids of one ``(H, W, 2)`` panoptic map, and each segment's class (stuff ignores the instance)."""
    category, instance = panoptic[..., 0].long(), panoptic[..., 1].long()
    is_stuff = torch.zeros_like(category, dtype=torch.bool)
    for c in stuffs:
        is_stuff |= category == c
    instance = torch.where(is_stuff, 0, instance)
    width = int(instance.max()) + 1 if instance.numel() else 1
    ids, segment = (category * width + instance).flatten().unique(return_inverse=True)
    return segment.view_as(category), {i: int(k) // width for i, k in enumerate(ids.tolist())}


def panoptic_quality(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    *,
    things: Iterable[int],
    stuffs: Iterable[int],
) -> PanopticScores:
    """Panoptic quality (Kirillov et al., 2019) of panoptic segmentations.

    Each pixel carries ``(class, instance)``. A segment is the set of pixels
    of one thing instance, or all pixels of one stuff class in an image.
    Predicted and true segments of the same class match when their IoU is
    above 0.5 (so at most one each). Per class, over all images,
    ``PQ = sum of matched IoUs / (TP + FP / 2 + FN / 2) = SQ x RQ``, where
    ``SQ`` is the mean IoU of the matches and ``RQ = TP / (TP + FP / 2 + FN / 2)``
    an F1 score; the overall numbers are means over the classes that occur.
    There is no "void" label here: every pixel is labelled.

    Args:
        predictions: ``(N, H, W, 2)`` (or ``(H, W, 2)``) integer maps of
            ``(class, instance id)``; for stuff classes the id is ignored.
        targets: The same for the truth.
        things: Classes with instances (the canvases: 1..10).
        stuffs: Amorphous classes (the canvases: 0, the background).

    Returns:
        :class:`PanopticScores`.

    Example:
        >>> truth = torch.zeros(4, 4, 2, dtype=torch.long); truth[:2, :2] = torch.tensor([1, 1])
        >>> pred = truth.clone(); pred[0, 0] = torch.tensor([0, 0])
        >>> round(panoptic_quality(pred, truth, things=[1], stuffs=[0]).pq, 4)
        0.8365
    """
    things, stuffs = set(things), set(stuffs)
    if things & stuffs:
        raise ValueError(f"classes {sorted(things & stuffs)} are both things and stuffs")
    if predictions.shape != targets.shape or predictions.shape[-1] != 2:
        raise ValueError(
            f"predictions and targets must be (N, H, W, 2) maps of the same shape, got "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    if predictions.ndim == 3:
        predictions, targets = predictions[None], targets[None]
    known = things | stuffs
    iou_sums: dict[int, float] = {}
    tp: dict[int, int] = {}
    fp: dict[int, int] = {}
    fn: dict[int, int] = {}
    for pred, truth in zip(predictions, targets):
        for name, classes in (("prediction", pred[..., 0].unique()), ("target", truth[..., 0].unique())):
            unknown = set(classes.tolist()) - known
            if unknown:
                raise ValueError(f"the {name} holds classes {sorted(unknown)} that are neither things nor stuffs")
        pred_seg, pred_cls = _segments(pred, stuffs)
        true_seg, true_cls = _segments(truth, stuffs)
        n_pred, n_true = len(pred_cls), len(true_cls)
        joint = torch.bincount((pred_seg * n_true + true_seg).flatten(), minlength=n_pred * n_true)
        intersection = joint.view(n_pred, n_true).to(torch.float64)
        union = intersection.sum(1)[:, None] + intersection.sum(0)[None, :] - intersection
        iou = intersection / union
        same = torch.tensor([[pred_cls[p] == true_cls[t] for t in range(n_true)] for p in range(n_pred)])
        match = (iou > 0.5) & same  # at most one per row and column: IoU > 0.5 is unique
        for p, c in pred_cls.items():
            if match[p].any():
                tp[c] = tp.get(c, 0) + 1
                iou_sums[c] = iou_sums.get(c, 0.0) + float(iou[p][match[p]].sum())
            else:
                fp[c] = fp.get(c, 0) + 1
        for t, c in true_cls.items():
            if not match[:, t].any():
                fn[c] = fn.get(c, 0) + 1
    per_class = {}
    for c in sorted(set(tp) | set(fp) | set(fn)):
        n_tp, n_fp, n_fn = tp.get(c, 0), fp.get(c, 0), fn.get(c, 0)
        sq = iou_sums.get(c, 0.0) / n_tp if n_tp else 0.0
        rq = n_tp / (n_tp + 0.5 * n_fp + 0.5 * n_fn)
        per_class[c] = (sq * rq, sq, rq)
    if not per_class:
        raise ValueError("no segments at all: the maps are empty")
    means = [sum(v[i] for v in per_class.values()) / len(per_class) for i in range(3)]
    return PanopticScores(*means, per_class=per_class, tp=tp, fp=fp, fn=fn)
