"""cnncourse.distributed, fit under DistributedDataParallel and sharded loaders: two CPU processes with gloo.

All two-process scenarios run in one launch (starting two Python processes
that import torch costs seconds); each test then checks what the ranks wrote.
The launch has a deadline and the process group a short timeout, so a rank
left waiting in a collective fails the tests within a minute instead of
hanging CI.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, TensorDataset

from cnncourse import distributed, fit, zoo
from cnncourse.data import ShardedSampler, tensor_loader
from cnncourse.training import Callback, EarlyStopping, ModelCheckpoint

pytestmark = pytest.mark.usefixtures("one_thread")

WORLD = 2
DEADLINE = 90  # seconds for the whole two-process launch
COLLECTIVE_TIMEOUT = 30  # seconds a rank waits in a collective before failing
BATCH = 4  # per rank: the single process reference takes WORLD * BATCH
EPOCHS = 3
SHARD_SIZE = 11  # odd, so that two shards differ in length


def make_data() -> tuple[TensorDataset, TensorDataset]:
    """64 training and 45 validation images of 1 x 4 x 4 in 3 classes; 45 splits 23 + 22."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(109, 1, 4, 4, generator=g), torch.randint(0, 3, (109,), generator=g)
    X[torch.arange(109), 0, y, y] += 2.0  # a learnable signal
    return TensorDataset(X[:64], y[:64]), TensorDataset(X[64:], y[64:])


def make_model() -> nn.Module:
    """A tiny CNN without batch norm (whose statistics would differ per shard)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))


def sgd(model: nn.Module, lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr)


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


class StopOnRank(Callback):
    """Stops training on one rank only, after a given epoch."""

    def __init__(self, rank: int, epoch: int) -> None:
        self.rank, self.epoch = rank, epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.stop_training = distributed.rank() == self.rank and epoch == self.epoch


def indices_per_epoch(loader: DataLoader, epochs: int = 2) -> list[list[int]]:
    # the datasets below hold their own index as the target
    return [[i for _, y in loader for i in y.tolist()] for _ in range(epochs)]


def scenarios(rank: int, folder: str) -> dict:
    """Everything the tests check, run on every rank; returns what this rank saw."""
    results = {}
    train, val = make_data()
    val_loader = tensor_loader(val, 10)

    # fit trains DDP on shards of BATCH, the caller's module in place; rank 0 alone checkpoints
    model = make_model()
    checkpoint = ModelCheckpoint(os.path.join(folder, f"checkpoint-rank{rank}.pt"), save_best_only=False)
    history = fit(model, tensor_loader(train, BATCH), val_loader, epochs=EPOCHS, optimizer=sgd(model),
                  callbacks=[checkpoint], device="cpu", progress=False)
    results["ddp"] = {"wrapped": type(model).__name__, "params": parameters(model), "history": history.rows}

    # a model the caller wrapped already (in fit's memory layout, as DDP needs) is not wrapped twice
    model = make_model().to(memory_format=torch.channels_last)
    wrapped = nn.parallel.DistributedDataParallel(model)
    fit(wrapped, tensor_loader(train, BATCH), epochs=EPOCHS, optimizer=sgd(model), device="cpu", progress=False)
    results["prewrapped"] = parameters(model)

    # a callback that stops one rank stops both; so does early stopping (nothing improves at lr 0)
    model = make_model()
    history = fit(model, tensor_loader(train, BATCH), val_loader, epochs=5, optimizer=sgd(model),
                  callbacks=[StopOnRank(rank=1, epoch=1)], device="cpu", progress=False)
    results["stop_on_rank_1"] = len(history)
    model = make_model()
    history = fit(model, tensor_loader(train, BATCH), val_loader, epochs=5, optimizer=sgd(model, lr=0.0),
                  callbacks=[EarlyStopping(patience=1)], device="cpu", progress=False)
    results["early_stopping"] = (len(history), history.stopped_early)

    # a DataLoader with a DistributedSampler gets set_epoch every epoch
    sampler = DistributedSampler(train, shuffle=True, seed=0)
    model = make_model()
    fit(model, DataLoader(train, batch_size=BATCH, sampler=sampler), epochs=2, optimizer=sgd(model),
        device="cpu", progress=False)
    results["sampler_epoch"] = sampler.epoch

    # tensor_loader's shards, two epochs each
    numbered = TensorDataset(torch.zeros(SHARD_SIZE, 1), torch.arange(SHARD_SIZE))
    results["shards"] = {
        "shuffled": indices_per_epoch(tensor_loader(numbered, 3, shuffle=True, seed=5)),
        "in_order": indices_per_epoch(tensor_loader(numbered, 3)),
    }

    # uneven training shards would leave a rank waiting in DDP's all-reduce: fit refuses them on every rank
    model = make_model()
    uneven = tensor_loader(numbered, 1, even_shards=False)  # 6 batches on rank 0, 5 on rank 1
    try:
        fit(model, _Reshaped(uneven), epochs=1, device="cpu", progress=False)
    except ValueError as error:
        results["uneven"] = str(error)

    # the zoo's command line under the process group, on a sliver of the data: rank 0 alone stores the entry
    small = zoo.fashion_mnist(train_size=256, val_size=128)
    small = dataclasses.replace(small, test=TensorDataset(*(t[:256] for t in small.test.tensors)))
    zoo.fashion_mnist = lambda *args, **kwargs: small
    os.environ["CNNCOURSE_ZOO"] = os.path.join(folder, "zoo")
    lines = []
    zoo.main(["train", "lenet5", "--epochs", "1", "--device", "cpu"], out=lines.append)
    results["zoo"] = {"lines": lines, "initialized_after": distributed.is_initialized()}
    return results


class _Reshaped:
    """The numbered shard as 1 x 4 x 4 images with 3 classes (and a length, which fit checks)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for _, y in self.loader:
            yield torch.zeros(len(y), 1, 4, 4), y % 3


