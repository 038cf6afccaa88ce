"""Tests of cnncourse.training.lr_finder: the learning-rate range test.

The run is checked against a loop written out by hand (same batches, same
geometric learning rates, same losses), the early stop on a problem that must
diverge, the promise to leave model, optimizer and random generators as they
were, and the two suggestion rules on curves whose answer is known.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from torch import nn

from cnncourse.training import LRRangeTest, fit, lr_range_test
from cnncourse.training.lr_finder import ema


pytestmark = pytest.mark.usefixtures("one_thread")


def batches(X, y, size):
    return list(zip(X.split(size), y.split(size)))


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


def with_everything(seed: int = 0) -> nn.Module:
    """Batch norm (running statistics), dropout (random numbers) and a linear layer."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.BatchNorm1d(16), nn.Dropout(0.3), nn.Linear(16, 3))


# the run itself


def test_learning_rates_grow_geometrically_from_start_to_end(blobs):
    X, y = blobs
    result = lr_range_test(linear(), batches(X, y, 30), start_lr=1e-6, end_lr=1e-3, steps=7)
    assert not result.diverged and len(result.lrs) == len(result.losses) == len(result.smoothed) == 7
    np.testing.assert_allclose(result.lrs, 1e-6 * 10.0 ** (np.arange(7) / 2), rtol=1e-12)


def test_matches_a_loop_written_by_hand(blobs):
    X, y = blobs
    loader = batches(X, y, 20)  # 5 batches, cycled: the 12 steps go round twice and a bit
    model = linear()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.123, momentum=0.9)
    result = lr_range_test(model, loader, optimizer=optimizer, start_lr=1e-3, end_lr=1.0, steps=12)

    by_hand = torch.optim.SGD(reference.parameters(), lr=0.0, momentum=0.9)
    expected = []
    for i in range(12):
        x_b, y_b = loader[i % len(loader)]
        for group in by_hand.param_groups:
            group["lr"] = 1e-3 * 1000.0 ** (i / 11)
        loss = F.cross_entropy(reference(x_b), y_b)
        expected.append(loss.item())
        by_hand.zero_grad()
        loss.backward()
        by_hand.step()
    assert result.losses == pytest.approx(expected, rel=1e-5)
    assert result.smoothed == pytest.approx(ema(expected, 0.05), rel=1e-5)


def test_every_parameter_group_gets_the_learning_rate(blobs):
    X, y = blobs
    model = linear()
    seen = []
    optimizer = torch.optim.SGD([{"params": [model[1].weight], "lr": 5.0}, {"params": [model[1].bias]}], lr=7.0)

    def loss_fn(logits, targets):
        seen.append([group["lr"] for group in optimizer.param_groups])
        return F.cross_entropy(logits, targets)

    result = lr_range_test(model, batches(X, y, 30), optimizer=optimizer, start_lr=1e-4, end_lr=1e-2, steps=5,
                           loss_fn=loss_fn)
    assert [lrs[0] for lrs in seen] == pytest.approx(result.lrs) and all(a == b for a, b in seen)
    assert [group["lr"] for group in optimizer.param_groups] == [5.0, 7.0]  # restored afterwards


def test_default_optimizer_is_adam(blobs):
    # Adam's first step moves every weight by exactly lr; SGD would move it by lr * grad.
    X, y = blobs
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = linear()

        def forward(self, x):
            seen.append(self.inner[1].weight.detach().clone())
            return self.inner(x)

    lr_range_test(Probe(), [(X, y)], start_lr=0.01, end_lr=0.02, steps=2)
    torch.testing.assert_close((seen[1] - seen[0]).abs(), torch.full_like(seen[0], 0.01), rtol=1e-3, atol=0)


