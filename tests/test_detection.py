"""Detection: the teaching IoU and NMS against torchvision, AP and mAP against torchmetrics (pycocotools),
panoptic quality by hand and against torchmetrics, the CenterNet's targets, loss and decoding, and fit training it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnncourse import fit, summary
from cnncourse.data import canvas_splits, fashion_canvas, tensor_loader
from cnncourse.detection import (
    COCO_IOU_THRESHOLDS,
    COCO_RECALL_LEVELS,
    DetectionValidation,
    average_precision,
    batched_nms,
    box_area,
    box_iou,
    detect,
    evaluate_detector,
    match_detections,
    mean_average_precision,
    nms,
    panoptic_quality,
    precision_recall_curve,
)
from cnncourse.models import CenterNet, CenterNetLoss, centernet, create_model
from cnncourse.models.centernet import decode, encode_targets, pad_targets, unpad_targets

torchvision = pytest.importorskip("torchvision")
torchmetrics = pytest.importorskip("torchmetrics")
from torchmetrics.detection import MeanAveragePrecision, PanopticQuality  # noqa: E402
from torchvision import ops  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def random_boxes(n: int, generator: torch.Generator, size: float = 64.0) -> torch.Tensor:
    corner = torch.rand(n, 2, generator=generator) * (size - 20)
    sides = 2 + torch.rand(n, 2, generator=generator) * 25
    return torch.cat([corner, corner + sides], 1)


# --- boxes: the chapter's versions equal torchvision's ------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_box_area_and_iou_equal_torchvisions(seed):
    g = torch.Generator().manual_seed(seed)
    a, b = random_boxes(30, g), random_boxes(17, g)
    b[:3] = a[:3]  # identical boxes: IoU 1
    b[3] = torch.tensor([200.0, 200, 210, 210])  # far away from all: IoU 0
    torch.testing.assert_close(box_area(a), ops.box_area(a))
    torch.testing.assert_close(box_iou(a, b), ops.box_iou(a, b))
    assert torch.allclose(box_iou(a, b)[:3, :3].diagonal(), torch.ones(3)) and (box_iou(a, b)[:, 3] == 0).all()


def test_box_iou_by_hand():
    # two 2 x 2 squares overlapping in a 1 x 2 strip: 2 / (4 + 4 - 2)
    iou = box_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 0, 3, 2], [2.0, 2, 4, 4]]))
    torch.testing.assert_close(iou, torch.tensor([[1 / 3, 0.0]]))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", range(4))
def test_nms_and_batched_nms_equal_torchvisions(seed, threshold):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(60, g, size=40)  # crowded: many overlaps
    scores = torch.randperm(60, generator=g).float() / 60  # distinct scores: one order
    labels = torch.randint(1, 4, (60,), generator=g)
    kept = nms(boxes, scores, threshold)
    assert torch.equal(kept, ops.nms(boxes, scores, threshold))
    assert 0 < len(kept) < 60
    assert torch.equal(batched_nms(boxes, scores, labels, threshold), ops.batched_nms(boxes, scores, labels, threshold))
    assert len(batched_nms(boxes, scores, labels, threshold)) >= len(kept)  # classes never suppress each other
    assert len(batched_nms(boxes[:0], scores[:0], labels[:0], threshold)) == 0


def test_nms_keeps_the_best_of_a_cluster():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [0, 1, 10, 11], [30, 30, 40, 40]])
    scores = torch.tensor([0.6, 0.9, 0.8, 0.3])
    assert nms(boxes, scores, 0.5).tolist() == [1, 3]


# --- precision, recall and AP -----------------------------------------------------------------


def test_precision_recall_and_ap_by_hand():
    # five detections of one class, best first: hit, miss, hit, hit, miss; four items
    scores = torch.tensor([0.95, 0.9, 0.8, 0.7, 0.6])
    hits = torch.tensor([True, False, True, True, False])
    precision, recall = precision_recall_curve(scores, hits, 4)
    assert precision.tolist() == [1.0, 0.5, 2 / 3, 0.75, 0.6]
    assert recall.tolist() == [0.25, 0.25, 0.5, 0.75, 0.75]
    # monotone curve: 1 up to recall 0.25, 0.75 up to 0.75, nothing beyond
    assert average_precision(scores, hits, 4, interpolation="all") == pytest.approx(0.25 * 1 + 0.5 * 0.75)
    assert average_precision(scores, hits, 4, interpolation="voc2007") == pytest.approx((3 * 1 + 5 * 0.75) / 11)
    assert average_precision(scores, hits, 4) == pytest.approx((26 * 1 + 50 * 0.75) / 101)  # levels 0..0.25, ..0.75
    shuffled = torch.tensor([3, 0, 4, 1, 2])
    assert average_precision(scores[shuffled], hits[shuffled], 4) == average_precision(scores, hits, 4)
    assert np.isnan(average_precision(scores, hits, 0))
    assert average_precision(scores[:0], hits[:0], 3) == 0.0
    with pytest.raises(ValueError, match="interpolation"):
        average_precision(scores, hits, 4, interpolation="voc")


def test_a_second_detection_of_the_same_item_is_a_false_positive():
    ious = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.3, 0.6]])
    assert match_detections(ious, 0.5).tolist() == [[True, False, True]]
    # a stricter threshold: the third detection no longer counts
    assert match_detections(ious, [0.5, 0.7]).tolist() == [[True, False, True], [True, False, False]]
    # a later detection may take the item the earlier one passed over
    assert match_detections(torch.tensor([[0.55, 0.7], [0.6, 0.9]]), 0.5).tolist() == [[True, True]]


def random_detections(
    seed: int, images: int = 30, classes: int = 5, masks: bool = False, size: int = 32, min_items: int = 0
):
    """Ground truth and noisy detections (jittered copies, wrong classes, strays), optionally with masks.

    With ``min_items=0`` the first image has no items (only false positives).
    """
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for i in range(images):
        k = int(torch.randint(0, 5, (1,), generator=g))
        k = 0 if i == 0 and min_items == 0 else max(k, min_items)  # the first image: without items
        boxes = random_boxes(k, g, size=size)
        labels = torch.randint(1, classes + 1, (k,), generator=g)
        d = int(torch.randint(0, 10, (1,), generator=g))
        source = torch.randint(0, max(k, 1), (d,), generator=g)
        pboxes = (boxes[source] if k else random_boxes(d, g, size=size)) + 2 * torch.randn(d, 4, generator=g)
        pboxes = torch.cat([torch.minimum(pboxes[:, :2], pboxes[:, 2:] - 1), pboxes[:, 2:]], 1)
        wrong = torch.randint(1, classes + 1, (d,), generator=g)
        plabels = torch.where(torch.rand(d, generator=g) < 0.7, labels[source] if k else wrong, wrong)
        pred = {"boxes": pboxes, "scores": torch.rand(d, generator=g), "labels": plabels}
        target = {"boxes": boxes, "labels": labels}
        if masks:
            target["masks"] = box_masks(boxes, size)
            pred["masks"] = box_masks(pboxes, size) & (torch.rand(d, size, size, generator=g) < 0.9)
        preds.append(pred)
        targets.append(target)
    return preds, targets


def box_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    grid = torch.arange(size).float()
    inside_x = (grid >= boxes[:, None, 0]) & (grid <= boxes[:, None, 2])
    inside_y = (grid >= boxes[:, None, 1]) & (grid <= boxes[:, None, 3])
    return inside_y[:, :, None] & inside_x[:, None, :]


def torchmetrics_map(preds, targets, iou_type: str = "bbox"):
    # pycocotools' own thresholds and recall levels (torchmetrics' defaults are float32 neighbours of them)
    metric = MeanAveragePrecision(
        iou_type=iou_type,
        class_metrics=True,
        backend="pycocotools",
        iou_thresholds=list(COCO_IOU_THRESHOLDS),
        rec_thresholds=list(COCO_RECALL_LEVELS),
    )
    metric.update(preds, targets)
    return metric.compute()


@pytest.mark.parametrize("seed", range(4))
def test_mean_average_precision_equals_torchmetrics_on_boxes(seed):
    preds, targets = random_detections(seed)
    ours = mean_average_precision(preds, targets)
    theirs = torchmetrics_map(preds, targets)
    assert abs(ours.map - theirs["map"].item()) <= 1e-4
    assert abs(ours.map_50 - theirs["map_50"].item()) <= 1e-4
    assert abs(ours.map_75 - theirs["map_75"].item()) <= 1e-4
    for label, value in zip(theirs["classes"].tolist(), theirs["map_per_class"].tolist()):
        assert abs(ours.per_class[label - 1].item() - value) <= 1e-4, label
    assert 0.05 < ours.map < ours.map_50 < 1  # a non-trivial case


@pytest.mark.parametrize("seed", range(2))
def test_mask_ap_equals_torchmetrics(seed):
    # torchmetrics leaves images without true masks out of its COCO data set in "segm" mode, and with them their
    # false positives (pycocotools itself keeps them, as we do): here every image has items
    preds, targets = random_detections(seed, images=15, masks=True, min_items=1)
    ours = mean_average_precision(preds, targets, iou_type="segm")
    theirs = torchmetrics_map(preds, targets, iou_type="segm")
    assert abs(ours.map - theirs["map"].item()) <= 1e-4
    assert abs(ours.map_50 - theirs["map_50"].item()) <= 1e-4
    assert ours.iou_type == "segm" and 0 < ours.map < 1


def test_map_with_torchmetrics_defaults_stays_close():
    # torchmetrics' default thresholds are float32 values; a recall exactly on a level may then shift by one rank
    preds, targets = random_detections(7)
    metric = MeanAveragePrecision(backend="pycocotools")
    metric.update(preds, targets)
    assert abs(mean_average_precision(preds, targets).map - metric.compute()["map"].item()) < 5e-3


def test_map_edge_cases():
    box = torch.tensor([[0.0, 0, 10, 10]])
    truth = [{"boxes": box, "labels": torch.tensor([1])}]
    perfect = [{"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}]
    assert mean_average_precision(perfect, truth).map == 1.0
    nothing = [{"boxes": box[:0], "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}]
    assert mean_average_precision(nothing, truth).map == 0.0
    # a class that only the detector sees has no AP and does not count
    extra = [{"boxes": box.repeat(2, 1), "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 2])}]
    scores = mean_average_precision(extra, truth, num_classes=3)
    assert scores.map == 1.0 and torch.isnan(scores.per_class[1:]).all()
    assert scores.to_dict()["ap"] == [1.0, None, None]
    # at most max_detections per image and class: a hit ranked below 100 misses is not counted
    many = torch.cat([torch.tensor([[50.0, 50, 60, 60]]).repeat(100, 1), box])
    ranked = [{"boxes": many, "scores": torch.linspace(1, 0.01, 101), "labels": torch.ones(101, dtype=torch.long)}]
    assert mean_average_precision(ranked, truth).map == 0.0
    assert mean_average_precision(ranked, truth, max_detections=101).map > 0
    with pytest.raises(ValueError, match="one dict per image"):
        mean_average_precision(perfect, truth * 2)
    with pytest.raises(ValueError, match="'bbox'"):
        mean_average_precision(perfect, truth, iou_type="box")
    with pytest.raises(ValueError, match="lacks"):
        mean_average_precision([{"boxes": box, "labels": torch.tensor([1])}], truth)
    with pytest.raises(KeyError, match="not evaluated"):
        mean_average_precision(perfect, truth, iou_thresholds=(0.6,)).map_50


# --- panoptic quality --------------------------------------------------------------------------


def panoptic(category: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
    return torch.stack([category, instance], -1)


def test_panoptic_quality_by_hand():
    # a 4 x 6 image: background (stuff 0) and two things of class 1 side by side
    category = torch.zeros(4, 6, dtype=torch.long)
    instance = torch.zeros(4, 6, dtype=torch.long)
    category[:2, :2], instance[:2, :2] = 1, 1  # 4 pixels
    category[:2, 3:5], instance[:2, 3:5] = 1, 2  # 4 pixels
    truth = panoptic(category, instance)
    assert panoptic_quality(truth, truth, things=[1], stuffs=[0]).pq == 1.0
    # the prediction misses one pixel of the first thing and the whole second one
    cat_p, inst_p = category.clone(), instance.clone()
    cat_p[0, 0], inst_p[0, 0] = 0, 0
    cat_p[:2, 3:5], inst_p[:2, 3:5] = 0, 0
    scores = panoptic_quality(panoptic(cat_p, inst_p), truth, things=[1], stuffs=[0])
    # thing 1: one match of IoU 3/4, one miss: PQ = 0.75 / (1 + 0.5); background: IoU 16/21, matched
    assert scores.tp == {0: 1, 1: 1} and scores.fn == {1: 1} and scores.fp == {}
    assert scores.per_class[1] == pytest.approx((0.5, 0.75, 2 / 3))
    assert scores.per_class[0] == pytest.approx((16 / 21, 16 / 21, 1.0))
    assert scores.pq == pytest.approx((0.5 + 16 / 21) / 2)
    # a segment matched to one of the wrong class: a false positive and a false negative
    wrong = panoptic(torch.where(category == 1, 2, 0), instance)
    bad = panoptic_quality(wrong, truth, things=[1, 2], stuffs=[0])
    assert bad.per_class[1][0] == 0 and bad.per_class[2][0] == 0 and bad.fp == {2: 2}
    with pytest.raises(ValueError, match="neither things nor stuffs"):
        panoptic_quality(truth, truth, things=[2], stuffs=[0])


def random_panoptic(seed: int, n: int = 3, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    maps = []
    for _ in range(n):
        category = torch.zeros(size, size, dtype=torch.long)
        instance = torch.zeros(size, size, dtype=torch.long)
        for k in range(1, int(torch.randint(1, 5, (1,), generator=g)) + 1):
            x, y = torch.randint(0, size - 6, (2,), generator=g).tolist()
            w, h = torch.randint(3, 7, (2,), generator=g).tolist()
            category[y : y + h, x : x + w] = int(torch.randint(1, 4, (1,), generator=g))
            instance[y : y + h, x : x + w] = k
        maps.append(panoptic(category, instance))
    return torch.stack(maps)


@pytest.mark.parametrize("seed", range(4))
def test_panoptic_quality_equals_torchmetrics(seed):
    truth = random_panoptic(seed)
    pred = truth.clone()
    g = torch.Generator().manual_seed(100 + seed)
    shift = torch.randint(-1, 2, (2,), generator=g).tolist()
    pred[1] = truth[1].roll(shifts=shift, dims=(0, 1))  # a little off
    pred[2] = random_panoptic(50 + seed, n=1)[0]  # unrelated
    ours = panoptic_quality(pred, truth, things=[1, 2, 3], stuffs=[0])
    metric = PanopticQuality(things={1, 2, 3}, stuffs={0}, return_sq_and_rq=True)
    theirs = metric(pred, truth)
    torch.testing.assert_close(
        torch.tensor([ours.pq, ours.sq, ours.rq]), theirs.double(), atol=1e-4, rtol=0, check_dtype=False
    )
    assert 0 < ours.pq < 1


# --- CenterNet ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canvases():
    return fashion_canvas("test", n=64)


def test_padded_boxes_are_the_canvas_targets(canvases):
    padded = canvases.boxes()
    assert padded.shape == (64, 4, 5)
    for i in range(len(canvases)):
        _, target = canvases[i]
        rows = unpad_targets(padded[i : i + 1])[0]
        assert torch.equal(rows["boxes"], target["boxes"]) and torch.equal(rows["labels"], target["labels"])
        again = unpad_targets(pad_targets([target], 4))[0]  # packed at the top, where the canvas keeps its slots
        assert torch.equal(again["boxes"], target["boxes"]) and torch.equal(again["labels"], target["labels"])
    data = canvases.detection_dataset()
    assert data.tensors[0].shape == (64, 1, 64, 64) and torch.equal(data.tensors[1], padded)
    with pytest.raises(ValueError, match="more than max_items"):
        pad_targets([target], 0)
    with pytest.raises(ValueError, match="'semantic'"):
        canvas_splits(train_size=4, val_size=4, test_size=4, targets="masks")


def perfect_outputs(padded: torch.Tensor, stride: int = 4, size: int = 64) -> torch.Tensor:
    """The dense output a perfect CenterNet would give: logits of the target heatmap, regressions at the centres."""
    h = size // stride
    dense = encode_targets(padded, num_classes=10, stride=stride, output_size=(h, h))
    out = torch.zeros(len(padded), 14, h * h)
    out[:, :10] = torch.logit(dense.heatmap.clamp(1e-6, 1 - 1e-6)).flatten(2)
    values = torch.cat([dense.size, dense.offset], -1)
    out = out.view(len(padded), 14, h, h)
    for n, k in dense.valid.nonzero().tolist():
        y, x = divmod(int(dense.index[n, k]), h)
        # the neighbours of a centre predict the same box, shifted by a cell (as a trained network's do), ...
        out[n, 10:, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = values[n, k][:, None, None]
    for n, k in dense.valid.nonzero().tolist():
        y, x = divmod(int(dense.index[n, k]), h)
        out[n, 10:, y, x] = values[n, k]  # ... and the centre the exact box
    return out


def test_targets_put_one_peak_at_each_centre_and_decoding_reads_the_boxes_back(canvases):
    padded = canvases.boxes()
    dense = encode_targets(padded, num_classes=10, stride=4, output_size=(16, 16))
    assert dense.heatmap.shape == (64, 10, 16, 16) and dense.heatmap.max() == 1
    # as many exact peaks as objects (two objects of a class never share a cell here)
    assert int((dense.heatmap == 1).sum()) == int(dense.valid.sum())
    assert ((dense.offset >= 0) & (dense.offset < 1))[dense.valid].all()
    found = decode(perfect_outputs(padded), num_classes=10, stride=4, image_size=(64, 64), score_threshold=0.5)
    for got, want in zip(found, unpad_targets(padded)):
        order = torch.argsort(got["boxes"][:, 0] * 1000 + got["boxes"][:, 1])
        expected = torch.argsort(want["boxes"][:, 0] * 1000 + want["boxes"][:, 1])
        torch.testing.assert_close(got["boxes"][order], want["boxes"][expected], atol=1e-4, rtol=0)
        assert torch.equal(got["labels"][order], want["labels"][expected])
    assert mean_average_precision(found, unpad_targets(padded)).map == 1.0


def test_peaks_and_nms_remove_duplicates(canvases):
    padded = canvases.boxes()[:8]
    outputs = perfect_outputs(padded)
    kwargs = dict(num_classes=10, stride=4, image_size=(64, 64), score_threshold=0.1)
    raw = decode(outputs, peaks=False, iou_threshold=None, **kwargs)
    peaks_only = decode(outputs, iou_threshold=None, **kwargs)
    both = decode(outputs, **kwargs)
    nms_only = decode(outputs, peaks=False, **kwargs)
    objects = [len(t["labels"]) for t in unpad_targets(padded)]
    assert [len(d["boxes"]) for d in peaks_only] == objects == [len(d["boxes"]) for d in both]

    def total(detections) -> int:
        return sum(len(d["boxes"]) for d in detections)

    # the hills' neighbours fire too; NMS removes most of them (not the shifted boxes of the smallest items)
    assert total(raw) > total(nms_only) >= sum(objects)
    for d in both:
        assert (d["scores"][:-1] >= d["scores"][1:]).all()


def test_the_loss_is_small_for_perfect_outputs_and_trains(canvases):
    padded = canvases.boxes()[:16]
    loss_fn = CenterNetLoss(10, stride=4)
    parts = loss_fn.components(perfect_outputs(padded), padded)
    assert parts["size"] < 1e-5 and parts["offset"] < 1e-5 and parts["heatmap"] < 0.05
    torch.manual_seed(0)
    model = centernet()
    parts = loss_fn.components(model.train()(canvases.detection_dataset().tensors[0][:16]), padded)
    assert parts["heatmap"] > 1 and parts["size"] > 1
    loss_fn(model(torch.rand(2, 1, 64, 64)), padded[:2]).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="14"):
        loss_fn(torch.zeros(1, 12, 16, 16), padded[:1])
    # an image without objects costs only its background
    empty = torch.zeros(1, 4, 5)
    assert torch.isfinite(loss_fn(torch.zeros(1, 14, 16, 16), empty))


def test_centernet_modes_inputs_and_options():
    torch.manual_seed(0)
    model = create_model("centernet")
    assert isinstance(model, CenterNet) and model.stride == 4 and model.num_classes == 10
    x = torch.rand(3, 1, 64, 64)
    assert model.train()(x).shape == (3, 14, 16, 16)
    model.eval()
    with torch.no_grad():
        batch = model(x)
        listed = model(list(x))
    assert len(batch) == 3 and set(batch[0]) == {"boxes", "scores", "labels"}
    for a, b in zip(batch, listed):
        torch.testing.assert_close(a["boxes"], b["boxes"])
    d = batch[0]
    assert d["boxes"].shape[1] == 4 and d["labels"].dtype == torch.int64
    assert ((d["labels"] >= 1) & (d["labels"] <= 10)).all() and (d["scores"] >= model.score_threshold).all()
    assert (d["boxes"][:, :2] <= d["boxes"][:, 2:]).all() and d["boxes"].min() >= 0 and d["boxes"].max() <= 63
    assert len(d["boxes"]) <= 100
    with torch.no_grad():
        assert all(len(r["boxes"]) <= 3 for r in model.detect(x, max_detections=3))
    other = centernet(num_classes=3, in_channels=3, widths=(8, 16, 32), stride=2).train()
    assert other(torch.rand(1, 3, 32, 48)).shape == (1, 7, 16, 24)
    with pytest.raises(ValueError, match="power of 2"):
        centernet(stride=3)
    with pytest.raises(ValueError, match="one shape"):
        model([torch.rand(1, 64, 64), torch.rand(1, 32, 32)])
    with pytest.raises(ValueError, match="batch"):
        model(torch.rand(1, 64, 64))


def test_summary_counts_the_detector():
    model = centernet()
    table = summary(model, (1, 1, 64, 64))
    assert table.total_params == sum(p.numel() for p in model.parameters())
    assert 10**7 < table.total_macs < 10**8 and table.row("heatmap.2").output_shape == (1, 10, 16, 16)
    assert model.training  # summary restores the mode
    with torch.device("meta"):
        meta = centernet()
    assert summary(meta, (1, 1, 64, 64)).total_macs == table.total_macs


def test_fit_trains_the_detector_unchanged_and_the_callback_adds_validation_scores():
    data = canvas_splits(train_size=256, val_size=64, test_size=16, targets="boxes")
    torch.manual_seed(0)
    model = centernet()
    loss_fn = model.loss_fn()
    history = fit(
        model,
        tensor_loader(data.train, 32, shuffle=True),
        epochs=2,
        loss_fn=loss_fn,
        metrics=(),
        optimizer=torch.optim.AdamW(model.parameters(), lr=3e-3),
        device="cpu",
        progress=False,
        callbacks=[DetectionValidation(data.val, loss_fn)],
    )
    assert set(history.keys()) == {"loss", "lr", "time", "val_loss", "val_map_50", "val_map"}
    assert history["loss"][1] < history["loss"][0]
    assert 0 <= history["val_map"][-1] <= history["val_map_50"][-1] <= 1
    scores, loss = evaluate_detector(model, data.val, loss_fn=loss_fn)
    assert scores.map_50 == pytest.approx(history["val_map_50"][-1]) and loss == pytest.approx(history["val_loss"][-1])
    found = detect(model, data.val.tensors[0][:5], batch_size=2)
    assert len(found) == 5 and model.training  # detect restores the mode
    raw = detect(model, data.val.tensors[0][:5], peaks=False, iou_threshold=None, score_threshold=0.0)
    assert all(len(r["boxes"]) >= len(f["boxes"]) for r, f in zip(raw, found))
