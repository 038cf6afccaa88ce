"""Tests of cnncourse.data: finding Fashion-MNIST offline, the splits, the loaders, the photos.

``prepare_fashion_mnist`` is tested on tiny IDX files written into ``tmp_path``
(never the network: ``_online`` and ``_download`` are monkeypatched). The
``fashion_mnist`` tests read the real data in the repository's ``data/`` and
are skipped where it has not been fetched (``make data``).
"""

from __future__ import annotations

import gzip
import os
import socket
import struct
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset
from torchvision import datasets

from cnncourse.data import fashion as data  # the module whose helpers the tests replace
from cnncourse.data import (
    FASHION_MNIST_CLASSES,
    SAMPLE_IMAGES,
    DataSplits,
    default_data_root,
    fashion_mnist,
    prepare_fashion_mnist,
    sample_image,
    tensor_loader,
)

REPO = Path(__file__).resolve().parents[1]
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# A tiny Fashion-MNIST in IDX format


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in IDX: magic 0x0000080N (2049 labels, 2051 images), sizes, data."""
    assert array.dtype == np.uint8
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def tiny_fashion_mnist(num_train: int = 20, num_test: int = 10) -> dict[str, np.ndarray]:
    """Random 28 x 28 images and labels, keyed by IDX file name."""
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", num_train), ("t10k", num_test)):
        arrays[f"{prefix}-images-idx3-ubyte"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{prefix}-labels-idx1-ubyte"] = rng.integers(0, 10, n, dtype=np.uint8)
    return arrays


def write_debian_source(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write the arrays as Debian's package does: gzip'd IDX files in one folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        with gzip.open(folder / f"{name}.gz", "wb") as file:
            file.write(idx_bytes(array))
    return folder


def write_raw_folder(root: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write the arrays as unpacked IDX files into ``root/FashionMNIST/raw``."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (raw / name).write_bytes(idx_bytes(array))
    return raw


def test_idx_helper_writes_the_documented_magic_numbers():
    arrays = tiny_fashion_mnist(num_train=3, num_test=2)
    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    assert struct.unpack(">4I", idx_bytes(images)[:16]) == (2051, 3, 28, 28)
    assert struct.unpack(">2I", idx_bytes(labels)[:8]) == (2049, 3)


def assert_loads_as(root: Path, arrays: dict[str, np.ndarray]) -> None:
    """torchvision reads ``root`` without downloading and finds exactly ``arrays``."""
    for train, prefix in ((True, "train"), (False, "t10k")):
        dataset = datasets.FashionMNIST(root, train=train, download=False)
        np.testing.assert_array_equal(dataset.data.numpy(), arrays[f"{prefix}-images-idx3-ubyte"])
        np.testing.assert_array_equal(dataset.targets.numpy(), arrays[f"{prefix}-labels-idx1-ubyte"])


def raise_if_called(*args, **kwargs):
    """Stands in for a function the code under test must not reach (the network probe, ...)."""
    raise AssertionError("called, but the test expects this function not to be reached")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty data root, apart from any Debian source folder the test makes."""
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def no_debian(tmp_path: Path) -> Path:
    """A Debian source folder without the package's files."""
    folder = tmp_path / "no-debian"
    folder.mkdir()
    return folder


# default_data_root


def test_default_data_root_is_the_repository_data_folder(monkeypatch):
    if Path(data.__file__).resolve().parents[3] != REPO:
        pytest.skip("cnncourse is not installed from this clone (pip install -e .)")
    monkeypatch.delenv("CNNCOURSE_DATA", raising=False)
    assert default_data_root() == REPO / "data"


