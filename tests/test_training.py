"""Tests of cnncourse.training: fit, evaluate, predict, callbacks, metrics and History.

Everything runs on tiny synthetic problems on the CPU: three far-apart blobs
of 1 x 4 x 4 "images" (``blobs`` in conftest.py), and linear or two-conv models.
Callbacks are also driven by hand with scripted monitored values, so their
rules (patience, min_delta, modes) are checked exactly.
"""

from __future__ import annotations

import copy
import math
import sys
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau, StepLR

import cnncourse
from cnncourse.training import (
    Callback,
    EarlyStopping,
    History,
    LRScheduler,
    ModelCheckpoint,
    TensorBoard,
    accuracy,
    confusion_matrix,
    evaluate,
    fit,
    predict,
    top_k_accuracy,
)
from cnncourse.training.metrics import resolve_metrics

fit = partial(fit, progress=False)  # keep the test log free of progress bars


pytestmark = pytest.mark.usefixtures("one_thread")


def batches(X: torch.Tensor, y: torch.Tensor, size: int | list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A plain list of ``(inputs, targets)`` tuples: the simplest loader fit accepts."""
    return list(zip(X.split(size), y.split(size)))


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


@pytest.fixture
def loaders(blobs):
    """Training (60 examples, batches of 16) and validation (30) batches of the blobs."""
    X, y = blobs
    return batches(X[:60], y[:60], 16), batches(X[60:], y[60:], 16)


@pytest.fixture
def noisy_val(blobs):
    """Clean training batches and a validation set with 6 of 30 labels flipped.

    Trained with Adam at lr 0.02, the validation loss first falls, then rises
    once the model grows confident on the flipped examples (best epoch: 3).
    """
    X, y = blobs
    y_val = y[60:].clone()
    y_val[:6] = (y_val[:6] + 1) % 3
    return batches(X[:60], y[:60], 16), batches(X[60:], y_val, 16)


def adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr)


def test_package_reexports_the_loop():
    assert cnncourse.fit is fit.func and cnncourse.evaluate is evaluate and cnncourse.predict is predict
    assert cnncourse.History is History


# fit


def test_fit_learns_a_separable_problem(loaders):
    train, val = loaders
    model = linear()
    history = fit(model, train, val, epochs=8, optimizer=adam(model, 0.05))
    assert len(history) == 8
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert history["val_loss"][-1] < 0.1 * history["val_loss"][0]
    assert history["accuracy"][-1] == 1.0
    assert history["val_accuracy"][-1] == 1.0


def test_fit_history_has_train_val_lr_and_time(loaders):
    train, val = loaders
    history = fit(linear(), train, val, epochs=2)
    assert set(history.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert len(history) == 2 and all(t > 0 for t in history["time"])
    assert not history.stopped_early and history.best_epoch is None


def test_fit_without_validation_logs_no_val_values(loaders):
    history = fit(linear(), loaders[0], epochs=2)
    assert set(history.keys()) == {"loss", "accuracy", "lr", "time"}


def test_fit_metrics_by_name_dict_or_none(loaders):
    train, val = loaders
    top2 = partial(top_k_accuracy, k=2)
    assert set(fit(linear(), train, val, epochs=1, metrics={"top2": top2}).keys()) == {
        "loss", "top2", "val_loss", "val_top2", "lr", "time"
    }
    assert set(fit(linear(), train, val, epochs=1, metrics=None).keys()) == {"loss", "val_loss", "lr", "time"}
    with pytest.raises(ValueError, match="unknown metric"):
        fit(linear(), train, epochs=1, metrics=("accuracy", "f1"))


def test_fit_accepts_a_dataloader(blobs):
    X, y = blobs
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32, shuffle=True)
    model = linear()
    history = fit(model, loader, loader, epochs=5, optimizer=adam(model, 0.05))
    assert history["val_accuracy"][-1] == 1.0


def test_default_optimizer_is_adam_with_lr_1e_3_and_loss_is_cross_entropy(blobs):
    X, y = blobs
    model = linear()
    before = copy.deepcopy(model)
    history = fit(model, [(X, y)], epochs=1)  # one batch, so one optimizer step

    assert history["lr"] == [1e-3]
    assert history["loss"][0] == pytest.approx(F.cross_entropy(before(X), y).item(), rel=1e-6)
    # Adam's first step moves every weight by lr * grad / |grad|: exactly 1e-3 (SGD would not)
    for old, new in zip(before.parameters(), model.parameters()):
        torch.testing.assert_close((new - old).abs(), torch.full_like(old, 1e-3), rtol=1e-3, atol=0)


def test_fit_uses_the_given_optimizer_and_loss(blobs):
    X, y = blobs
    model = linear()
    before = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2)
    history = fit(model, [(X, y)], epochs=1, optimizer=optimizer, loss_fn=loss_fn)

    assert history["lr"] == [0.5]
    assert history["loss"][0] == pytest.approx(loss_fn(before(X), y).item(), rel=1e-6)
    loss_fn(before(X), y).backward()
    for old, new in zip(before.parameters(), model.parameters()):
        torch.testing.assert_close(new, old - 0.5 * old.grad)


@pytest.mark.parametrize("epochs", [0, -1, 2.5, "3", None])
def test_fit_rejects_bad_epochs(epochs, loaders):
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(linear(), loaders[0], epochs=epochs)


def test_fit_rejects_an_empty_loader(loaders):
    with pytest.raises(ValueError, match="no batches"):
        fit(linear(), [], epochs=1)
    with pytest.raises(ValueError, match="no batches"):
        fit(linear(), loaders[0], [], epochs=1)


class ModeProbe(nn.Module):
    """A linear model that records, at every forward, whether it trains and tracks gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 3)
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.linear(x.flatten(1))


