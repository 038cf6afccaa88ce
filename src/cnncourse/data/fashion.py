"""Fashion-MNIST, offline first: finding it, loading it as tensors, splitting it.

:func:`fashion_mnist` finds the data in this order:

1. ``<root>/FashionMNIST/raw`` already holds the four unpacked IDX files;
2. Debian's package ``dataset-fashion-mnist`` is installed: its gzip'd files
   are unpacked into the root (no network needed);
3. the network is reachable: torchvision downloads them (Colab, laptops).

Otherwise it fails at once with a message naming both fixes. Files are
written to a temporary folder first and moved into place whole, so an
interrupted fetch never leaves half a data set behind.

The splits are held as tensors (the whole data set is 55 MB as bytes), and
:func:`~cnncourse.data.loaders.tensor_loader` batches them by index: on a CPU
that is several times faster than collating one PIL image at a time, and on a
GPU the tensors can live in device memory for the whole run.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
from torch.utils.data import DataLoader, TensorDataset

from .loaders import tensor_loader

if TYPE_CHECKING:
    from torchvision.datasets import FashionMNIST

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DEBIAN_FASHION_MNIST",
    "DataSplits",
    "can_reach",
    "default_data_root",
    "fashion_mnist",
    "prepare_fashion_mnist",
]

log = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Where Debian's ``dataset-fashion-mnist`` package installs its gzip'd IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def default_data_root() -> Path:
    """Return the data folder: ``$CNNCOURSE_DATA``, else the repository's ``data/``.

    In a clone installed with ``pip install -e .`` that is ``<repo>/data``,
    whatever the working directory; for an ordinary install (Colab) it is
    ``./data``.
    """
    if env := os.environ.get("CNNCOURSE_DATA"):
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[3]
    if (repo / "pyproject.toml").is_file() and (repo / "src" / "cnncourse").is_dir():
        return repo / "data"
    return Path.cwd() / "data"


def _fashion_mnist_class() -> type[FashionMNIST]:
    # imported on first use: torchvision takes seconds to import, most chapters need only the tensors
    from torchvision.datasets import FashionMNIST

    return FashionMNIST


def _raw_folder(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


def _have_raw(root: Path) -> bool:
    return all((_raw_folder(root) / name).is_file() for name in _IDX_FILES)


def can_reach(url: str, timeout: float = 3.0) -> bool:
    """Can we open a connection to ``url``'s host within ``timeout`` seconds?

    Chapters use it to skip, with a message, the cells that need the network
    (downloading pretrained weights, for instance). The probe runs in a thread
    because a stuck DNS lookup ignores socket time-outs; offline, the answer
    must come at once, not after minutes.
    """
    parsed = urlparse(url)
    if not parsed.hostname:
        raise ValueError(f"can_reach needs a full URL such as 'https://download.pytorch.org', got {url!r}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    reached = threading.Event()

    def probe() -> None:
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            reached.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)  # returns as soon as the probe fails or succeeds
    return reached.is_set()


def _online(timeout: float = 3.0) -> bool:
    """Can we reach torchvision's Fashion-MNIST mirror within ``timeout`` seconds?"""
    return can_reach(_fashion_mnist_class().mirrors[0], timeout)


def _install(root: Path, fill) -> None:
    """Build ``root/FashionMNIST`` in a temporary folder with ``fill``, then move it in."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fashion-mnist-") as tmp:
        fill(Path(tmp))
        if not _have_raw(Path(tmp)):
            raise RuntimeError(f"filling {tmp} did not produce the files {_IDX_FILES}")
        target = root / "FashionMNIST"
        if target.exists():  # an incomplete earlier copy, made by hand
            shutil.rmtree(target)
        (Path(tmp) / "FashionMNIST").rename(target)


def _unpack_debian(source: Path):
    def fill(tmp: Path) -> None:
        raw = _raw_folder(tmp)
        raw.mkdir(parents=True)
        for name in _IDX_FILES:
            with gzip.open(source / f"{name}.gz", "rb") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)

    return fill


def _download(tmp: Path) -> None:
    for train in (True, False):
        _fashion_mnist_class()(tmp, train=train, download=True)


def prepare_fashion_mnist(
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    debian_source: str | os.PathLike = DEBIAN_FASHION_MNIST,
) -> Path:
    """Make sure ``<root>/FashionMNIST/raw`` holds the data set; return the root.

    Args:
        root: Data folder; :func:`default_data_root` by default.
        download: Allow torchvision to download when no local copy exists.
        debian_source: Folder of Debian's gzip'd IDX files.

    Raises:
        FileNotFoundError: No copy is present, Debian's package is not
            installed, and the network is unreachable (or ``download=False``).
    """
    root = Path(root).expanduser() if root is not None else default_data_root()
    if _have_raw(root):
        return root
    debian_source = Path(debian_source)
    if all((debian_source / f"{name}.gz").is_file() for name in _IDX_FILES):
        log.info("Unpacking Fashion-MNIST from %s into %s", debian_source, root)
        _install(root, _unpack_debian(debian_source))
    elif download and _online():
        log.info("Downloading Fashion-MNIST into %s", root)
        _install(root, _download)
    else:
        why = "downloading is off (download=False)" if not download else "the network is unreachable"
        raise FileNotFoundError(
            f"Fashion-MNIST is not in {_raw_folder(root)}, Debian's files are not in "
            f"{debian_source}, and {why}. Fix it either way:\n"
            "  * offline, on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist\n"
            "  * online: call fashion_mnist(download=True) (or run `make data`) with a "
            "network connection;\n"
            f"or point CNNCOURSE_DATA (or root=) at a folder whose FashionMNIST/raw holds "
            f"{', '.join(_IDX_FILES)}."
        )
    return root


def _load_split(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as ``N x 1 x 28 x 28`` floats in [0, 1] and its labels."""
    images, labels = _load_bytes(root, train)
    return images.unsqueeze(1).float().div_(255), labels