def test_default_data_root_honours_cnncourse_data(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CNNCOURSE_DATA", "~/elsewhere")
    assert default_data_root() == tmp_path / "elsewhere"


def test_prepare_without_root_uses_cnncourse_data(monkeypatch, root):
    arrays = tiny_fashion_mnist()
    write_raw_folder(root, arrays)
    monkeypatch.setenv("CNNCOURSE_DATA", str(root))
    monkeypatch.setattr(data, "_online", raise_if_called)
    assert prepare_fashion_mnist() == root


# _online: the network probe, with the socket faked


def test_online_probe_reaches_torchvisions_mirror(monkeypatch):
    addresses = []

    class Connection:
        def close(self) -> None:
            pass

    def connect(address, timeout=None):
        addresses.append(address)
        return Connection()

    monkeypatch.setattr(socket, "create_connection", connect)
    assert data._online() is True
    assert addresses[0][0] == urlparse(datasets.FashionMNIST.mirrors[0]).hostname


def test_online_probe_offline(monkeypatch):
    def refuse(address, timeout=None):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert data._online() is False


def test_online_probe_does_not_wait_for_a_stuck_lookup(monkeypatch):
    release, finished = threading.Event(), threading.Event()

    def stuck(address, timeout=None):  # a DNS lookup that ignores the socket time-out
        release.wait(30)
        finished.set()
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(socket, "create_connection", stuck)
    try:
        assert data._online(timeout=0.05) is False
        assert not finished.is_set()  # it answered while the lookup was still hanging
    finally:
        release.set()


# prepare_fashion_mnist: (a) from Debian's files


def test_prepare_unpacks_debian_files(root, tmp_path, monkeypatch):
    arrays = tiny_fashion_mnist()
    debian = write_debian_source(tmp_path / "debian", arrays)
    monkeypatch.setattr(data, "_online", raise_if_called)

    assert prepare_fashion_mnist(root, debian_source=debian) == root

    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)
    assert [p.name for p in root.iterdir()] == ["FashionMNIST"]  # no temporary folder left
    assert_loads_as(root, arrays)


def test_prepare_accepts_string_paths(root, tmp_path):
    arrays = tiny_fashion_mnist()
    debian = write_debian_source(tmp_path / "debian", arrays)
    assert prepare_fashion_mnist(str(root), debian_source=str(debian)) == root
    assert_loads_as(root, arrays)


def test_prepare_creates_a_missing_root(tmp_path):
    arrays = tiny_fashion_mnist()
    debian = write_debian_source(tmp_path / "debian", arrays)
    root = tmp_path / "not" / "yet" / "there"
    assert prepare_fashion_mnist(root, debian_source=debian) == root
    assert_loads_as(root, arrays)


def test_prepare_downloads_when_online(root, no_debian, monkeypatch):
    arrays = tiny_fashion_mnist()
    calls = []

    def fake_download(tmp: Path) -> None:  # stands in for torchvision's download
        calls.append(tmp)
        write_raw_folder(tmp, arrays)

    monkeypatch.setattr(data, "_online", lambda: True)
    monkeypatch.setattr(data, "_download", fake_download)
    assert prepare_fashion_mnist(root, debian_source=no_debian) == root
    assert len(calls) == 1 and calls[0].parent == root  # filled next to its final place
    assert [p.name for p in root.iterdir()] == ["FashionMNIST"]
    assert_loads_as(root, arrays)


# prepare_fashion_mnist: (b) no data anywhere


