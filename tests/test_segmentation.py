"""Segmentation's metrics and losses, checked by hand and against torchmetrics; fit trains a segmenter as it is."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from cnncourse import evaluate, fit
from cnncourse.data import tensor_loader
from cnncourse.training import (
    DiceLoss,
    SegmentationScores,
    class_weights,
    confusion_matrix,
    dice_loss,
    iou_from_confusion,
    mean_iou,
    pixel_accuracy,
    segmentation_scores,
)

torchmetrics = pytest.importorskip("torchmetrics")
from torchmetrics.segmentation import MeanIoU  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def random_maps(seed: int, n: int = 4, classes: int = 5, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets that agree on most pixels, so that every IoU lies strictly between 0 and 1."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, classes, (n, size, size), generator=generator)
    logits = torch.randn(n, classes, size, size, generator=generator)
    logits += 2.5 * F.one_hot(targets, classes).movedim(-1, 1)
    return logits, targets


# --- confusion matrix and IoU ----------------------------------------------------------


def test_confusion_matrix_counts_every_pixel():
    logits, targets = random_maps(0)
    matrix = confusion_matrix(logits, targets, 5)
    assert matrix.sum() == targets.numel()
    flat = confusion_matrix(logits.movedim(1, -1).reshape(-1, 5), targets.flatten(), 5)  # the same pixels as rows
    assert torch.equal(matrix, flat)
    assert torch.equal(matrix, confusion_matrix(logits.argmax(1), targets, 5))
    with pytest.raises(ValueError, match="4 classes"):
        confusion_matrix(logits[:, :4], targets, 5)


def test_iou_by_hand():
    # truth (rows) x prediction (columns)
    matrix = torch.tensor([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    iou = iou_from_confusion(matrix)
    torch.testing.assert_close(iou[:2], torch.tensor([5 / (5 + 1 + 2), 3 / (3 + 2 + 1)], dtype=torch.float64))
    assert torch.isnan(iou[2])  # absent from truth and predictions: undefined, left out of the mean
    with pytest.raises(ValueError, match="square"):
        iou_from_confusion(torch.zeros(2, 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_iou_equals_torchmetrics_on_the_whole_batch(seed):
    logits, targets = random_maps(seed)
    predictions = logits.argmax(1)
    # torchmetrics computes IoU per image and averages the images; as one image, it is the data set's IoU
    metric = MeanIoU(num_classes=5, per_class=True, input_format="index")
    metric.update(predictions.reshape(1, -1), targets.reshape(1, -1))
    theirs = metric.compute()
    torch.testing.assert_close(mean_iou(logits, targets, per_class=True).float(), theirs)
    torch.testing.assert_close(mean_iou(logits, targets).float(), theirs.mean())


def test_mean_iou_per_image_is_torchmetrics_default_convention():
    logits, targets = random_maps(3)
    metric = MeanIoU(num_classes=5, input_format="index")
    metric.update(logits.argmax(1), targets)
    ours = torch.stack([mean_iou(logits[i : i + 1], targets[i : i + 1]) for i in range(len(targets))]).mean()
    torch.testing.assert_close(ours.float(), metric.compute())


def test_all_background_fools_pixel_accuracy_but_not_mean_iou():
    targets = torch.zeros(2, 10, 10, dtype=torch.long)
    targets[:, 2:4, 2:4] = 1  # 4 % of the pixels
    targets[:, 6:8, 6:9] = 2  # 6 %
    background = torch.zeros(2, 3, 10, 10)
    background[:, 0] = 1.0
    assert pixel_accuracy(background, targets) == pytest.approx(0.9)
    iou = mean_iou(background, targets, per_class=True)
    torch.testing.assert_close(iou, torch.tensor([0.9, 0.0, 0.0], dtype=torch.float64))
    assert mean_iou(background, targets) == pytest.approx(0.3)


def test_pixel_accuracy_needs_logits():
    with pytest.raises(ValueError, match="one dimension more"):
        pixel_accuracy(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="pass num_classes"):
        mean_iou(torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 4, 4, dtype=torch.long))


# --- losses -------------------------------------------------------------------------------


def test_cross_entropy_over_pixels_is_the_mean_of_per_pixel_classifications():
    logits, targets = random_maps(4)
    per_pixel = F.cross_entropy(logits.movedim(1, -1).reshape(-1, 5), targets.flatten())
    torch.testing.assert_close(nn.CrossEntropyLoss()(logits, targets), per_pixel)


def test_dice_of_hard_predictions_is_the_f1_score_of_each_class():
    logits, targets = random_maps(5)
    hard = 1e4 * F.one_hot(logits.argmax(1), 5).movedim(-1, 1).float()  # softmax is one-hot
    matrix = confusion_matrix(logits, targets, 5).double()
    tp = matrix.diagonal()
    f1 = 2 * tp / (matrix.sum(0) + matrix.sum(1))
    torch.testing.assert_close(dice_loss(hard, targets, smooth=0.0).double(), 1 - f1.mean(), rtol=1e-5, atol=1e-6)


def test_dice_loss_is_zero_for_a_perfect_prediction_and_has_gradients():
    targets = torch.randint(0, 3, (2, 6, 6))
    perfect = 50 * F.one_hot(targets, 3).movedim(-1, 1).float()
    assert dice_loss(perfect, targets).item() == pytest.approx(0.0, abs=1e-6)
    logits = torch.zeros(2, 3, 6, 6, requires_grad=True)
    dice_loss(logits, targets).backward()
    assert logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one dimension more"):
        dice_loss(torch.zeros(2, 6, 6), targets)


def test_dice_loss_module_adds_a_weighted_cross_entropy():
    logits, targets = random_maps(6)
    weight = torch.linspace(0.5, 2.0, 5)
    both = DiceLoss(cross_entropy=0.5, weight=weight)(logits, targets)
    torch.testing.assert_close(both, dice_loss(logits, targets) + 0.5 * F.cross_entropy(logits, targets, weight=weight))
    torch.testing.assert_close(DiceLoss()(logits, targets), dice_loss(logits, targets))


def test_class_weights_balance_the_classes():
    targets = torch.tensor([0] * 90 + [1] * 8 + [2] * 2)
    weights = class_weights(targets, 3)
    counts = torch.tensor([90.0, 8.0, 2.0])
    # every class then carries the same total weight, and a pixel weighs 1 on average
    torch.testing.assert_close(weights * counts, torch.full((3,), (weights * counts).mean().item()))
    assert (weights * counts).sum().item() == pytest.approx(100)
    torch.testing.assert_close(class_weights(targets, 3, power=0.0), torch.ones(3))
    with pytest.raises(ValueError, match="never occur"):
        class_weights(targets, 4)


# --- scores over a data set, and fit ------------------------------------------------------


def test_segmentation_scores_sum_the_batches_before_dividing():
    logits, targets = random_maps(7, n=6)

    class Fixed(nn.Module):  # returns the stored logits of the images it is given (their index)
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, index):
            return logits[index[:, 0, 0, 0].long()] * self.scale

    images = torch.arange(6).float().view(6, 1, 1, 1).expand(6, 1, 12, 12)
    loader = tensor_loader(TensorDataset(images, targets), batch_size=4)  # batches of 4 and 2
    scores = segmentation_scores(Fixed(), loader)
    assert isinstance(scores, SegmentationScores)
    assert torch.equal(scores.confusion, confusion_matrix(logits, targets, 5))
    assert scores.mean_iou == pytest.approx(mean_iou(logits, targets).item())
    assert scores.pixel_accuracy == pytest.approx(pixel_accuracy(logits, targets).item())
    assert scores.loss == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)
    assert set(scores.to_dict()) == {"mean_iou", "pixel_accuracy", "loss", "iou"}
    table = str(scores.table(["bg", "a", "b", "c", "d"]))
    assert table.splitlines()[0].split() == ["class", "IoU", "pixels"] and "mean IoU" in table


def test_fit_trains_a_segmenter_unchanged():
    torch.manual_seed(0)
    # the task: paint the bright pixels class 1 and the dark ones class 0
    images = torch.rand(64, 1, 8, 8)
    targets = (images[:, 0] > 0.5).long()
    loader = tensor_loader(TensorDataset(images, targets), batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    history = fit(
        model,
        loader,
        loader,
        epochs=30,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.03),
        metrics={"pixel_accuracy": pixel_accuracy, "mean_iou": mean_iou},
        device="cpu",
        progress=False,
    )
    assert history["val_pixel_accuracy"][-1] > 0.97 and history["val_mean_iou"][-1] > 0.9
    logs = evaluate(model, loader, metrics=("pixel_accuracy",), device="cpu")
    assert logs["pixel_accuracy"] == pytest.approx(history["val_pixel_accuracy"][-1])