def _load_bytes(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as the ``N x 28 x 28`` uint8 images of the IDX files and their labels.

    torchvision parses the IDX files, but importing it takes seconds, longer than
    the parsing. So the uint8 tensors it returns are cached beside the IDX files
    (``FashionMNIST/tensors/``) with the files' sizes and modification times, and
    later calls load the cache unless those changed. A damaged cache is rebuilt;
    a read-only data folder just goes without one.
    """
    split = "train" if train else "t10k"
    raw = [_raw_folder(root) / name for name in _IDX_FILES if name.startswith(f"{split}-")]
    source = [[stat.st_size, stat.st_mtime_ns] for stat in (path.stat() for path in raw)]
    cache = root / "FashionMNIST" / "tensors" / f"{split}.pt"
    try:
        saved = torch.load(cache, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):  # none yet, or damaged
        saved = None
    if not isinstance(saved, dict) or saved.get("source") != source:
        dataset = _fashion_mnist_class()(root, train=train, download=False)
        saved = {"images": dataset.data, "labels": dataset.targets, "source": source}
        partial = cache.with_name(f"{split}.{os.getpid()}.partial")
        try:
            cache.parent.mkdir(exist_ok=True)
            torch.save(saved, partial)
            partial.replace(cache)
        except OSError as error:  # a read-only or full disk: go without the cache
            partial.unlink(missing_ok=True)
            log.debug("Fashion-MNIST tensors not cached in %s: %s", cache.parent, error)
    return saved["images"], saved["labels"].clone()


def _train_val_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeded split of ``n`` training images: ``(train, validation)`` indices.

    One place, so that the canvases (:mod:`cnncourse.data.canvas`) leave out
    exactly the validation images that :func:`fashion_mnist` holds out.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


@dataclass(frozen=True)
class DataSplits:
    """Train, validation and test splits of an image classification data set.

    Inputs are ``float32`` tensors in ``[0, 1]`` of shape ``N x C x H x W``;
    ``mean`` and ``std`` come from the training split alone and are what a
    standardisation layer at the front of a model needs
    (:class:`~cnncourse.models.Standardize`, or torchvision's ``v2.Normalize``).
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    classes: tuple[str, ...]
    mean: float
    std: float

    def loaders(
        self,
        batch_size: int = 128,
        *,
        eval_batch_size: int = 1024,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> tuple[DataLoader, DataLoader, DataLoader]:
        """Return ``(train, val, test)`` loaders; only the training one shuffles.

        With ``device`` a CUDA or MPS device, the tensors move into its
        memory once (Fashion-MNIST needs about 220 MB as floats).
        """
        device = torch.device(device) if device is not None else None
        keep_on = device if device is not None and device.type != "cpu" else None
        train = tensor_loader(self.train, batch_size, shuffle=True, seed=seed, device=keep_on)
        val, test = (tensor_loader(s, eval_batch_size, device=keep_on) for s in (self.val, self.test))
        return train, val, test


def fashion_mnist(
    root: str | os.PathLike | None = None,
    *,
    val_size: int = 10_000,
    seed: int = 0,
    train_size: int | None = None,
    download: bool = True,
) -> DataSplits:
    """Load Fashion-MNIST as seeded train/validation splits and the official test set.

    The validation set is a seeded random part of the 60 000 training
    images; the 10 000 test images are kept for the final report and never
    used to choose a model.

    Args:
        root: Data folder (default :func:`default_data_root`).
        val_size: Training images held out for validation.
        seed: Seed of the train/validation split.
        train_size: Keep only this many training images (after the split),
            for the small-data experiments; ``None`` keeps all.
        download: Allow a download when no local copy exists.

    Returns:
        A :class:`DataSplits` with 28 x 28 grayscale images and integer labels.

    Raises:
        FileNotFoundError: The data are nowhere to be had; the message says
            how to get them.
        ValueError: ``val_size`` or ``train_size`` do not fit in 60 000.

    Example:
        >>> data = fashion_mnist()  # doctest: +SKIP
        >>> train_loader, val_loader, test_loader = data.loaders(batch_size=128)  # doctest: +SKIP
    """
    if not 0 < val_size < 60_000:
        raise ValueError(f"val_size must be between 1 and 59 999, got {val_size}")
    if train_size is not None and not 0 < train_size <= 60_000 - val_size:
        raise ValueError(f"train_size must be between 1 and {60_000 - val_size}, got {train_size}")
    root = prepare_fashion_mnist(root, download=download)
    X_full, y_full = _load_split(root, train=True)
    X_test, y_test = _load_split(root, train=False)

    train_idx, val_idx = _train_val_indices(len(X_full), val_size, seed)
    if train_size is not None:
        train_idx = train_idx[:train_size]
    X_train = X_full[train_idx]
    return DataSplits(
        train=TensorDataset(X_train, y_full[train_idx]),
        val=TensorDataset(X_full[val_idx], y_full[val_idx]),
        test=TensorDataset(X_test, y_test),
        classes=FASHION_MNIST_CLASSES,
        mean=X_train.mean().item(),
        std=X_train.std().item(),
    )


def main() -> None:
    """``python -m cnncourse.data``: fetch Fashion-MNIST and say where it is."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = prepare_fashion_mnist()
    log.info("Fashion-MNIST is ready in %s", _raw_folder(root))