@pytest.mark.parametrize("start_in_eval", [False, True])
def test_fit_trains_in_train_mode_and_validates_in_eval_mode_without_grad(start_in_eval, blobs):
    X, y = blobs
    model = ModeProbe()
    if start_in_eval:
        model.eval()
    fit(model, batches(X[:60], y[:60], 30), batches(X[60:], y[60:], 30), epochs=2)
    train_step, validation = (True, True), (False, False)
    assert model.seen == [train_step, train_step, validation] * 2


# evaluate and predict


@pytest.mark.parametrize("was_training", [True, False])
def test_evaluate_runs_in_eval_mode_and_restores_the_mode(was_training, loaders):
    model = ModeProbe()
    model.train(was_training)
    evaluate(model, loaders[1])
    assert model.seen == [(False, False), (False, False)]
    assert model.training is was_training


def test_evaluate_weights_batches_by_their_size():
    # The "model" is the identity, so the inputs are the logits and the answer is known.
    logits = torch.tensor(
        [[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 4.0],
         [5.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 1.0, 0.0], [3.0, 0.0, 0.0]]
    )
    y = torch.tensor([0, 1, 2, 1, 0, 0, 1, 2, 0])  # rows 3, 4 and 7 are wrong: accuracy 6 / 9
    sizes = [1, 5, 3]  # unequal batches: a mean of batch means would be wrong
    result = evaluate(nn.Identity(), batches(logits, y, sizes))

    expected_loss = F.cross_entropy(logits, y).item()
    assert result == pytest.approx({"loss": expected_loss, "accuracy": 6 / 9}, rel=1e-6)
    batch_means = [F.cross_entropy(lo, t).item() for lo, t in batches(logits, y, sizes)]
    assert sum(batch_means) / 3 != pytest.approx(expected_loss, rel=1e-3)  # the trap is real
    batch_accuracies = [accuracy(lo, t).item() for lo, t in batches(logits, y, sizes)]
    assert batch_accuracies == pytest.approx([1.0, 3 / 5, 2 / 3])  # their mean, 0.76, is not 6 / 9


def test_evaluate_prefix_loss_and_metrics(loaders):
    model = linear()
    plain = evaluate(model, loaders[1])
    assert evaluate(model, loaders[1], prefix="test_") == {"test_" + k: v for k, v in plain.items()}
    margin = evaluate(model, loaders[1], loss_fn=nn.MultiMarginLoss(), metrics=None)
    assert set(margin) == {"loss"} and margin["loss"] != pytest.approx(plain["loss"])


def test_evaluate_does_not_change_the_model(loaders):
    model = linear()
    before = copy.deepcopy(model.state_dict())
    evaluate(model, loaders[1])
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_evaluate_rejects_an_empty_loader():
    with pytest.raises(ValueError, match="no batches"):
        evaluate(linear(), [])


def test_predict_concatenates_eval_mode_logits_and_targets(blobs):
    X, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 3))  # dropout: eval mode matters
    logits, targets = predict(model, batches(X, y, [7, 50, 33]))
    assert model.training  # restored
    assert logits.shape == (90, 3) and logits.device == torch.device("cpu")
    torch.testing.assert_close(logits, model.eval()(X))
    torch.testing.assert_close(targets, y, rtol=0, atol=0)


# Callback: the protocol fit follows