def test_stops_early_once_the_loss_diverges():
    # Least squares on one weight: the loss mean((w x - 3 x)^2) has curvature 2 mean(x^2), so SGD
    # diverges once lr > 2 / curvature = 1 / mean(x^2); past it the error grows geometrically.
    torch.manual_seed(0)
    x = torch.randn(64, 1)
    edge = 1 / x.pow(2).mean().item()
    model = nn.Linear(1, 1, bias=False)
    loader = [(x, 3 * x + 0.5 * torch.randn(64, 1))]  # noisy targets: the least loss is not 0
    result = lr_range_test(model, loader, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                           start_lr=0.01, end_lr=100.0, steps=60, loss_fn=nn.MSELoss(), smoothing=0.3)
    assert result.diverged and len(result.lrs) < 60
    assert result.lrs[-1] > edge  # it stopped only past the edge of stability ...
    assert result.smoothed[-1] > 4 * min(result.smoothed)  # ... because the smoothed loss blew up
    assert 0.01 * edge < result.suggestion < edge


def test_a_non_finite_loss_stops_the_run(blobs):
    X, y = blobs
    calls = []

    def loss_fn(logits, targets):
        calls.append(1)
        loss = F.cross_entropy(logits, targets)
        return loss * math.inf if len(calls) == 6 else loss

    result = lr_range_test(linear(), batches(X, y, 30), start_lr=1e-5, end_lr=1e-4, steps=20, loss_fn=loss_fn)
    assert result.diverged and len(result.lrs) == 5 and all(map(math.isfinite, result.losses))


# leaving everything as it was


def test_restores_model_optimizer_mode_and_random_numbers(blobs):
    X, y = blobs
    loader = batches(X, y, 30)
    model = with_everything()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit(model, loader, epochs=1, optimizer=optimizer, progress=False)  # momentum buffers and BN statistics exist
    model.eval()
    model_before = copy.deepcopy(model.state_dict())
    optimizer_before = copy.deepcopy(optimizer.state_dict())
    rng_before = torch.get_rng_state()

    result = lr_range_test(model, loader, optimizer=optimizer, start_lr=1e-3, end_lr=10.0, steps=30)
    assert len(result.lrs) > 3  # it did train, with dropout drawing random numbers

    assert not model.training  # the mode is back
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, model_before[name], rtol=0, atol=0, msg=name)
    after = optimizer.state_dict()
    assert after["param_groups"] == optimizer_before["param_groups"]
    for key, state in optimizer_before["state"].items():
        torch.testing.assert_close(after["state"][key]["momentum_buffer"], state["momentum_buffer"], rtol=0, atol=0)
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_restores_a_fresh_adam_to_no_state_and_training_continues_as_if_nothing_happened(blobs):
    X, y = blobs
    loader = batches(X, y, 30)

    def train(probe_first: bool) -> nn.Module:
        model = with_everything()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        torch.manual_seed(1)
        if probe_first:
            lr_range_test(model, loader, optimizer=optimizer, steps=20)
            assert optimizer.state_dict()["state"] == {}
        fit(model, loader, epochs=3, optimizer=optimizer, progress=False)
        return model

    for plain, probed in zip(train(False).state_dict().values(), train(True).state_dict().values()):
        torch.testing.assert_close(probed, plain, rtol=0, atol=0)


def test_restores_the_state_even_when_the_run_fails(blobs):
    X, y = blobs
    model = linear()
    before = copy.deepcopy(model.state_dict())
    calls = []

    def loss_fn(logits, targets):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return F.cross_entropy(logits, targets)

    with pytest.raises(RuntimeError, match="boom"):
        lr_range_test(model, batches(X, y, 30), start_lr=0.1, end_lr=1.0, steps=10, loss_fn=loss_fn)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


# the suggestion rules, on curves whose answer is known


def curve(smoothed, rule="min/10"):
    lrs = list(10.0 ** np.arange(-6, -6 + len(smoothed)))  # 1e-6, 1e-5, ...
    return LRRangeTest(lrs=lrs, losses=list(smoothed), smoothed=list(smoothed), rule=rule)


def test_min_over_10_is_a_tenth_of_the_lr_at_the_lowest_smoothed_loss():
    result = curve([2.3, 2.3, 2.0, 1.2, 0.9, 0.8, 1.5, 9.0])  # lowest at index 5: lr 1e-1
    assert result.lr_at_min == pytest.approx(1e-1)
    assert result.suggestion == pytest.approx(1e-2)