def test_missing_data_fails_at_once_naming_both_fixes(root, no_debian, monkeypatch):
    probes = []
    monkeypatch.setattr(data, "_online", lambda *args, **kwargs: probes.append(args) or False)
    monkeypatch.setattr(data, "_download", raise_if_called)

    with pytest.raises(FileNotFoundError) as excinfo:
        prepare_fashion_mnist(root, debian_source=no_debian)

    message = str(excinfo.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    assert "network is unreachable" in message
    assert str(root / "FashionMNIST" / "raw") in message
    assert str(no_debian) in message
    assert len(probes) == 1
    assert list(root.iterdir()) == []  # no FashionMNIST folder, no temporary folder


def test_missing_data_with_download_off_does_not_probe_the_network(root, no_debian, monkeypatch):
    monkeypatch.setattr(data, "_online", raise_if_called)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as excinfo:
        prepare_fashion_mnist(root, download=False, debian_source=no_debian)
    assert "download=False" in str(excinfo.value)
    assert list(root.iterdir()) == []


def test_missing_data_leaves_a_missing_root_missing(tmp_path, no_debian, monkeypatch):
    monkeypatch.setattr(data, "_online", lambda *args, **kwargs: False)
    root = tmp_path / "never-made"
    with pytest.raises(FileNotFoundError):
        prepare_fashion_mnist(root, debian_source=no_debian)
    assert not root.exists()


def test_an_incomplete_debian_folder_is_not_used(root, tmp_path, monkeypatch):
    arrays = tiny_fashion_mnist()
    debian = write_debian_source(tmp_path / "debian", arrays)
    (debian / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(data, "_online", lambda *args, **kwargs: False)
    with pytest.raises(FileNotFoundError):
        prepare_fashion_mnist(root, debian_source=debian)
    assert list(root.iterdir()) == []


# prepare_fashion_mnist: (c) an interrupted fill leaves nothing behind


def _corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"this is not gzip data at all")


def _corrupt_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("corrupt", [_corrupt_garbage, _corrupt_truncated], ids=["garbage", "truncated"])
def test_a_corrupt_debian_file_leaves_nothing_half_written(corrupt, root, tmp_path, monkeypatch):
    debian = write_debian_source(tmp_path / "debian", tiny_fashion_mnist())
    corrupt(debian / "t10k-images-idx3-ubyte.gz")  # the third file: two are already unpacked
    monkeypatch.setattr(data, "_online", raise_if_called)
    with pytest.raises((OSError, EOFError)):
        prepare_fashion_mnist(root, debian_source=debian)
    assert list(root.iterdir()) == []


def test_an_interrupted_unpack_leaves_nothing_half_written(root, tmp_path, monkeypatch):
    debian = write_debian_source(tmp_path / "debian", tiny_fashion_mnist())
    real_unpack = data._unpack_debian

    def interrupted_unpack(source: Path):
        fill = real_unpack(source)

        def fill_then_interrupt(tmp: Path) -> None:
            fill(tmp)  # every file written in the temporary folder ...
            raise KeyboardInterrupt  # ... and then Ctrl-C before the move

        return fill_then_interrupt

    monkeypatch.setattr(data, "_unpack_debian", interrupted_unpack)
    with pytest.raises(KeyboardInterrupt):
        prepare_fashion_mnist(root, debian_source=debian)
    assert list(root.iterdir()) == []


def test_an_interrupted_download_leaves_nothing_half_written(root, no_debian, monkeypatch):
    arrays = tiny_fashion_mnist()

    def broken_download(tmp: Path) -> None:
        write_raw_folder(tmp, {name: arrays[name] for name in IDX_FILES[:2]})
        raise ConnectionResetError("connection lost half-way")

    monkeypatch.setattr(data, "_online", lambda *args, **kwargs: True)
    monkeypatch.setattr(data, "_download", broken_download)
    with pytest.raises(ConnectionResetError):
        prepare_fashion_mnist(root, debian_source=no_debian)
    assert list(root.iterdir()) == []


def test_a_fill_that_misses_files_is_refused(root, no_debian, monkeypatch):
    arrays = tiny_fashion_mnist()
    monkeypatch.setattr(data, "_online", lambda *args, **kwargs: True)
    monkeypatch.setattr(
        data, "_download", lambda tmp: write_raw_folder(tmp, {name: arrays[name] for name in IDX_FILES[:3]})
    )
    with pytest.raises(RuntimeError, match="did not produce the files"):
        prepare_fashion_mnist(root, debian_source=no_debian)
    assert list(root.iterdir()) == []


# prepare_fashion_mnist: (d) an existing copy


def test_an_existing_raw_folder_is_used_as_is(root, tmp_path, monkeypatch):
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        (raw / name).write_bytes(b"mine: " + name.encode())
    debian = write_debian_source(tmp_path / "debian", tiny_fashion_mnist())  # would be used otherwise
    monkeypatch.setattr(data, "_online", raise_if_called)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in raw.iterdir()}

    assert prepare_fashion_mnist(root, debian_source=debian) == root

    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in raw.iterdir()} == before
    assert [p.name for p in root.iterdir()] == ["FashionMNIST"]


