"""cnncourse.data.canvas: the contract of the Fashion-MNIST canvases.

Every target is checked against what it must be: boxes are the boxes of the
visible masks (torchvision's ``masks_to_boxes``), the masks are disjoint and
non-empty, the semantic map is the union of the labelled masks, and the image
is non-zero exactly where an item is. The canvases are seeded, the items of
each split come only from that split, and the joint augmentation keeps the
contract.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

from cnncourse.data import (
    CANVAS_CLASSES,
    FASHION_MNIST_CLASSES,
    DataSplits,
    FashionCanvas,
    canvas_augmentation,
    canvas_splits,
    detection_collate,
    fashion_canvas,
    fashion_mnist,
    prepare_fashion_mnist,
)
from cnncourse.data import canvas as canvas_module
from cnncourse.data.fashion import _load_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root():
    try:
        return prepare_fashion_mnist(download=False)
    except FileNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not here: {error}")


@pytest.fixture(scope="module")
def test_canvases(root) -> FashionCanvas:
    return fashion_canvas("test", n=300, seed=1)


@pytest.fixture(scope="module")
def train_canvases(root) -> FashionCanvas:
    return fashion_canvas("train", n=300, seed=1)


def check_contract(image: torch.Tensor, target: dict[str, torch.Tensor], size: int) -> None:
    """What every canvas (augmented or not) must satisfy."""
    boxes, labels, masks, semantic = (target[k] for k in ("boxes", "labels", "masks", "semantic"))
    k = len(labels)
    assert image.shape == (1, size, size) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    assert boxes.shape == (k, 4) and boxes.dtype == torch.float32
    assert labels.dtype == torch.int64 and ((1 <= labels) & (labels <= 10)).all()
    assert masks.shape == (k, size, size) and masks.dtype == torch.bool
    assert semantic.shape == (size, size) and semantic.dtype == torch.int64
    assert k >= 1, "every canvas shows at least one item"
    assert masks.flatten(1).any(1).all(), "an empty mask"
    assert (masks.sum(0) <= 1).all(), "masks overlap"
    torch.testing.assert_close(boxes, masks_to_boxes(masks), rtol=0, atol=0)
    union = (masks * labels[:, None, None]).sum(0)
    torch.testing.assert_close(semantic, union, rtol=0, atol=0)


# --- the contract --------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_every_canvas_holds_the_contract(root, split):
    canvases = fashion_canvas(split, n=200, size=48, max_items=3, scale=(0.6, 1.5), seed=4)
    assert len(canvases) == 200 and canvases.split == split and canvases.classes == CANVAS_CLASSES
    for i in range(len(canvases)):
        image, target = canvases[i]
        check_contract(image, target, 48)
        # the picture is non-zero exactly where an item is visible
        torch.testing.assert_close(image[0] > 0, target["semantic"] > 0, rtol=0, atol=0)


def test_every_count_of_items_occurs(test_canvases):
    counts = (test_canvases.labels > 0).sum(1)
    assert set(counts.tolist()) == {1, 2, 3, 4}  # 300 canvases show every count up to max_items
    assert [len(test_canvases[i][1]["labels"]) for i in range(5)] == counts[:5].tolist()


def test_labels_are_the_source_items_classes_plus_one(root, test_canvases, train_canvases):
    for canvases, train in ((test_canvases, False), (train_canvases, True)):
        _, labels = _load_bytes(root, train=train)
        used = canvases.sources >= 0
        assert torch.equal(canvases.labels[used], labels[canvases.sources[used]] + 1)
        assert (canvases.labels[~used] == 0).all()


def test_test_canvases_use_test_items_and_train_canvases_never_validation_items(root):
    data = fashion_mnist(root)  # its validation split: what the train canvases must leave out
    train_images, _ = _load_bytes(root, train=True)
    test_images, _ = _load_bytes(root, train=False)
    val_keys = {bytes(row) for row in (data.val.tensors[0] * 255).round().to(torch.uint8).flatten(1).numpy()}

    def keys(images, canvases):
        return {bytes(images[s].flatten().numpy()) for s in canvases.sources[canvases.sources >= 0].tolist()}

    train = fashion_canvas("train", n=2_000, seed=2)
    assert not keys(train_images, train) & val_keys
    val = fashion_canvas("val", n=500, seed=2)
    assert keys(train_images, val) <= val_keys
    test = fashion_canvas("test", n=500, seed=2)
    assert test.sources.max() < len(test_images)
    # Fashion-MNIST's test images are not training images: their keys are among the test set's
    test_keys = {bytes(row.numpy()) for row in test_images.flatten(1)}
    assert keys(test_images, test) <= test_keys


def test_the_same_seed_gives_the_same_canvases_whatever_n(root, test_canvases):
    again = fashion_canvas("test", n=50, seed=1)
    for name in ("images", "instances", "labels", "sources"):
        assert torch.equal(getattr(again, name), getattr(test_canvases, name)[:50]), name
    other = fashion_canvas("test", n=50, seed=2)
    assert not torch.equal(other.images, again.images)
    # another split with the same seed draws other scenes, not the same layout with other items
    val = fashion_canvas("val", n=50, seed=1)
    assert not torch.equal(val.instances > 0, again.instances > 0)


def test_one_item_per_canvas_is_fully_visible(root):
    canvases = fashion_canvas("test", n=50, max_items=1, seed=0)
    assert ((canvases.labels > 0).sum(1) == 1).all()
    for i in range(50):
        image, target = canvases[i]
        assert torch.equal(target["masks"][0], image[0] > 0)


def test_semantic_dataset_matches_the_items(test_canvases):
    dataset = test_canvases.semantic_dataset()
    images, semantic = dataset.tensors
    assert images.shape == (300, 1, 64, 64) and images.dtype == torch.float32
    assert semantic.shape == (300, 64, 64) and semantic.dtype == torch.int64
    for i in (0, 7, 299):
        image, target = test_canvases[i]
        assert torch.equal(images[i], image) and torch.equal(semantic[i], target["semantic"])
    assert torch.equal(test_canvases.semantic(), semantic)


def test_canvas_splits_are_data_splits(root):
    data = canvas_splits(train_size=40, val_size=20, test_size=10, size=48, max_items=2)
    assert isinstance(data, DataSplits) and data.classes == CANVAS_CLASSES
    assert [len(s) for s in (data.train, data.val, data.test)] == [40, 20, 10]
    assert data.classes[1:] == FASHION_MNIST_CLASSES
    x, y = next(iter(data.loaders(16)[0]))
    assert x.shape == (16, 1, 48, 48) and y.shape == (16, 48, 48)
    assert data.mean == pytest.approx(data.train.tensors[0].mean().item())
    assert torch.equal(data.test.tensors[1], fashion_canvas("test", n=10, size=48, max_items=2).semantic())


def test_repr_is_short(test_canvases):
    assert repr(test_canvases) == "FashionCanvas('test', n=300, size=64, max_items=4)"
    with pytest.raises(IndexError, match="out of range"):
        test_canvases[300]


# --- the drawing, piece by piece -------------------------------------------------------


def test_paste_is_bilinear_resampling_as_grid_sample_computes_it():
    generator = torch.Generator().manual_seed(0)
    items = torch.randint(0, 256, (3, 2, 28, 28), dtype=torch.uint8, generator=generator)
    side = torch.tensor([[20.5, 35.0], [28.0, 31.3], [22.2, 28.0]], dtype=torch.float64)
    corner = torch.rand(3, 2, 2, dtype=torch.float64, generator=generator) * (64 - side).unsqueeze(-1)
    ours = canvas_module._paste(items, side, corner, 64).float()
    ratio = 64 / side  # the same map as an affine grid in [-1, 1]
    theta = torch.zeros(6, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = ratio.flatten()
    theta[:, :, 2] = (ratio.unsqueeze(-1) - 2 * corner / side.unsqueeze(-1) - 1).reshape(-1, 2)
    grid = F.affine_grid(theta.float(), [6, 1, 64, 64], align_corners=False)
    reference = F.grid_sample(items.reshape(6, 1, 28, 28).float(), grid, align_corners=False)
    reference = reference.view(3, 2, 64, 64).round().clamp(0, 255)
    assert (ours - reference).abs().max() <= 1  # the same up to rounding a value near .5
    assert (ours != reference).float().mean() < 1e-3


def test_paste_at_full_size_and_a_whole_pixel_copies_the_item():
    item = torch.randint(1, 256, (1, 1, 28, 28), dtype=torch.uint8)
    out = canvas_module._paste(
        item, torch.tensor([[28.0]], dtype=torch.float64), torch.tensor([[[5.0, 9.0]]], dtype=torch.float64), 40
    )[0, 0]
    assert torch.equal(out[9:37, 5:33], item[0, 0])
    assert out.sum() == item.sum()


def square(size: int, top: int, left: int, side: int, value: int) -> torch.Tensor:
    picture = torch.zeros(size, size, dtype=torch.uint8)
    picture[top : top + side, left : left + side] = value
    return picture


def test_composite_leaves_out_items_hidden_too_much():
    # back item: a 10 x 10 square; front item over 6 (kept) or 4 (left out) of its 10 columns
    for overlap, kept in ((4, True), (6, False)):
        back, front = square(20, 0, 0, 10, 100), square(20, 0, 10 - overlap, 10, 200)
        painted = torch.stack([back, front])[None]
        canvas, instances, keep = canvas_module._composite(painted, torch.tensor([[True, True]]), 0.5)
        assert keep.tolist() == [[kept, True]]
        assert (instances[0] == 2).sum() == 100  # the front item is whole
        assert (instances[0] == 1).sum() == (100 - 10 * overlap if kept else 0)
        assert (canvas[0][instances[0] == 2] == 200).all()
        # an item left out is not drawn at all: no pixel of value 100 remains
        assert ((canvas[0] == 100).sum() > 0) == kept


def test_composite_ignores_empty_slots():
    painted = torch.stack([square(8, 0, 0, 4, 50), square(8, 2, 2, 4, 60)])[None]
    canvas, instances, keep = canvas_module._composite(painted, torch.tensor([[True, False]]), 0.5)
    assert keep.tolist() == [[True, False]] and (canvas[0] == 60).sum() == 0
    assert torch.equal(instances[0] == 1, painted[0, 0] > 0)


# --- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "validation"}, "split='train', 'val' or 'test'"),
        ({"max_items": 0}, "max_items must be an int >= 1"),
        ({"n": 0}, "n must be an int >= 1"),
        ({"size": 32}, "pass size >= 35"),
        ({"size": 40, "scale": (1.0, 2.0)}, "largest scale <= 1.43"),
        ({"scale": (1.2, 0.8)}, "0 < smallest <= largest"),
        ({"scale": 1.0}, "a pair"),
        ({"min_visible": 0}, "fraction in \\(0, 1\\]"),
    ],
)
def test_bad_arguments_say_what_to_pass(kwargs, match):
    split = kwargs.pop("split", "train")
    with pytest.raises(ValueError, match=match):
        fashion_canvas(split, **kwargs)


# --- augmentation and batches -----------------------------------------------------------


def test_augmented_canvases_keep_the_contract(root):
    torch.manual_seed(0)
    canvases = fashion_canvas("test", n=60, seed=3, transform=canvas_augmentation(64, scale=(0.3, 1.0)))
    for i in range(len(canvases)):
        image, target = canvases[i]
        if len(target["labels"]):  # a small crop may miss every item
            check_contract(image, target, 64)
        assert type(image) is torch.Tensor and all(type(t) is torch.Tensor for t in target.values())


def test_a_flip_moves_image_masks_and_boxes_together(test_canvases):
    flipped = FashionCanvas(
        test_canvases.images,
        test_canvases.instances,
        test_canvases.labels,
        test_canvases.sources,
        split="test",
        transform=v2.RandomHorizontalFlip(p=1.0),
    )
    for i in (0, 1, 2):
        (image, target), (mirror, moved) = test_canvases[i], flipped[i]
        assert torch.equal(mirror, image.flip(-1))
        assert torch.equal(moved["masks"], target["masks"].flip(-1))
        assert torch.equal(moved["semantic"], target["semantic"].flip(-1))
        assert torch.equal(moved["labels"], target["labels"])
        x1, y1, x2, y2 = target["boxes"].unbind(1)
        torch.testing.assert_close(moved["boxes"], torch.stack([63 - x2, y1, 63 - x1, y2], dim=1))


def test_canvas_augmentation_checks_its_arguments():
    with pytest.raises(ValueError, match="probability"):
        canvas_augmentation(64, flip=2)
    with pytest.raises(ValueError, match="area fractions"):
        canvas_augmentation(64, scale=(0.5, 1.5))


def test_detection_collate_stacks_images_and_lists_targets(test_canvases):
    images, targets = next(iter(DataLoader(test_canvases, batch_size=5, collate_fn=detection_collate)))
    assert images.shape == (5, 1, 64, 64)
    assert isinstance(targets, list) and len(targets) == 5
    assert torch.equal(targets[3]["boxes"], test_canvases[3][1]["boxes"])
    with pytest.raises(ValueError, match="mixes image shapes"):
        detection_collate([test_canvases[0], (torch.zeros(1, 32, 32), test_canvases[1][1])])
    with pytest.raises(ValueError, match="empty batch"):
        detection_collate([])
