"""cnncourse.viz.detection (boxes on canvases, the NMS explorer) and cnncourse.detection.instances."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.patches import Rectangle

from cnncourse.data import fashion_canvas
from cnncourse.detection import instance_masks, mean_average_precision, panoptic_map, panoptic_quality, panoptic_target
from cnncourse.viz.detection import DETECTION_EXPLORER_CLASS, detection_explorer, draw_detections
from cnncourse.viz.explorers import MAX_STATES, STATES_CLASS
from cnncourse.viz.segmentation import class_colours

try:  # tests/ may or may not be a package
    from .widget_helpers import decode, recording_jslinks, walk
except ImportError:
    from widget_helpers import decode, recording_jslinks, walk

torchvision = pytest.importorskip("torchvision")

CLASSES = ["background", "shirt", "bag"]
IMAGES = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
# canvas 0: a cluster of three "shirt" boxes (two overlapping the best a lot) and a "bag" over the same spot
CANDIDATES = [
    {
        "boxes": torch.tensor([[2.0, 2, 9, 9], [3, 2, 10, 9], [2, 3, 9, 10], [2, 2, 9, 9]]),
        "scores": torch.tensor([0.9, 0.6, 0.25, 0.4]),
        "labels": torch.tensor([1, 1, 1, 2]),
    },
    {
        "boxes": torch.tensor([[0.0, 0, 4, 4], [10, 10, 15, 15]]),
        "scores": torch.tensor([0.15, 0.8]),
        "labels": torch.tensor([2, 1]),
    },
]
TRUTH = [
    {"boxes": torch.tensor([[2.0, 2, 9, 9]]), "labels": torch.tensor([1])},
    {"boxes": torch.tensor([[10.0, 10, 15, 15]]), "labels": torch.tensor([1])},
]
THRESHOLDS = (0.1, 0.3, 0.5)


def test_draw_detections_draws_a_box_per_detection_and_truth():
    fig, ax = plt.subplots()
    draw_detections(ax, IMAGES[0], CANDIDATES[0], truth=TRUTH[0], classes=CLASSES, score_threshold=0.3)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 1 + 3  # the truth and the three boxes scoring >= 0.3
    assert [p.get_linestyle() for p in boxes].count("--") == 1
    solid = [p for p in boxes if p.get_linestyle() == "-"]
    assert solid[-1].get_xy() == (1.5, 1.5) and solid[-1].get_width() == 8  # pixels 2..9, edge to edge
    np.testing.assert_allclose(solid[0].get_edgecolor()[:3], class_colours(3)[2])  # the bag, drawn first
    assert ["bag 0.40", "shirt 0.60", "shirt 0.90"] == [t.get_text() for t in ax.texts]  # the best on top
    assert all(t.get_fontsize() >= 9 for t in ax.texts)


@pytest.fixture(scope="module")
def explorer_and_links():
    with recording_jslinks() as links:
        explorer = detection_explorer(
            IMAGES, CANDIDATES, classes=CLASSES, thresholds=THRESHOLDS, truth=TRUTH, width=4.0, dpi=50
        )
    return explorer, links


def states(explorer) -> widgets.Stack:
    return next(w for w in walk(explorer) if isinstance(w, widgets.Stack) and STATES_CLASS in w._dom_classes)


def test_explorer_controls_are_linked_to_every_stack(explorer_and_links):
    explorer, links = explorer_and_links
    assert DETECTION_EXPLORER_CLASS in explorer._dom_classes
    dropdown = next(w for w in walk(explorer) if isinstance(w, widgets.Dropdown))
    slider = next(w for w in walk(explorer) if isinstance(w, widgets.SelectionSlider))
    assert [label for label, _ in dropdown.options] == ["canvas 0", "canvas 1"]
    assert [label for label, _ in slider.options] == ["0.1", "0.3", "0.5"] and slider.index == 1  # opens at 0.3
    top = states(explorer)
    assert links[0] == ((dropdown, "index"), (top, "selected_index"))
    assert {link[1][0] for link in links[1:]} == set(top.children) and all(link[0][0] is slider for link in links[1:])


def test_every_state_counts_the_boxes_before_and_after_nms(explorer_and_links):
    explorer, _ = explorer_and_links
    top = states(explorer)
    expected = {  # (canvas, threshold): (before, after) -- NMS at 0.5 removes the shifted shirts, never the bag
        (0, 0): (4, 2),
        (0, 1): (3, 2),
        (0, 2): (2, 1),
        (1, 0): (2, 2),
        (1, 1): (1, 1),
        (1, 2): (1, 1),
    }
    for (i, k), (before, after) in expected.items():
        caption, picture = top.children[i].children[k].children
        assert caption.value.startswith(
            f"canvas {i}, score &ge; {THRESHOLDS[k]:g}: {before} candidate boxes, {after} after NMS"
        )
        assert decode(picture.value).shape[1] == 4.0 * 50
    assert "shirt 0.90, bag 0.40" in top.children[0].children[1].children[0].value


def test_explorer_rejects_what_it_cannot_show():
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        detection_explorer(IMAGES[:, 0], CANDIDATES, classes=CLASSES)
    with pytest.raises(ValueError, match="one dict of candidates"):
        detection_explorer(IMAGES, CANDIDATES[:1], classes=CLASSES)
    with pytest.raises(ValueError, match="increasing"):
        detection_explorer(IMAGES, CANDIDATES, classes=CLASSES, thresholds=(0.5, 0.3))
    with pytest.raises(ValueError, match=f"at most {MAX_STATES}"):
        detection_explorer(torch.zeros(MAX_STATES, 1, 4, 4), CANDIDATES * (MAX_STATES // 2), classes=CLASSES)
    with pytest.raises(ValueError, match="inches"):
        detection_explorer(IMAGES, CANDIDATES, classes=CLASSES, width=9)


# --- instance masks and panoptic maps ---------------------------------------------------------


@pytest.fixture(scope="module")
def canvases():
    return fashion_canvas("test", n=32)


def perfect_detections(canvases) -> list[dict]:
    return [
        {"boxes": t["boxes"], "labels": t["labels"], "scores": torch.linspace(0.9, 0.8, len(t["labels"]))}
        for _, t in (canvases[i] for i in range(len(canvases)))
    ]


def test_true_boxes_and_the_true_class_map_give_back_the_true_masks(canvases):
    targets = [canvases[i][1] for i in range(len(canvases))]
    found = instance_masks(perfect_detections(canvases), canvases.semantic())
    exact = [torch.equal(f["masks"], t["masks"]) for f, t in zip(found, targets)]
    # exact unless two items of one class overlap (each box then also holds pixels of the other)
    assert sum(exact) >= 0.9 * len(exact)
    assert mean_average_precision(found, targets, iou_type="segm").map_50 > 0.95
    maps = torch.stack([panoptic_map(f, (64, 64)) for f in found])
    truth = torch.stack([panoptic_target(t) for t in targets])
    assert torch.equal(maps[..., 0], truth[..., 0])  # the classes of every pixel
    assert panoptic_quality(maps, truth, things=range(1, 11), stuffs=[0]).pq > 0.95


def test_instance_masks_share_or_split_overlapping_boxes():
    d = {
        "boxes": torch.tensor([[0.0, 0, 2, 2], [1, 1, 3, 3]]),
        "labels": torch.tensor([1, 1]),
        "scores": torch.tensor([0.5, 0.9]),
    }
    classes = torch.ones(1, 4, 4, dtype=torch.long)
    shared = instance_masks([d], classes, exclusive=False)[0]["masks"]
    split = instance_masks([d], classes)[0]["masks"]
    assert shared.sum() == 18 and split.sum() == 14  # two boxes of 9 pixels that share 4
    assert not (split[0] & split[1]).any() and split[1].sum() == 9  # the better-scored box keeps the shared ones
    with pytest.raises(ValueError, match="class maps"):
        instance_masks([d, d], classes)


def test_panoptic_map_paints_the_best_first_and_drops_duplicates():
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[0, :2, :2] = True
    masks[1, :2, :3] = True  # covers the first and more: mostly a duplicate of the better one
    masks[2, 3, 3] = True
    d = {"masks": masks, "labels": torch.tensor([2, 2, 3]), "scores": torch.tensor([0.9, 0.8, 0.3])}
    out = panoptic_map(d, (4, 4), score_threshold=0.5)
    assert out[..., 0].tolist()[0] == [2, 2, 0, 0] and out[..., 1].max() == 1  # one segment; the weak one is out
    out = panoptic_map(d, (4, 4), score_threshold=0.2, min_kept=0.3)
    assert out[0, 2].tolist() == [2, 2] and out[3, 3].tolist() == [3, 3]