def test_an_incomplete_raw_folder_is_replaced(root, tmp_path):
    arrays = tiny_fashion_mnist()
    raw = write_raw_folder(root, {name: arrays[name] for name in IDX_FILES[:2]})
    (raw / "stray-file").write_bytes(b"left over from an earlier attempt")
    debian = write_debian_source(tmp_path / "debian", arrays)

    prepare_fashion_mnist(root, debian_source=debian)

    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)
    assert_loads_as(root, arrays)


# fashion_mnist: argument checks (before any data is touched)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_size": 0}, "val_size"),
        ({"val_size": -5}, "val_size"),
        ({"val_size": 60_000}, "val_size"),
        ({"train_size": 0}, "train_size"),
        ({"train_size": 50_001}, "train_size must be between 1 and 50000"),
        ({"val_size": 59_999, "train_size": 2}, "train_size must be between 1 and 1"),
    ],
)
def test_fashion_mnist_rejects_sizes_that_do_not_fit(kwargs, match, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "prepare_fashion_mnist", raise_if_called)
    with pytest.raises(ValueError, match=match):
        fashion_mnist(tmp_path, **kwargs)


# the tensor cache


def loaded(root: Path) -> tuple[torch.Tensor, ...]:
    splits = fashion_mnist(root, val_size=5, download=False)
    return (*splits.train.tensors, *splits.val.tensors, *splits.test.tensors)


def test_later_loads_come_from_the_cache_without_torchvision(root, monkeypatch):
    arrays = tiny_fashion_mnist()
    write_raw_folder(root, arrays)
    first = loaded(root)
    assert sorted(p.name for p in (root / "FashionMNIST" / "tensors").iterdir()) == ["t10k.pt", "train.pt"]
    monkeypatch.setattr(data, "_fashion_mnist_class", raise_if_called)
    torch.testing.assert_close(loaded(root), first, rtol=0, atol=0)
    np.testing.assert_array_equal((first[-2][:, 0] * 255).round().byte().numpy(), arrays["t10k-images-idx3-ubyte"])