def worker(rank: int, port: int, folder: str) -> None:
    """One rank, with the environment torchrun would give it."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    device = distributed.init_from_env("cpu", timeout=COLLECTIVE_TIMEOUT)
    assert device == torch.device("cpu") and distributed.world_size() == WORLD and distributed.rank() == rank
    try:
        results = scenarios(rank, folder)
    finally:
        distributed.cleanup()
    results["main_after_cleanup"] = distributed.is_main_process()
    torch.save(results, os.path.join(folder, f"results-rank{rank}.pt"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run :func:`scenarios` on two ranks; return the folder and what each rank saw."""
    folder = tmp_path_factory.mktemp("ddp")
    context = mp.start_processes(worker, args=(free_port(), str(folder)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + DEADLINE
    try:
        while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
            if time.monotonic() > deadline:
                pytest.fail(f"the two ranks did not finish within {DEADLINE} s: a rank hangs in a collective")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return folder, [torch.load(folder / f"results-rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.fixture(scope="module")
def single():
    """The reference: one process, the doubled batch, the same data, order and initial weights."""
    train, val = make_data()
    model = make_model()
    history = fit(model, tensor_loader(train, WORLD * BATCH), tensor_loader(val, 10), epochs=EPOCHS,
                  optimizer=sgd(model), device="cpu", progress=False)
    return parameters(model), history


# --- two processes -----------------------------------------------------------


def test_ranks_end_with_identical_parameters_equal_to_one_process_with_the_doubled_batch(ranks, single):
    _, (zero, one) = ranks
    assert zero["ddp"]["wrapped"] == "Sequential"  # the caller's module, trained in place
    for name, value in zero["ddp"]["params"].items():
        assert torch.equal(value, one["ddp"]["params"][name]), name
        torch.testing.assert_close(value, single[0][name], rtol=0, atol=1e-5)
    assert any(not torch.equal(v, make_model().state_dict()[k]) for k, v in single[0].items())  # it trained


def test_every_rank_returns_the_single_process_history(ranks, single):
    _, (zero, one) = ranks
    assert zero["ddp"]["history"] == one["ddp"]["history"]
    reference = single[1].rows
    assert len(zero["ddp"]["history"]) == len(reference) == EPOCHS
    for row, expected in zip(zero["ddp"]["history"], reference):
        assert row.keys() == expected.keys()
        for key in expected.keys() - {"time"}:
            # validation over 23 + 22 images counts each once: no padded duplicate shifts the mean
            assert row[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-7), key


def test_a_model_wrapped_by_the_caller_is_trained_as_is(ranks):
    _, (zero, one) = ranks
    for name, value in zero["ddp"]["params"].items():
        assert torch.equal(zero["prewrapped"][name], value) and torch.equal(one["prewrapped"][name], value)


def test_a_stop_on_one_rank_and_early_stopping_end_both_ranks(ranks):
    _, (zero, one) = ranks
    assert zero["stop_on_rank_1"] == one["stop_on_rank_1"] == 2
    assert zero["early_stopping"] == one["early_stopping"] == (2, True)


def test_only_rank_0_checkpoints_and_the_checkpoint_loads(ranks):
    folder, (zero, _) = ranks
    assert not (folder / "checkpoint-rank1.pt").exists()
    model = make_model()
    model.load_state_dict(torch.load(folder / "checkpoint-rank0.pt", weights_only=True))
    for name, value in parameters(model).items():
        assert torch.equal(value, zero["ddp"]["params"][name]), name


def test_fit_calls_set_epoch_on_a_distributed_sampler(ranks):
    _, (zero, one) = ranks
    assert zero["sampler_epoch"] == one["sampler_epoch"] == 1


def test_tensor_loader_shards_disjoint_complete_and_reshuffled_alike(ranks):
    _, (zero, one) = ranks
    for epoch in range(2):
        # evaluation: uneven shards, every index exactly once
        a, b = zero["shards"]["in_order"][epoch], one["shards"]["in_order"][epoch]
        assert a == list(range(0, SHARD_SIZE, 2)) and b == list(range(1, SHARD_SIZE, 2))
        # training: one permutation per epoch on both ranks, padded to 12 by repeating its start
        a, b = zero["shards"]["shuffled"][epoch], one["shards"]["shuffled"][epoch]
        assert len(a) == len(b) == 6
        order = [i for pair in zip(a, b) for i in pair]
        assert sorted(order[:SHARD_SIZE]) == list(range(SHARD_SIZE)) and order[SHARD_SIZE] == order[0]
    assert zero["shards"]["shuffled"][0] != zero["shards"]["shuffled"][1]  # a new permutation each epoch
    for rank, seen in enumerate((zero, one)):
        sampler = ShardedSampler(SHARD_SIZE, rank=rank, world_size=WORLD, shuffle=True, seed=5)
        assert seen["shards"]["shuffled"] == [list(sampler), list(sampler)]


def test_uneven_training_shards_raise_on_every_rank_instead_of_hanging(ranks):
    _, (zero, one) = ranks
    assert zero["uneven"] == one["uneven"]
    assert "between 5 and 6 batches" in zero["uneven"] and "even_shards=True" in zero["uneven"]


def test_the_zoo_trains_under_the_process_group_and_only_rank_0_stores(ranks):
    folder, (zero, one) = ranks
    assert zero["zoo"]["lines"][0].startswith("lenet5: test accuracy") and one["zoo"]["lines"] == []
    assert not zero["zoo"]["initialized_after"] and zero["main_after_cleanup"] and not one["main_after_cleanup"]
    meta = json.loads((folder / "zoo" / "lenet5.json").read_text())
    assert meta["device"].startswith("2 x CPU") and len(meta["history"]["rows"]) == 1
    model = zoo.load_pretrained("lenet5", directory=folder / "zoo")
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# --- one process ---------------------------------------------------------------


def test_without_torchrun_nothing_is_initialised(monkeypatch):
    for variable in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert not distributed.launched()
    assert distributed.init_from_env("cpu") == torch.device("cpu") and not distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (0, 1, True)
    assert distributed.sum_over_ranks([1.5, torch.tensor(2)]).tolist() == [1.5, 2.0]
    assert distributed.max_over_ranks(3.0) == 3.0 and distributed.any_rank(True) and not distributed.any_rank(False)
    distributed.check_same_on_all_ranks(3, "batches")  # nothing to compare with
    model = nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model and distributed.unwrap(model) is model
    distributed.cleanup()  # harmless


def test_is_main_process_reads_torchrun_rank_without_a_group(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main_process()


@pytest.mark.parametrize("size", [1, 7, 8, 13])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sharded_sampler_splits_like_distributed_sampler(size, world, shuffle):
    uneven = [list(ShardedSampler(size, rank=r, world_size=world, shuffle=shuffle, even=False)) for r in range(world)]
    assert sorted(i for shard in uneven for i in shard) == list(range(size))  # disjoint and complete
    even = [list(ShardedSampler(size, rank=r, world_size=world, shuffle=shuffle)) for r in range(world)]
    assert {len(shard) for shard in even} == {-(-size // world)}
    assert set(i for shard in even for i in shard) == set(range(size))
    for r in range(world):
        assert len(ShardedSampler(size, rank=r, world_size=world, even=False)) == len(uneven[r])
    if not shuffle:  # torch's own sampler, padding included
        assert even == [list(DistributedSampler(range(size), num_replicas=world, rank=r, shuffle=False))
                        for r in range(world)]


def test_one_shard_is_the_single_process_shuffle():
    dataset = TensorDataset(torch.arange(10))
    reference = list(RandomSampler(dataset, generator=torch.Generator().manual_seed(3)))
    assert list(ShardedSampler(10, rank=0, world_size=1, shuffle=True, seed=3)) == reference


def test_sharded_sampler_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match=r"rank must be in 0\.\.1"):
        ShardedSampler(5, rank=2, world_size=2)


def test_init_from_env_refuses_mps_under_torchrun(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setattr(distributed, "get_device", lambda device=None: torch.device("mps"))
    with pytest.raises(ValueError, match="no backend for MPS"):
        distributed.init_from_env("mps")