def test_steepest_is_the_most_negative_slope_before_the_minimum():
    # np.gradient on a log axis up to the minimum (index 3): slopes -0.1, -0.4, -0.6, -0.5 (/ ln 10)
    result = curve([2.3, 2.2, 1.5, 1.0, 6.0, 3.0, 1.5, 9.0], rule="steepest")
    assert result.steepest == pytest.approx(1e-4)  # index 2
    assert result.suggestion == result.steepest
    # the fall from 6.0 to 1.5 after the minimum is steeper (-2.25), but comes after it: never chosen
    assert np.argmin(np.gradient(result.smoothed)) == 5


def test_steepest_with_a_minimum_at_the_start_falls_back_to_the_first_lr():
    assert curve([1.0, 2.0, 4.0, 8.0], rule="steepest").steepest == pytest.approx(1e-6)


def test_ema_with_bias_correction():
    assert ema([4.0, 4.0, 4.0], 0.2) == pytest.approx([4.0, 4.0, 4.0])  # no pull towards zero
    # by hand: avg = 0.5, 0.5 * 0.5 + 0.5 * 3 = 1.75; corrected by 1 - 0.5 and 1 - 0.25
    assert ema([1.0, 3.0], 0.5) == pytest.approx([1.0, 1.75 / 0.75])
    assert ema([1.0, 5.0], 1.0) == [1.0, 5.0]  # smoothing 1: no memory


# a real, if tiny, problem


@pytest.fixture
def overlapping_blobs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """300 noisy 1 x 4 x 4 images of 3 classes whose blobs overlap: no lr drives the loss to 0."""
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    X = (3.0 * torch.eye(3, 16))[y] + 1.5 * torch.randn(300, 16, generator=generator)
    return batches(X.view(-1, 1, 4, 4), y, 20)


def test_the_suggestion_trains_and_a_hundred_times_more_does_not(overlapping_blobs):
    model = linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    result = lr_range_test(model, overlapping_blobs, optimizer=optimizer, start_lr=1e-5, end_lr=100.0, steps=60)
    assert result.diverged and result.lrs[0] < result.suggestion < result.lrs[-1]

    def final_loss(lr: float) -> float:
        model = linear()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        history = fit(model, overlapping_blobs, epochs=5, optimizer=optimizer, progress=False)
        return history["loss"][-1]

    assert final_loss(result.suggestion) < 0.5  # ln 3 = 1.1 at chance
    assert final_loss(100 * result.suggestion) > 5.0


def test_plot_uses_a_log_axis_and_marks_the_suggestion(blobs):
    X, y = blobs
    result = lr_range_test(linear(), batches(X, y, 10), start_lr=1e-4, end_lr=10.0, steps=40)
    ax = result.plot()
    assert isinstance(ax, Axes) and ax.get_xscale() == "log"
    assert any(np.allclose(line.get_xdata(), result.suggestion) for line in ax.get_lines())
    assert "min/10" in ax.get_legend().get_texts()[-1].get_text()


# bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(start_lr=0.0), "0 < start_lr < end_lr"),
        (dict(start_lr=1.0, end_lr=0.1), "0 < start_lr < end_lr"),
        (dict(steps=1), "steps must be an int >= 2"),
        (dict(steps=10.0), "steps must be an int >= 2"),
        (dict(smoothing=0.0), "smoothing"),
        (dict(smoothing=1.5), "smoothing"),
        (dict(diverge_factor=1.0), "diverge_factor must be > 1"),
        (dict(rule="valley"), "rule must be one of"),
    ],
)
def test_rejects_bad_settings(kwargs, match, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        lr_range_test(linear(), [(X, y)], **kwargs)


def test_rejects_an_empty_loader_and_a_model_without_parameters(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="no batches"):
        lr_range_test(linear(), [])
    with pytest.raises(ValueError, match="no parameters"):
        lr_range_test(nn.Flatten(), [(X, y)])