class Recorder(Callback):
    """Records every hook call; optionally asks to stop after a given epoch."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[tuple] = []
        self.stop_after = stop_after

    def on_train_begin(self, model):
        self.calls.append(("begin", model))

    def on_batch_end(self, step):
        self.calls.append(("batch", step))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch", epoch, dict(logs)))
        self.stop_training = epoch == self.stop_after

    def on_train_end(self, history):
        self.calls.append(("end", history))


def test_callbacks_see_every_hook_in_order(loaders):
    model, recorder = linear(), Recorder()
    history = fit(model, loaders[0], loaders[1], epochs=2, callbacks=[recorder])
    kinds = [call[0] for call in recorder.calls]
    assert kinds == ["begin"] + (["batch"] * 4 + ["epoch"]) * 2 + ["end"]
    assert recorder.calls[0][1] is model and recorder.calls[-1][1] is history
    assert [c[1] for c in recorder.calls if c[0] == "batch"] == list(range(8))  # steps count across epochs
    assert [c[2] for c in recorder.calls if c[0] == "epoch"] == history.rows


def test_a_callback_stops_training_after_the_epoch(loaders):
    recorder = Recorder(stop_after=1)
    history = fit(linear(), loaders[0], epochs=10, callbacks=[recorder])
    assert len(history) == 2
    assert recorder.calls[-1][0] == "end"


def test_values_a_callback_adds_to_the_logs_are_recorded_and_seen_by_later_callbacks(loaders):
    class Score(Callback):  # what a detector's validation callback does: a metric fit cannot compute itself
        def on_epoch_end(self, epoch, logs):
            logs["val_score"] = float(epoch)

    recorder = Recorder()
    history = fit(linear(), loaders[0], epochs=2, callbacks=[Score(), recorder])
    assert history["val_score"] == [0.0, 1.0]
    assert [c[2]["val_score"] for c in recorder.calls if c[0] == "epoch"] == [0.0, 1.0]
    stopper = EarlyStopping("val_score", mode="min", patience=1)
    assert len(fit(linear(), loaders[0], epochs=5, callbacks=[Score(), stopper])) == 2


def test_the_base_callback_does_nothing(loaders):
    history = fit(linear(), loaders[0], epochs=2, callbacks=[Callback()])
    assert len(history) == 2 and Callback.stop_training is False


# EarlyStopping, driven by hand


def drive(callback: Callback, values: list[float], *, monitor: str = "val_loss", seed: int = 0):
    """Run ``callback`` as fit would over scripted monitored ``values``.

    Every epoch gives the model fresh random weights first, and keeps a copy:
    ``snapshots[e]`` is the state at the end of epoch ``e``.
    """
    torch.manual_seed(seed)
    model, history, snapshots = nn.Linear(3, 2), History(), []
    callback.on_train_begin(model)
    for epoch, value in enumerate(values):
        with torch.no_grad():
            for param in model.parameters():
                param.normal_()
        snapshots.append(copy.deepcopy(model.state_dict()))
        logs = {"loss": 0.0, monitor: value}
        history.append(logs)
        callback.on_epoch_end(epoch, logs)
        if callback.stop_training:
            break
    callback.on_train_end(history)
    return history, model, snapshots


def assert_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0)


def test_early_stopping_counts_patience_epochs_without_improvement():
    stopper = EarlyStopping(patience=3)
    history, model, snapshots = drive(stopper, [1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert len(history) == 5  # epochs 2, 3 and 4 did not improve on 0.5
    assert stopper.stop_training and stopper.stopped_epoch == 4
    assert history.stopped_early and history.best_epoch == 1
    assert_state(model, snapshots[1])  # restore_best_weights is on by default


def test_early_stopping_patience_restarts_after_an_improvement():
    history, _, _ = drive(EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.87])
    assert len(history) == 6 and history.best_epoch == 3


def test_early_stopping_that_never_triggers():
    stopper = EarlyStopping(patience=2)
    history, model, snapshots = drive(stopper, [1.0, 0.9, 0.95, 0.8])
    assert len(history) == 4 and not stopper.stop_training
    assert not history.stopped_early and history.best_epoch == 3
    assert_state(model, snapshots[3])


def test_early_stopping_restores_the_best_weights_when_training_ends_without_stopping():
    history, model, snapshots = drive(EarlyStopping(patience=5), [1.0, 0.5, 0.7, 0.9])
    assert not history.stopped_early and history.best_epoch == 1
    assert_state(model, snapshots[1])


def test_early_stopping_can_keep_the_last_weights():
    history, model, snapshots = drive(EarlyStopping(patience=2, restore_best_weights=False), [1.0, 0.5, 0.6, 0.7])
    assert history.stopped_early and history.best_epoch == 1
    assert_state(model, snapshots[-1])


def test_an_improvement_equal_to_min_delta_does_not_count():
    history, model, snapshots = drive(EarlyStopping(patience=2, min_delta=0.25), [1.0, 0.75, 0.75])
    assert history.stopped_early and len(history) == 3 and history.best_epoch == 0
    assert_state(model, snapshots[0])


def test_a_slow_drift_of_small_improvements_still_stops():
    stopper = EarlyStopping(patience=3, min_delta=0.25)
    history, _, _ = drive(stopper, [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7])
    assert history.stopped_early and len(history) == 4 and history.best_epoch == 0
    assert stopper.best.value == 1.0  # the small steps never moved the best value


def test_a_small_improvement_does_not_move_the_best_value():
    # 0.9 is not better than 1.0 by more than 0.25, so the best stays 1.0, and 0.7 then
    # counts (it beats 1.0 by 0.3). Had 0.9 become the best, 0.7 would not count.
    history, _, _ = drive(EarlyStopping(patience=2, min_delta=0.25), [1.0, 0.9, 0.7, 0.65])
    assert not history.stopped_early and history.best_epoch == 2


@pytest.mark.parametrize(
    ("monitor", "mode", "stopped_at", "best_epoch"),
    [
        ("val_score", "max", 3, 1),
        ("val_accuracy", "auto", 3, 1),
        ("accuracy", "auto", 3, 1),
        ("val_top5_accuracy", "auto", 3, 1),
        ("val_score", "min", 2, 0),
        ("val_loss", "auto", 2, 0),
    ],
)
def test_early_stopping_modes(monitor, mode, stopped_at, best_epoch):
    stopper = EarlyStopping(monitor, mode=mode, patience=2)
    history, _, _ = drive(stopper, [0.1, 0.2, 0.15, 0.1, 0.3], monitor=monitor)
    assert stopper.stopped_epoch == stopped_at and history.best_epoch == best_epoch


@pytest.mark.parametrize("patience", [0, -1])
def test_early_stopping_rejects_patience_below_one(patience):
    with pytest.raises(ValueError, match="patience must be >= 1"):
        EarlyStopping(patience=patience)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"min_delta": -0.1}, "min_delta is a size"), ({"mode": "median"}, "mode must be")]
)
def test_early_stopping_rejects_bad_settings_before_the_first_epoch(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs).on_train_begin(nn.Linear(1, 1))


def test_early_stopping_on_a_value_missing_from_the_logs_names_val_loader():
    stopper = EarlyStopping("val_loss")
    stopper.on_train_begin(nn.Linear(1, 1))
    with pytest.raises(KeyError, match="val_loader"):
        stopper.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})


def test_fit_without_validation_and_early_stopping_on_val_loss_says_why(loaders):
    with pytest.raises(KeyError, match="'val_loss' is not in the logs .* need a val_loader"):
        fit(linear(), loaders[0], epochs=3, callbacks=[EarlyStopping()])


def test_early_stopping_when_the_monitored_value_is_nan_from_the_start():
    # A diverged run (lr too high) logs a NaN loss from the first epoch: no epoch is ever
    # an improvement, so there is no best epoch, and the stopper must still stop cleanly.
    stopper = EarlyStopping(patience=2)
    history, model, snapshots = drive(stopper, [math.nan] * 5)
    assert stopper.stop_training and len(history) == 2
    assert history.stopped_early and history.best_epoch is None
    assert_state(model, snapshots[-1])  # nothing to restore


def test_early_stopping_can_be_reused_for_a_second_run():
    stopper = EarlyStopping(patience=1)
    drive(stopper, [1.0, 2.0])
    history, _, _ = drive(stopper, [5.0, 4.0, 3.0])
    assert not history.stopped_early and history.best_epoch == 2


def test_fit_with_early_stopping_stops_and_restores_the_best_epoch(noisy_val):
    train, val = noisy_val
    model = linear()
    states = []

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, logs):
            states.append(copy.deepcopy(model.state_dict()))

    history = fit(
        model, train, val, epochs=20, optimizer=adam(model, 0.02),
        callbacks=[Snapshot(), EarlyStopping("val_loss", patience=2)],
    )
    best_epoch, _ = history.best("val_loss")
    assert history.stopped_early and history.best_epoch == best_epoch
    assert len(history) == best_epoch + 3 < 20
    assert_state(model, states[best_epoch])


def test_fit_with_early_stopping_and_min_delta_stops_a_slowly_improving_run(loaders):
    train, val = loaders
    model = linear()
    history = fit(model, train, val, epochs=30, optimizer=adam(model, 0.05),
                  callbacks=[EarlyStopping("val_loss", patience=2, min_delta=0.01)])
    assert history.stopped_early and len(history) < 30
    assert all(b < a for a, b in zip(history["val_loss"], history["val_loss"][1:]))  # still improving ...
    assert history["val_loss"][history.best_epoch] - history["val_loss"][-1] <= 0.01  # ... but by too little


# ModelCheckpoint


def test_model_checkpoint_writes_only_on_improvement(tmp_path):
    path = tmp_path / "checkpoints" / "best.pt"  # the folder is made on demand
    checkpoint = ModelCheckpoint(path)
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    checkpoint.on_train_begin(model)
    file_ids = []
    for epoch, value in enumerate([1.0, 0.5, 0.7, 0.4]):
        with torch.no_grad():
            for param in model.parameters():
                param.normal_()
        checkpoint.on_epoch_end(epoch, {"val_loss": value})
        file_ids.append((path.stat().st_ino, path.stat().st_mtime_ns))
        saved = torch.load(path, weights_only=True)
        if epoch in (0, 1, 3):  # improvements: the file holds this epoch's weights
            assert_state(model, saved)
            best = copy.deepcopy(model.state_dict())
        else:  # no improvement: the file is untouched
            assert file_ids[-1] == file_ids[-2]
            for name, value in saved.items():
                torch.testing.assert_close(value, best[name], rtol=0, atol=0)
    assert checkpoint.best_epoch == 3
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no .partial left


def test_model_checkpoint_can_save_every_epoch(tmp_path):
    path = tmp_path / "last.pt"
    _, model, _ = drive(ModelCheckpoint(path, save_best_only=False), [1.0, 0.5, 0.7])
    assert_state(model, torch.load(path, weights_only=True))  # epoch 2's, though not the best


def test_model_checkpoint_in_max_mode(tmp_path):
    path = tmp_path / "best.pt"
    checkpoint = ModelCheckpoint(path, monitor="val_accuracy")
    _, _, snapshots = drive(checkpoint, [0.5, 0.9, 0.7], monitor="val_accuracy")
    assert checkpoint.best_epoch == 1
    saved = torch.load(path, weights_only=True)
    for name, value in snapshots[1].items():
        torch.testing.assert_close(saved[name], value, rtol=0, atol=0)


def test_model_checkpoint_reloads_the_best_epoch(noisy_val, tmp_path, blobs):
    train, val = noisy_val
    X, _ = blobs
    model = linear()
    outputs = []

    class Outputs(Callback):
        def on_epoch_end(self, epoch, logs):
            with torch.no_grad():
                outputs.append(model(X))

    path = tmp_path / "best.pt"
    history = fit(
        model, train, val, epochs=7, optimizer=adam(model, 0.02), callbacks=[ModelCheckpoint(path), Outputs()]
    )
    best_epoch, _ = history.best("val_loss")
    assert 0 < best_epoch < len(history) - 1  # the scenario: improvements, then a worse tail

    fresh = linear(seed=1)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(fresh(X), outputs[best_epoch])
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


# LRScheduler


def sgd(model: nn.Module, lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr)


def test_fit_steps_an_epoch_scheduler_once_per_epoch(loaders):
    model = linear()
    optimizer = sgd(model, 0.1)
    history = fit(model, loaders[0], epochs=3, optimizer=optimizer, scheduler=StepLR(optimizer, step_size=1, gamma=0.5))
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])  # each epoch's lr, read at its start
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_fit_steps_a_batch_scheduler_once_per_batch(loaders):
    model = linear()
    optimizer = sgd(model, 0.1)
    scheduler = LambdaLR(optimizer, lambda step: 1 / (step + 1))
    history = fit(model, loaders[0], epochs=2, optimizer=optimizer, scheduler=scheduler, scheduler_interval="batch")
    assert scheduler.last_epoch == 8  # 4 batches x 2 epochs
    assert history["lr"] == pytest.approx([0.1, 0.1 / 5])


@pytest.mark.parametrize(("interval", "expected_steps"), [("epoch", 2), ("batch", 6)])
def test_lr_scheduler_callback_steps_per_epoch_or_per_batch(interval, expected_steps):
    optimizer = sgd(nn.Linear(1, 1))
    scheduler = LambdaLR(optimizer, lambda step: 0.5**step)
    callback = LRScheduler(scheduler, interval=interval)
    for epoch in range(2):  # two epochs of three batches
        for step in range(3 * epoch, 3 * epoch + 3):
            optimizer.step()  # as in fit: the optimizer steps before the scheduler
            callback.on_batch_end(step)
        callback.on_epoch_end(epoch, {"loss": 1.0})
    assert scheduler.last_epoch == expected_steps
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5**expected_steps)


def test_reduce_on_plateau_halves_the_lr_after_patience():
    optimizer = sgd(nn.Linear(1, 1))
    callback = LRScheduler(ReduceLROnPlateau(optimizer, factor=0.5, patience=1), monitor="val_loss")
    lrs = []
    for epoch, value in enumerate([1.0, 0.5, 0.5, 0.5, 0.5, 0.5]):
        callback.on_epoch_end(epoch, {"loss": 9.0 - epoch, "val_loss": value})
        lrs.append(optimizer.param_groups[0]["lr"])
    # best 0.5 at epoch 1; epochs 2 and 3 are bad (> patience 1): halve; 4 and 5 again
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]


class RecordingPlateau(ReduceLROnPlateau):
    """ReduceLROnPlateau that remembers the values it was stepped with."""

    def __init__(self, *args, **kwargs) -> None:
        self.seen: list[float] = []
        super().__init__(*args, **kwargs)

    def step(self, metrics, epoch=None):
        self.seen.append(metrics)
        super().step(metrics)


@pytest.mark.parametrize("with_val", [True, False])
def test_fit_steps_reduce_on_plateau_with_val_loss_else_loss(with_val, loaders):
    model = linear()
    optimizer = sgd(model, 0.1)
    scheduler = RecordingPlateau(optimizer)
    val = loaders[1] if with_val else None
    history = fit(model, loaders[0], val, epochs=3, optimizer=optimizer, scheduler=scheduler)
    assert scheduler.seen == history["val_loss" if with_val else "loss"]


def test_fit_reduces_the_lr_when_the_val_loss_plateaus(loaders):
    model = linear()
    frozen = nn.Parameter(torch.zeros(1))  # the optimizer only holds a parameter the model does not use:
    optimizer = torch.optim.SGD([frozen], lr=1.0)  # the model never changes, the val loss is flat
    scheduler = ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    history = fit(model, loaders[0], loaders[1], epochs=5, optimizer=optimizer, scheduler=scheduler)
    assert len(set(history["val_loss"])) == 1
    assert history["lr"] == [1.0, 1.0, 1.0, 0.5, 0.5]
    assert optimizer.param_groups[0]["lr"] == 0.25


def test_reduce_on_plateau_cannot_step_per_batch(loaders):
    model = linear()
    optimizer = sgd(model)
    with pytest.raises(ValueError, match="interval='epoch'"):
        LRScheduler(ReduceLROnPlateau(optimizer), interval="batch")
    with pytest.raises(ValueError, match="interval='epoch'"):
        fit(model, loaders[0], epochs=1, optimizer=optimizer, scheduler=ReduceLROnPlateau(optimizer),
            scheduler_interval="batch")


def test_lr_scheduler_rejects_an_unknown_interval():
    with pytest.raises(ValueError, match="interval must be 'epoch' or 'batch'"):
        LRScheduler(StepLR(sgd(nn.Linear(1, 1)), step_size=1), interval="step")


def test_reduce_on_plateau_monitor_missing_from_the_logs():
    callback = LRScheduler(ReduceLROnPlateau(sgd(nn.Linear(1, 1))), monitor="val_loss")
    with pytest.raises(KeyError, match="val_loader"):
        callback.on_epoch_end(0, {"loss": 1.0})


# TensorBoard


def test_tensorboard_without_the_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install"):
        TensorBoard(tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_tensorboard_writes_event_files(loaders, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    log_dir = tmp_path / "runs" / "tiny"
    fit(linear(), loaders[0], loaders[1], epochs=2, callbacks=[TensorBoard(log_dir)])
    events = list(log_dir.glob("events.out.tfevents.*"))
    assert events and all(event.stat().st_size > 0 for event in events)


# metrics


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.7]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 0])).item() == 0.5
    assert accuracy(logits, torch.tensor([0, 1, 0, 1])).item() == 1.0


@pytest.mark.parametrize(("k", "expected"), [(1, 0.0), (2, 2 / 3), (3, 1.0)])
def test_top_k_accuracy(k, expected):
    logits = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [1.0, 3.0, 2.0]])
    targets = torch.tensor([1, 2, 2])  # ranks of the targets: 2nd, 3rd, 2nd
    assert top_k_accuracy(logits, targets, k=k).item() == pytest.approx(expected)


def test_top_1_accuracy_is_accuracy():
    generator = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(50, 7, generator=generator), torch.randint(0, 7, (50,), generator=generator)
    assert top_k_accuracy(logits, targets, k=1) == accuracy(logits, targets)


@pytest.mark.parametrize("k", [0, -1, 4])
def test_top_k_accuracy_rejects_k_out_of_range(k):
    with pytest.raises(ValueError, match="k must be between 1 and the number of classes 3"):
        top_k_accuracy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), k=k)


def test_multilabel_accuracy_scores_tags_and_rows():
    from cnncourse.training.metrics import multilabel_accuracy

    logits = torch.tensor([[2.0, -1.0, 0.3], [-0.5, 3.0, -2.0], [1.0, 1.0, 1.0]])
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 1]])  # row 0 has one wrong tag
    assert multilabel_accuracy(logits, targets).item() == pytest.approx(8 / 9)
    assert multilabel_accuracy(logits, targets.float(), exact=True).item() == pytest.approx(2 / 3)
    # a positive logit is a sigmoid probability above 0.5
    probabilities = torch.sigmoid(logits)
    assert torch.equal((probabilities > 0.5), (logits > 0))
    with pytest.raises(ValueError, match="N x K"):
        multilabel_accuracy(logits, targets[:, :2])


def test_fit_trains_a_multilabel_head_with_binary_cross_entropy():
    from cnncourse.training.metrics import multilabel_accuracy

    generator = torch.Generator().manual_seed(0)
    X = torch.randn(256, 4, generator=generator)
    tags = torch.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0], dim=1).float()  # two tags, often both
    loader = [(X[i : i + 64], tags[i : i + 64]) for i in range(0, 256, 64)]
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    history = fit(model, loader, loader, epochs=30, optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
                  loss_fn=nn.BCEWithLogitsLoss(), metrics={"tags": multilabel_accuracy}, device="cpu",
                  progress=False)
    assert history["val_tags"][-1] > 0.95 and history["val_loss"][-1] < history["val_loss"][0]


CONFUSION_TARGETS = torch.tensor([0, 0, 1, 2, 2, 2])
CONFUSION_PREDICTIONS = torch.tensor([0, 1, 1, 2, 0, 2])
CONFUSION_MATRIX = torch.tensor(
    [
        [1, 1, 0],  # true 0: once right, once taken for a 1
        [0, 1, 0],  # true 1: right
        [1, 0, 2],  # true 2: twice right, once taken for a 0
    ]
)


def test_confusion_matrix_from_labels():
    matrix = confusion_matrix(CONFUSION_PREDICTIONS, CONFUSION_TARGETS, num_classes=3)
    assert matrix.dtype == torch.int64
    torch.testing.assert_close(matrix, CONFUSION_MATRIX, rtol=0, atol=0)


def test_confusion_matrix_from_logits():
    generator = torch.Generator().manual_seed(0)
    logits = 5 * F.one_hot(CONFUSION_PREDICTIONS, 3) + torch.rand(6, 3, generator=generator)
    matrix = confusion_matrix(logits, CONFUSION_TARGETS, num_classes=3)
    torch.testing.assert_close(matrix, CONFUSION_MATRIX, rtol=0, atol=0)
    assert matrix.diagonal().sum() / matrix.sum() == accuracy(logits, CONFUSION_TARGETS)


def test_confusion_matrix_counts_absent_classes():
    matrix = confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 1]), num_classes=4)
    assert matrix.shape == (4, 4) and matrix.sum() == 2 and matrix[0, 0] == 1 and matrix[1, 0] == 1


@pytest.mark.parametrize(
    ("predictions", "targets"),
    [
        ([3, 1], [0, 1]),  # a prediction past the last class would be counted as (true 1, predicted 0)
        ([-1, 1], [1, 1]),  # a negative one as (true 0, predicted 2)
        ([0, 1], [3, 1]),  # a target past the last class
    ],
)
def test_confusion_matrix_rejects_classes_out_of_range(predictions, targets):
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(torch.tensor(predictions), torch.tensor(targets), num_classes=3)


def test_confusion_matrix_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ"):
        confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), num_classes=2)


def test_resolve_metrics():
    assert resolve_metrics(None) == {}
    assert resolve_metrics("accuracy") == {"accuracy": accuracy}
    assert list(resolve_metrics(("accuracy", "top5_accuracy"))) == ["accuracy", "top5_accuracy"]
    top5 = resolve_metrics(["top5_accuracy"])["top5_accuracy"]
    logits = torch.arange(6.0).repeat(2, 1)  # class 5 ranks first, class 0 last
    assert top5(logits, torch.tensor([1, 0])).item() == 0.5
    custom = {"mine": accuracy}
    assert resolve_metrics(custom) == custom and resolve_metrics(custom) is not custom


def test_resolve_metrics_rejects_unknown_names():
    names = r"\['accuracy', 'mean_iou', 'pixel_accuracy', 'top5_accuracy'\]"
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['f1'\]: use " + names):
        resolve_metrics(["accuracy", "f1"])


# History


@pytest.fixture
def history() -> History:
    h = History()
    for loss, acc, val_loss, val_acc in [(1.0, 0.5, 1.1, 0.4), (0.6, 0.7, 0.8, 0.6), (0.4, 0.8, 0.9, 0.65)]:
        h.append({"loss": loss, "accuracy": acc, "val_loss": val_loss, "val_accuracy": val_acc, "lr": 0.1, "time": 1.0})
    return h


def test_history_getitem_keys_len_and_last(history):
    assert history["loss"] == [1.0, 0.6, 0.4]
    assert history["val_accuracy"] == [0.4, 0.6, 0.65]
    assert history.keys() == ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"]
    assert len(history) == 3 and history.last["loss"] == 0.4
    assert History().last == {} and len(History()) == 0


def test_history_keeps_a_copy_of_the_logs():
    logs = {"loss": 1.0}
    h = History()
    h.append(logs)
    logs["loss"] = 2.0
    assert h["loss"] == [1.0]


def test_history_fills_gaps_with_nan():
    h = History()
    h.append({"loss": 1.0})
    h.append({"loss": 0.5, "val_loss": 0.7})
    values = h["val_loss"]
    assert math.isnan(values[0]) and values[1] == 0.7


def test_history_best_skips_the_gaps_it_filled_with_nan():
    h = History()
    h.append({"loss": 1.0})  # say, a first run without a validation set
    h.append({"loss": 0.5, "val_loss": 0.7})
    h.append({"loss": 0.4, "val_loss": 0.6})
    assert h.best("val_loss") == (2, 0.6)
    assert h.best("val_loss", mode="max") == (1, 0.7)


def test_history_unknown_key_names_the_recorded_ones(history):
    with pytest.raises(KeyError, match="'val_acc' was not recorded; recorded: loss, accuracy, val_loss"):
        history["val_acc"]


def test_history_best(history):
    assert history.best() == (1, 0.8)
    assert history.best("val_accuracy", mode="max") == (2, 0.65)
    assert history.best("loss") == (2, 0.4)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        history.best("val_accuracy", mode="auto")
    with pytest.raises(KeyError):
        history.best("val_f1")


def test_history_save_and_load_round_trip(history, tmp_path):
    history.stopped_early, history.best_epoch = True, 1
    path = tmp_path / "history.json"
    history.save(path)
    loaded = History.load(str(path))
    assert loaded == history
    assert loaded.rows is not history.rows
    assert History.from_dict(history.to_dict()) == history


def test_history_plot_draws_one_panel_per_metric(history):
    import matplotlib.pyplot as plt

    fig = history.plot(title="tiny")
    try:
        assert isinstance(fig, Figure)
        assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]  # no lr, no time
        labels = [[line.get_label() for line in ax.get_lines()] for ax in fig.axes]
        assert labels == [["loss", "val_loss"], ["accuracy", "val_accuracy"]]
        assert list(fig.axes[0].get_lines()[1].get_ydata()) == [1.1, 0.8, 0.9]
        assert fig.get_suptitle() == "tiny"
        from cnncourse.viz import FIGURE_WIDTH

        # no wider than the website's column once a notebook has saved it (0.1 inch padding per side)
        assert fig.get_size_inches()[0] <= FIGURE_WIDTH - 0.2
    finally:
        plt.close(fig)


def test_history_plot_marks_the_best_epoch_and_draws_into_given_axes(history):
    import matplotlib.pyplot as plt

    history.best_epoch = 1
    fig, axes = plt.subplots(1, 1)
    try:
        assert history.plot(("loss",), axes=[axes]) is fig
        assert len(fig.axes) == 1
        vertical = [line for line in axes.get_lines() if line.get_label() not in ("loss", "val_loss")]
        assert len(vertical) == 1 and list(vertical[0].get_xdata()) == [2, 2]  # epochs count from 1
    finally:
        plt.close(fig)


# Memory layout and precision on the CPU


def test_channels_last_trains_like_the_contiguous_layout(blobs, tiny_cnn):
    X, y = blobs
    train, val = batches(X[:60], y[:60], 16), batches(X[60:], y[60:], 16)
    runs = {}
    for channels_last in (False, True):
        model = tiny_cnn(seed=0)
        history = fit(model, train, val, epochs=3, optimizer=sgd(model, 0.1), amp=False, channels_last=channels_last)
        runs[channels_last] = history, model

    # the option took effect: NHWC strides of the second 4 x 4 x 3 x 3 kernel are (36, 1, 12, 4)
    assert runs[True][1][2].weight.stride() == (36, 1, 12, 4)
    assert runs[False][1][2].weight.stride() == (36, 9, 3, 1)
    (plain, plain_model), (nhwc, nhwc_model) = runs[False], runs[True]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert nhwc[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-6)
    for name, value in plain_model.state_dict().items():
        torch.testing.assert_close(nhwc_model.state_dict()[name], value, rtol=1e-5, atol=1e-6)


def test_bfloat16_autocast_on_the_cpu_still_learns(loaders, tiny_cnn):
    model = tiny_cnn()
    history = fit(model, *loaders, epochs=5, optimizer=adam(model, 0.05), amp=True)
    assert history["val_accuracy"][-1] == 1.0
    assert next(model.parameters()).dtype == torch.float32  # autocast leaves the weights alone


@pytest.mark.parametrize(("progress", "env", "bars_off"), [(True, None, False), (False, None, True), (True, "1", True)])
def test_progress_bars_follow_progress_and_tqdm_disable(progress, env, bars_off, blobs, monkeypatch):
    # tqdm's notebook bars ignore TQDM_DISABLE by themselves; fit must pass it on
    from tqdm import tqdm as real_tqdm

    calls = []

    def spy(iterable, **kwargs):
        calls.append(kwargs)
        return real_tqdm(iterable, disable=True)

    monkeypatch.setattr("cnncourse.training.loop.tqdm", spy)
    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    X, y = blobs
    fit(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), [(X, y)], epochs=1, progress=progress, device="cpu")
    assert calls and all(kwargs.get("disable", False) == bars_off for kwargs in calls)