def test_changed_idx_files_rebuild_the_cache(root):
    write_raw_folder(root, tiny_fashion_mnist())
    loaded(root)
    other = {name: 255 - array if "images" in name else (array + 1) % 10
             for name, array in tiny_fashion_mnist().items()}
    raw = write_raw_folder(root, other)
    for path in raw.iterdir():  # same sizes; make sure the times differ too, however coarse the clock
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    test_images, test_labels = loaded(root)[-2:]
    np.testing.assert_array_equal((test_images[:, 0] * 255).round().byte().numpy(), other["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(test_labels.numpy(), other["t10k-labels-idx1-ubyte"])


def test_a_damaged_cache_is_rebuilt(root):
    write_raw_folder(root, tiny_fashion_mnist())
    first = loaded(root)
    for cache in (root / "FashionMNIST" / "tensors").iterdir():
        cache.write_bytes(b"not a tensor file")
    torch.testing.assert_close(loaded(root), first, rtol=0, atol=0)
    torch.testing.assert_close(loaded(root), first, rtol=0, atol=0)  # and the rebuilt cache loads


# fashion_mnist on the real data


REAL_ROOT = REPO / "data"
needs_real_data = pytest.mark.skipif(
    not all((REAL_ROOT / "FashionMNIST" / "raw" / name).is_file() for name in IDX_FILES),
    reason=f"Fashion-MNIST is not unpacked in {REAL_ROOT / 'FashionMNIST' / 'raw'}: "
    "run `make data` to test the real splits",
)


@pytest.fixture(scope="module")
def splits() -> DataSplits:
    """The real splits, loaded as a chapter loads them: ``fashion_mnist()`` and its default root."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("CNNCOURSE_DATA", raising=False)
        if default_data_root() != REAL_ROOT:
            pytest.skip("cnncourse is not installed from this clone (pip install -e .)")
        return fashion_mnist(download=False)


@pytest.fixture(scope="module")
def official() -> tuple[datasets.FashionMNIST, datasets.FashionMNIST]:
    return datasets.FashionMNIST(REAL_ROOT, train=True), datasets.FashionMNIST(REAL_ROOT, train=False)


def as_bytes(images: torch.Tensor) -> torch.Tensor:
    """Undo the division by 255: N x 1 x 28 x 28 floats back to N x 784 uint8."""
    return images.mul(255).round().to(torch.uint8).reshape(len(images), -1)


_KEY_WEIGHTS = torch.randint(0, 2**20, (784,), generator=torch.Generator().manual_seed(0)).double()


def image_keys(images: torch.Tensor) -> torch.Tensor:
    """One exact float64 key per 28 x 28 image (uint8, or floats k / 255), for multiset comparisons.

    The key is a weighted sum of the pixel bytes with random integer weights:
    every partial sum is an integer below 2**53, so it is exact in any order.
    """
    keys = []
    for chunk in images.split(5_000):  # chunks keep the float64 copy small
        rows = chunk.reshape(len(chunk), -1)
        rows = rows.mul(255).round_() if rows.is_floating_point() else rows
        keys.append(rows.double() @ _KEY_WEIGHTS)
    return torch.cat(keys)


@needs_real_data
def test_split_sizes_and_types(splits):
    assert [len(s) for s in (splits.train, splits.val, splits.test)] == [50_000, 10_000, 10_000]
    for split in (splits.train, splits.val, splits.test):
        X, y = split.tensors
        assert X.shape[1:] == (1, 28, 28) and X.dtype == torch.float32
        assert 0.0 <= X.min() and X.max() <= 1.0
        assert y.dtype == torch.int64 and set(y.unique().tolist()) <= set(range(10))


@needs_real_data
def test_classes_are_the_ten_fashion_mnist_names(splits):
    assert splits.classes == FASHION_MNIST_CLASSES
    assert len(splits.classes) == 10 and len(set(splits.classes)) == 10
    assert splits.classes[0] == "T-shirt/top" and splits.classes[9] == "Ankle boot"


@pytest.fixture(scope="module")
def keys(splits, official) -> dict[str, torch.Tensor]:
    """Image keys of the training and validation splits and of the official training set."""
    return {
        "train": image_keys(splits.train.tensors[0]),
        "val": image_keys(splits.val.tensors[0]),
        "official": image_keys(official[0].data),
    }


@needs_real_data
def test_train_and_val_partition_the_official_training_set(keys):
    # together they are exactly the 60 000 training images ...
    together = torch.cat([keys["train"], keys["val"]])
    torch.testing.assert_close(together.sort().values, keys["official"].sort().values)
    # ... and no image is in both (Fashion-MNIST's training images are all distinct)
    assert len(keys["official"].unique()) == 60_000
    assert not torch.isin(keys["val"], keys["train"]).any()


@needs_real_data
def test_labels_travel_with_their_images(splits, official, keys):
    label_of = dict(zip(keys["official"].tolist(), official[0].targets.tolist()))
    for split, name in ((splits.train, "train"), (splits.val, "val")):
        assert [label_of[k] for k in keys[name].tolist()] == split.tensors[1].tolist()


@needs_real_data
def test_test_split_is_the_official_test_set(splits, official):
    X_test, y_test = splits.test.tensors
    torch.testing.assert_close(as_bytes(X_test), official[1].data.reshape(10_000, -1))
    torch.testing.assert_close(y_test, official[1].targets)


@needs_real_data
def test_mean_and_std_come_from_the_training_split(splits):
    X_train = splits.train.tensors[0]
    assert splits.mean == pytest.approx(X_train.mean().item(), rel=1e-6)
    assert splits.std == pytest.approx(X_train.std().item(), rel=1e-6)
    X_all = torch.cat([X_train, splits.val.tensors[0]])
    assert splits.mean != pytest.approx(X_all.mean().item(), rel=1e-6)  # not the whole 60 000
    assert 0.27 < splits.mean < 0.30 and 0.34 < splits.std < 0.37  # Fashion-MNIST's known values


@needs_real_data
def test_the_split_is_seeded_and_train_size_keeps_a_prefix(splits):
    small = fashion_mnist(REAL_ROOT, seed=0, train_size=1_000, download=False)
    assert len(small.train) == 1_000 and len(small.val) == 10_000 and len(small.test) == 10_000
    for got, want in zip(small.val.tensors, splits.val.tensors):
        torch.testing.assert_close(got, want, rtol=0, atol=0)  # same seed, same validation set
    for got, want in zip(small.train.tensors, splits.train.tensors):
        torch.testing.assert_close(got, want[:1_000], rtol=0, atol=0)
    assert small.mean == pytest.approx(small.train.tensors[0].mean().item(), rel=1e-6)
    assert small.mean != pytest.approx(splits.mean, rel=1e-6)


@needs_real_data
def test_another_seed_gives_another_split(keys):
    other = fashion_mnist(REAL_ROOT, seed=1, val_size=5_000, train_size=1_000, download=False)
    assert len(other.val) == 5_000 and len(other.train) == 1_000
    other_val_keys = image_keys(other.val.tensors[0])
    overlap = torch.isin(other_val_keys, keys["val"]).float().mean().item()
    assert 0.1 < overlap < 0.25  # a fresh random sixth of the data overlaps a sixth, not all


# tensor_loader


@pytest.fixture
def numbered() -> TensorDataset:
    """Ten examples whose inputs and targets are their own index."""
    return TensorDataset(torch.arange(10.0).view(10, 1), torch.arange(10))


def epoch_order(loader) -> list[int]:
    return torch.cat([y for _, y in loader]).tolist()


@pytest.mark.parametrize(
    ("batch_size", "drop_last", "sizes"),
    [(4, False, [4, 4, 2]), (4, True, [4, 4]), (5, True, [5, 5]), (10, False, [10]), (32, False, [10])],
)
def test_tensor_loader_batch_sizes(numbered, batch_size, drop_last, sizes):
    loader = tensor_loader(numbered, batch_size, drop_last=drop_last)
    assert [len(y) for _, y in loader] == sizes


def test_tensor_loader_yields_whole_batches_in_order(numbered):
    batches = list(tensor_loader(numbered, 4))
    torch.testing.assert_close(batches[0][0], torch.tensor([[0.0], [1.0], [2.0], [3.0]]))
    torch.testing.assert_close(batches[2][1], torch.tensor([8, 9]))
    assert epoch_order(tensor_loader(numbered, 4)) == list(range(10))


@pytest.mark.parametrize("batch_size", [0, -1])
def test_tensor_loader_rejects_empty_batches(numbered, batch_size):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        tensor_loader(numbered, batch_size)


def test_tensor_loader_shuffle_is_seeded_and_changes_between_epochs(numbered):
    loader = tensor_loader(numbered, 3, shuffle=True, seed=123)
    first, second = epoch_order(loader), epoch_order(loader)
    assert sorted(first) == sorted(second) == list(range(10))  # each epoch is a permutation
    assert first != second
    assert first != list(range(10))
    again = tensor_loader(numbered, 3, shuffle=True, seed=123)
    assert [epoch_order(again), epoch_order(again)] == [first, second]
    assert epoch_order(tensor_loader(numbered, 3, shuffle=True, seed=124)) != first


def test_tensor_loader_batches_keep_inputs_and_targets_together(numbered):
    for x, y in tensor_loader(numbered, 3, shuffle=True, seed=0):
        torch.testing.assert_close(x.view(-1), y.float())


def test_tensor_loader_keeps_tensors_where_they_are_without_a_device(numbered):
    loader = tensor_loader(numbered, 4, device=None)
    assert loader.dataset.tensors[0] is numbered.tensors[0]
    x, y = next(iter(loader))
    assert x.device == y.device == torch.device("cpu")


def test_tensor_loader_moves_tensors_to_a_device(numbered):
    loader = tensor_loader(numbered, 4, device="cpu")
    assert epoch_order(loader) == list(range(10))
    assert loader.dataset.tensors[0].device == torch.device("cpu")


def test_loaders_shuffle_only_the_training_split():
    def numbered_split(n: int, offset: int) -> TensorDataset:
        return TensorDataset(torch.zeros(n, 1, 2, 2), torch.arange(offset, offset + n))

    splits = DataSplits(
        train=numbered_split(20, 0), val=numbered_split(7, 100), test=numbered_split(5, 200),
        classes=("a", "b"), mean=0.0, std=1.0,
    )
    train, val, test = splits.loaders(4, eval_batch_size=3, seed=5)

    first, second = epoch_order(train), epoch_order(train)
    assert sorted(first) == list(range(20)) and first != list(range(20)) and first != second
    assert epoch_order(splits.loaders(4, seed=5)[0]) == first  # the seed fixes the order
    assert [len(y) for _, y in train] == [4] * 5

    assert [len(y) for _, y in val] == [3, 3, 1]
    assert epoch_order(val) == epoch_order(val) == list(range(100, 107))
    assert [len(y) for _, y in test] == [3, 2]
    assert epoch_order(test) == epoch_order(test) == list(range(200, 205))


# sample_image


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_sample_image_is_a_float_image_in_the_unit_range(name):
    image = sample_image(name)
    assert image.ndim == 3 and image.shape[0] in (1, 3)
    assert image.dtype == torch.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() > 0.5  # scaled once by 255, not twice
    assert image.is_contiguous()


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_sample_image_in_gray_has_one_luminance_channel(name):
    colour, gray = sample_image(name), sample_image(name, gray=True)
    assert gray.shape == (1, *colour.shape[1:])
    assert gray.dtype == torch.float32 and gray.min() >= 0.0 and gray.max() <= 1.0
    if colour.shape[0] == 3:  # ITU-R 709 luminance, as skimage.color.rgb2gray computes it
        luminance = torch.tensor([0.2125, 0.7154, 0.0721]) @ colour.flatten(1)
        torch.testing.assert_close(gray.flatten(), luminance, rtol=0, atol=1e-5)
    else:
        torch.testing.assert_close(gray, colour)


def test_sample_image_shapes():
    assert sample_image("camera").shape == (1, 512, 512)
    assert sample_image("astronaut").shape == (3, 512, 512)


def test_sample_image_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown sample image 'lena'") as excinfo:
        sample_image("lena")
    assert all(name in str(excinfo.value) for name in SAMPLE_IMAGES)


def test_can_reach_uses_the_url_port_and_rejects_bare_hosts(monkeypatch):
    addresses = []

    class Connection:
        def close(self) -> None:
            pass

    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: addresses.append(address) or Connection())
    assert data.can_reach("https://download.pytorch.org/models/") is True
    assert data.can_reach("http://example.org:8080/x") is True
    assert addresses == [("download.pytorch.org", 443), ("example.org", 8080)]
    with pytest.raises(ValueError, match="full URL"):
        data.can_reach("download.pytorch.org")
