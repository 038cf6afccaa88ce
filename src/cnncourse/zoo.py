"""The model zoo: the compact architectures, trained on Fashion-MNIST by recorded recipes.

Each entry is a :class:`Recipe` (which model, which task and data, how long,
which optimizer settings) and, once trained, two files under ``data/zoo/``:

* ``NAME.pt``, the weights (a ``state_dict``; in half precision where the
  recipe says so, to keep the repository small);
* ``NAME.json``, the metadata: the recipe, the training history of every
  epoch, the test scores of the *stored* weights, the parameter and
  multiply-accumulate counts, where and how long it trained, and the commit.

A recipe's ``task`` says what it learns and on which data, and the same
:func:`train`, :func:`save`, :func:`verify` and :func:`obtain` serve every
task:

* ``"classification"``: Fashion-MNIST's images and labels; the score is the
  test accuracy on the 10 000 test images;
* ``"segmentation"``: canvases of Fashion-MNIST items
  (:func:`~cnncourse.data.fashion_canvas`, options in ``data_kwargs``) and
  their class maps; the score is the mean IoU over the 11 classes on
  :data:`SEGMENTATION_TEST_SIZE` test canvases, recorded with the pixel
  accuracy and the IoU of each class;
* ``"detection"``: the same canvases and the boxes of their items; the
  model's training-mode output goes into its own ``loss_fn()``, the
  validation mAP is computed by :class:`~cnncourse.detection.DetectionValidation`,
  and the score is the mAP at IoU 0.5 on :data:`DETECTION_TEST_SIZE` test
  canvases, recorded with COCO's mAP over IoU 0.5:0.95 and the AP of each class.

``SHA256SUMS`` in the same folder lists both files' checksums (it is the
format ``sha256sum -c`` reads); loading checks them, so a corrupted or
hand-edited file fails loudly instead of teaching wrong numbers.

Every file is made by one command, ``python -m cnncourse.zoo train NAME``, and
``python -m cnncourse.zoo verify`` (and ``tests/test_zoo.py``) re-evaluates
every checkpoint on the test set and compares with the recorded accuracy.
A folder that lacks an entry's files (an ordinary ``pip install`` has no
``data/``) downloads them from the repository (:data:`ZOO_URL`) on first use,
checked against its ``SHA256SUMS``.

The chapters call :func:`obtain`: train by the recipe on a GPU, load the
checkpoint and its recorded history elsewhere.

``torchrun --nproc_per_node N -m cnncourse.zoo train NAME`` trains on N
processes (N GPUs, or N CPU processes with gloo) with DistributedDataParallel.
A recipe's ``batch_size`` is the *global* batch: each process takes
``batch_size / N`` examples per step, the ranks' gradients are averaged, and
every step is the one a single process takes with the whole batch, so the
learning rate stays the recipe's. To train with a larger global batch
instead, scale the learning rate with it (the linear scaling rule of Goyal
et al., 2017, behind the recipes' warm-up). Only rank 0 saves.

Example:
    >>> from cnncourse import zoo
    >>> zoo.recipe("resnet20").model
    'resnet20'
    >>> model = zoo.load_pretrained("resnet20")  # doctest: +SKIP
    >>> zoo.load_info("resnet20").test_accuracy  # doctest: +SKIP
    >>> got = zoo.obtain("resnet20")  # doctest: +SKIP
    >>> got.model, got.history, got.test_accuracy  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from .data import DataSplits, can_reach, canvas_splits, default_data_root, fashion_canvas, fashion_mnist, tensor_loader
from .device import describe_device, get_device
from .models import create_model
from .notebook import Table
from .seed import seed_everything
from .summary_table import summary
from .training import History, evaluate, fit, segmentation_scores
from .training.callbacks import Callback

__all__ = [
    "Obtained",
    "Recipe",
    "TASKS",
    "ZooInfo",
    "available",
    "build",
    "load_info",
    "load_pretrained",
    "names",
    "obtain",
    "recipe",
    "save",
    "train",
    "verify",
    "zoo_dir",
]

#: Fashion-MNIST's input shape, batch included, for the parameter and MAC counts.
INPUT_SIZE = (1, 1, 28, 28)
#: What a recipe can learn: classify Fashion-MNIST, segment canvases of its items, or detect them.
TASKS = ("classification", "segmentation", "detection")
#: Canvases a segmenter is validated on during training and scored on at the end (the same test
#: canvases, seed 0, for every segmentation entry).
SEGMENTATION_VAL_SIZE = 1_000
SEGMENTATION_TEST_SIZE = 1_000
#: Canvases a detector is validated on (every epoch) and scored on at the end (seed 0: the first of the
#: segmenters' test canvases).
DETECTION_VAL_SIZE = 500
DETECTION_TEST_SIZE = 500
#: The score (accuracy, mean IoU) a re-evaluated checkpoint may differ from its record by (a few of
#: 10 000 test images: float32 sums in another order, on another CPU).
TOLERANCE = 5e-4
CHECKSUMS = "SHA256SUMS"
#: Where a folder without an entry's files downloads them from (``$CNNCOURSE_ZOO_URL`` overrides it):
#: the repository's data/zoo, which an ordinary ``pip install`` (Colab) does not carry.
ZOO_URL = "https://raw.githubusercontent.com/cnncourse/cnncourse/main/data/zoo/"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """How one zoo entry is trained: a one-cycle schedule over SGD (Nesterov) or AdamW.

    Attributes:
        model: Registry name of the architecture (see :func:`~cnncourse.list_models`).
        model_kwargs: Extra arguments for the builder (e.g. ``widths``).
        task: One of :data:`TASKS`: ``"classification"`` (Fashion-MNIST),
            ``"segmentation"`` or ``"detection"`` (canvases of its items).
        data_kwargs: Options of the task's data: for the canvases those of
            :func:`~cnncourse.data.fashion_canvas` (``size``, ``max_items``, ...).
        epochs: Passes over the training images.
        batch_size: Examples per step, over all processes together (under
            ``torchrun`` each of N processes takes ``batch_size / N``).
        optimizer: ``"sgd"`` (with Nesterov momentum) or ``"adamw"`` (for the
            networks without batch normalization that SGD cannot get moving
            from their default initialization, such as the small AlexNet).
        lr: Peak learning rate of the one-cycle schedule (warm-up for the first
            quarter of the steps, cosine decay to almost zero after it).
        momentum: Nesterov momentum of SGD (unused by AdamW).
        weight_decay: SGD's L2 penalty, or AdamW's decoupled weight decay.
        label_smoothing: Of the cross-entropy loss.
        augment: Shift each image up to 2 pixels and mirror half of them
            (:func:`~cnncourse.augment.shift_and_flip`), freshly every epoch;
            for segmentation, draw new training canvases every epoch (the
            same training items in new scenes).
        erasing: Probability of erasing a random rectangle of each image
            after that (:func:`~cnncourse.augment.random_erasing`; 0: never).
        train_size: Training images used (``None``: all 50 000 left after the
            10 000-image validation split); for segmentation, the number of
            training canvases.
        half: Store the weights in float16 (for the larger models).
        seed: Seeds the weights, the shuffling and the augmentation.
        note: One line on why the entry exists.
        needs_gpu: Designed for a GPU: training all entries on a CPU skips it,
            and the repository may ship it untrained (no files).
    """

    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    data_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool = True
    erasing: float = 0.0
    train_size: int | None = None
    half: bool = False
    seed: int = 0
    note: str = ""
    needs_gpu: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_NARROW = {"widths": (8, 16, 32)}
_DEGRADATION = dict(epochs=5, train_size=15_000, augment=False, weight_decay=1e-4)
_CANVAS = dict(epochs=10, train_size=20_000, batch_size=32, optimizer="adamw", lr=3e-3, weight_decay=1e-4,
               half=True)  # augment: new training canvases every epoch

_DETECTOR = dict(epochs=10, train_size=20_000, batch_size=32, optimizer="adamw", lr=3e-3, weight_decay=1e-4,
                 augment=False, half=True)

RECIPES: dict[str, Recipe] = {
    "lenet5": Recipe("lenet5", epochs=15, lr=0.05, augment=False, weight_decay=1e-4,
                     note="LeNet-5 as published: tanh, average pooling, 61 706 parameters"),
    "alexnet_small": Recipe("alexnet_small", epochs=20, optimizer="adamw", lr=2e-3, weight_decay=0.01,
                            note="AlexNet's ideas (ReLU, max pooling, dropout) at 28 x 28"),
    "vgg_small": Recipe("vgg_small", {"batch_norm": True}, epochs=20, lr=0.05,
                        note="VGG blocks of 3 x 3 convolutions, with batch normalization"),
    "googlenet_small": Recipe("googlenet_small", epochs=20, note="Inception modules at 28 x 28"),
    "resnet20": Recipe("resnet20", epochs=30, note="the CIFAR ResNet-20 of He et al. (2016)"),
    "se_resnet20": Recipe("se_resnet20", epochs=30, note="ResNet-20 with squeeze-and-excitation, r = 16"),
    # chapter 14's degradation experiment: training error of plain and residual nets at 20 and 56 layers
    "plain20_narrow": Recipe("plain20", _NARROW, **_DEGRADATION, note="degradation experiment, plain"),
    "plain56_narrow": Recipe("plain56", _NARROW, **_DEGRADATION, note="degradation experiment, plain"),
    "resnet20_narrow": Recipe("resnet20", _NARROW, **_DEGRADATION, note="degradation experiment, residual"),
    "resnet56_narrow": Recipe("resnet56", _NARROW, **_DEGRADATION, note="degradation experiment, residual"),
    # the book's accuracy goal (>= 0.950 test accuracy), for a GPU: python benchmarks/gpu_check.py trains it
    "resnet20_wide": Recipe("resnet20", {"widths": (64, 128, 256)}, epochs=40, batch_size=256, lr=0.2,
                            label_smoothing=0.1, erasing=0.5, half=True, needs_gpu=True,
                            note="ResNet-20 at four times the width, random erasing, label smoothing: >= 0.950 "
                                 "on a GPU"),
    # chapter 19: object detection on the same canvases (mAP at IoU 0.5 >= 0.80 on 500 test canvases)
    "detector_canvas": Recipe("centernet", task="detection", **_DETECTOR,
                              note="CenterNet (objects as points): a U-Net encoder cut at stride 4, three heads"),
    # chapter 18: semantic segmentation of canvases, both networks on the same data and budget
    "fcn_canvas": Recipe("fcn", task="segmentation", **_CANVAS, note="FCN: a VGG-style classifier made fully "
                         "convolutional, its 1/16 score map upsampled bilinearly"),
    "unet_canvas": Recipe("unet", task="segmentation", **_CANVAS, note="U-Net: the FCN's widths, plus a decoder "
                          "with skip connections"),
}


@dataclass(frozen=True)
class ZooInfo:
    """What ``NAME.json`` records about a trained entry.

    Attributes:
        name: The entry.
        recipe: The :class:`Recipe` it was trained with (``epochs`` as run).
        history: Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
            ``lr`` and ``time`` (seconds, validation included); segmenters
            record ``pixel_accuracy`` and ``mean_iou`` (of each batch,
            averaged; exact on the validation canvases, one batch); detectors
            ``val_map_50`` and ``val_map`` (their ``time`` leaves the
            validation out).
        test_accuracy: Of the stored weights on the 10 000 test images (for a
            segmenter: the pixel accuracy on the test canvases; for a
            detector: its mAP at IoU 0.5).
        test_loss: Mean cross-entropy on them (a detector's own loss).
        params: Number of parameters.
        macs: Multiply-accumulates of one input (a 28 x 28 image, a canvas).
        device: Where it trained, in words.
        train_seconds: Wall time of the whole training.
        seconds_per_epoch: Mean epoch time (validation included).
        commit: The git commit of the code that trained it.
        sha256: Checksum of ``NAME.pt``.
        created: When it was saved (UTC, ISO 8601).
        torch_version: The torch that trained it.
        test_metrics: The task's test scores: ``accuracy``; for a segmenter
            ``mean_iou``, ``pixel_accuracy``, ``loss`` and ``iou``, the IoU of
            each class (background first); for a detector ``map_50``,
            ``map`` (COCO's, IoU 0.5:0.95), ``map_75``, ``ap_50`` and ``ap``
            (each class's AP at IoU 0.5 and over 0.5:0.95), and ``loss``.
    """

    name: str
    recipe: Recipe
    history: History
    test_accuracy: float
    test_loss: float
    params: int
    macs: int
    device: str
    train_seconds: float
    seconds_per_epoch: float
    commit: str
    sha256: str
    created: str
    torch_version: str
    test_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """The task's headline score: test accuracy, a segmenter's mean IoU, a detector's mAP at IoU 0.5."""
        return _score(self.recipe.task, self.test_accuracy, self.test_metrics)


#: The key of each task's headline score in ``test_metrics``, and its name in tables and messages.
SCORE_KEYS = {"classification": "accuracy", "segmentation": "mean_iou", "detection": "map_50"}
SCORE_NAMES = {"classification": "accuracy", "segmentation": "mean IoU", "detection": "mAP@0.5"}


def _score(task: str, accuracy: float, metrics: dict[str, Any]) -> float:
    return accuracy if task == "classification" else metrics[SCORE_KEYS[task]]


def names(task: str | None = None) -> list[str]:
    """Every zoo entry, in the book's order (trained or not); only those of ``task`` if given."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    return [n for n, r in RECIPES.items() if task is None or r.task == task]


def recipe(name: str) -> Recipe:
    """Return the :class:`Recipe` of entry ``name``."""
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"no zoo entry {name!r}; the entries are: {', '.join(RECIPES)}") from None


def build(name: str) -> nn.Module:
    """An untrained model of entry ``name``, as its recipe builds it."""
    r = recipe(name)
    return create_model(r.model, **r.model_kwargs)


def input_size(name: str) -> tuple[int, int, int, int]:
    """The shape of a batch of one input of entry ``name``: a Fashion-MNIST image or a canvas."""
    r = recipe(name)
    if r.task in ("segmentation", "detection"):
        size = r.data_kwargs.get("size", 64)
        return (1, 1, size, size)
    return INPUT_SIZE


def _data(r: Recipe, *, train_size: int | None = None, val_size: int | None = None) -> DataSplits:
    """The splits a recipe trains on: Fashion-MNIST, or canvases (the same test canvases for every segmenter)."""
    if r.task not in TASKS:
        raise ValueError(f"unknown task {r.task!r} in the recipe of {r.model}: use one of {TASKS}")
    if r.task == "segmentation":
        return canvas_splits(train_size=train_size or r.train_size or 10_000,
                             val_size=val_size or SEGMENTATION_VAL_SIZE, test_size=SEGMENTATION_TEST_SIZE,
                             **r.data_kwargs)
    if r.task == "detection":
        return canvas_splits(train_size=train_size or r.train_size or 10_000, val_size=val_size or DETECTION_VAL_SIZE,
                             test_size=DETECTION_TEST_SIZE, targets="boxes", **r.data_kwargs)
    return fashion_mnist(val_size=val_size or 10_000, train_size=train_size or r.train_size)


@functools.lru_cache(maxsize=4)
def _canvas_test(options: str, task: str = "segmentation") -> torch.utils.data.TensorDataset:
    if task == "detection":
        return fashion_canvas("test", n=DETECTION_TEST_SIZE, **json.loads(options)).detection_dataset()
    return fashion_canvas("test", n=SEGMENTATION_TEST_SIZE, **json.loads(options)).semantic_dataset()


def _test_set(r: Recipe, data: DataSplits | None = None) -> torch.utils.data.TensorDataset:
    """The test set of a recipe's task: ``data.test`` if given, else Fashion-MNIST's or the canvases'."""
    if data is not None:
        return data.test
    if r.task in ("segmentation", "detection"):
        return _canvas_test(json.dumps(r.data_kwargs, sort_keys=True), r.task)
    return fashion_mnist().test


def zoo_dir() -> Path:
    """Where the checkpoints live: ``$CNNCOURSE_ZOO``, else ``zoo/`` in :func:`~cnncourse.data.default_data_root`.

    In a clone that is the repository's ``data/zoo``, which holds every trained
    entry; elsewhere (a ``pip install`` on Colab) entries are downloaded into
    it from :data:`ZOO_URL` when first loaded.
    """
    if env := os.environ.get("CNNCOURSE_ZOO"):
        return Path(env).expanduser()
    return default_data_root() / "zoo"


def available(directory: str | os.PathLike | None = None, *, task: str | None = None) -> list[str]:
    """The entries with a checkpoint and metadata in ``directory`` (default :func:`zoo_dir`), of ``task`` if given."""
    folder = Path(directory) if directory is not None else zoo_dir()
    return [n for n in names(task) if (folder / f"{n}.pt").is_file() and (folder / f"{n}.json").is_file()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_checksums(text: str) -> dict[str, str]:
    """``{file: sha256}`` from the lines ``sha256sum`` writes."""
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {file.strip().lstrip("*"): digest for digest, file in pairs}


def _read_checksums(folder: Path) -> dict[str, str]:
    path = folder / CHECKSUMS
    return _parse_checksums(path.read_text()) if path.is_file() else {}


def _write_checksums(folder: Path, sums: dict[str, str]) -> None:
    text = "".join(f"{sums[file]}  {file}\n" for file in sorted(sums))
    (folder / CHECKSUMS).write_text(text)


def _download(folder: Path, file: str) -> str | None:
    """Fetch ``file`` from the zoo's URL into ``folder``, checked against the URL's ``SHA256SUMS``.

    Returns ``None`` when done, else why it could not be (offline, not there,
    damaged); the file appears whole or not at all, and its sum joins
    ``folder``'s list.
    """
    url = os.environ.get("CNNCOURSE_ZOO_URL", ZOO_URL).rstrip("/") + "/"
    if url.startswith(("http://", "https://")) and not can_reach(url):
        return f"{url} cannot be reached"
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{file}.part"
    try:
        with urllib.request.urlopen(url + CHECKSUMS, timeout=60) as response:
            sums = _parse_checksums(response.read().decode())
        if file not in sums:
            return f"{url} has no {file}"
        with urllib.request.urlopen(url + file, timeout=60) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out)
        if (actual := _sha256(part)) != sums[file]:
            return f"the download of {url}{file} is damaged: sha256 {actual[:12]}... instead of {sums[file][:12]}..."
        os.replace(part, folder / file)
    except OSError as error:  # URLError, HTTPError and time-outs are OSErrors
        return f"downloading {url}{file} failed ({error})"
    finally:
        part.unlink(missing_ok=True)
    _write_checksums(folder, _read_checksums(folder) | {file: sums[file]})
    log.info("downloaded %s from %s into %s", file, url, folder)
    return None


def _checked(folder: Path, file: str) -> Path:
    """Return ``folder/file`` (downloaded first if missing) after checking it matches ``SHA256SUMS``."""
    path = folder / file
    name = file.rsplit(".", 1)[0]
    if not path.is_file() and (why := _download(folder, file)) is not None:
        raise FileNotFoundError(
            f"zoo entry {name!r} has no {file} in {folder}, and {why}. Train it with "
            f"`python -m cnncourse.zoo train {name}` (minutes on a GPU), work in a clone of the repository, "
            "whose data/zoo/ holds the trained entries, or connect to the internet to download them "
            "(set CNNCOURSE_ZOO to use another folder)."
        )
    expected = _read_checksums(folder).get(file)
    if expected is None:
        raise ValueError(f"{file} is not listed in {folder / CHECKSUMS}; save entries with cnncourse.zoo.save")
    if (actual := _sha256(path)) != expected:
        raise ValueError(
            f"{path} is corrupted or was changed by hand: sha256 {actual[:12]}... but {CHECKSUMS} records "
            f"{expected[:12]}...; restore it (`git checkout -- {path.name}`) or retrain the entry"
        )
    return path


def load_info(name: str, directory: str | os.PathLike | None = None) -> ZooInfo:
    """Read (and checksum) the metadata of a trained entry.

    Raises:
        KeyError: ``name`` is not a zoo entry.
        FileNotFoundError: It has not been trained; the message gives the command.
        ValueError: A file does not match its recorded sha256.
    """
    recipe(name)
    folder = Path(directory) if directory is not None else zoo_dir()
    meta = json.loads(_checked(folder, f"{name}.json").read_text())
    r = meta["recipe"]
    for key in ("model_kwargs", "data_kwargs"):  # JSON turned their tuples into lists
        r[key] = {k: tuple(v) if isinstance(v, list) else v for k, v in r.get(key, {}).items()}
    # entries saved before the tasks record no test_metrics: their accuracy is their score
    meta.setdefault("test_metrics", {"accuracy": meta["test_accuracy"]})
    return ZooInfo(
        name=meta["name"],
        recipe=Recipe(**r),
        history=History.from_dict(meta["history"]),
        **{f.name: meta[f.name] for f in dataclasses.fields(ZooInfo) if f.name not in ("name", "recipe", "history")},
    )


def load_pretrained(
    name: str, device: str | torch.device | None = None, directory: str | os.PathLike | None = None
) -> nn.Module:
    """Build entry ``name`` and load its trained weights (float32, eval mode).

    Args:
        name: A zoo entry with a checkpoint (see :func:`available`).
        device: Where to put the model (default: the CPU).
        directory: Folder of the checkpoints (default :func:`zoo_dir`).

    Raises:
        KeyError: ``name`` is not a zoo entry.
        FileNotFoundError: It has not been trained; the message gives the command.
        ValueError: The checkpoint does not match its recorded sha256.
    """
    model = build(name)
    folder = Path(directory) if directory is not None else zoo_dir()
    state = torch.load(_checked(folder, f"{name}.pt"), map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device or "cpu").eval()


class _Augmented:
    """Batches of ``loader`` passed through :func:`shift_and_flip` (and :func:`random_erasing`), seeded."""

    def __init__(self, loader: Iterable, seed: int, erasing: float = 0.0) -> None:
        self.loader, self.erasing = loader, erasing
        # each rank of a process group augments its own shard with draws of its own
        self.generator = torch.Generator().manual_seed(seed + distributed.rank())

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        from .augment import random_erasing, shift_and_flip  # here: augment imports torchvision, which takes seconds

        for x, y in self.loader:
            x = shift_and_flip(x, generator=self.generator)
            if self.erasing:
                x = random_erasing(x, p=self.erasing, generator=self.generator)
            yield x, y


class _FreshCanvases:
    """Training batches from new canvases every epoch: a segmenter's augmentation.

    The first epoch uses the given canvases; epoch ``e`` after it draws as
    many new ones with seed ``e`` (the same training items, in new scenes), so
    the network never sees a scene twice. Drawing 20 000 canvases takes a few
    seconds, against minutes for the epoch.
    """

    def __init__(self, first: torch.utils.data.TensorDataset, options: dict[str, Any], batch_size: int, *,
                 seed: int, device: torch.device) -> None:
        self.first, self.options, self.batch_size, self.seed = first, options, batch_size, seed
        self.device = device if device.type != "cpu" else None
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.first) // self.batch_size)

    def __iter__(self) -> Iterator:
        canvases = self.first
        if self.epoch > 0:
            canvases = fashion_canvas("train", n=len(self.first), seed=self.epoch, **self.options).semantic_dataset()
        self.epoch += 1
        yield from tensor_loader(canvases, self.batch_size, shuffle=True, seed=self.seed + self.epoch,
                                 device=self.device)


def _optimizer(r: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    if r.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=r.lr, momentum=r.momentum, nesterov=True,
                               weight_decay=r.weight_decay)
    if r.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    raise ValueError(f"unknown optimizer {r.optimizer!r} in the recipe: use 'sgd' or 'adamw'")


def train(
    name: str,
    *,
    device: str | torch.device | None = None,
    epochs: int | None = None,
    train_size: int | None = None,
    val_size: int | None = None,
    data: DataSplits | None = None,
    progress: bool = True,
) -> tuple[nn.Module, History]:
    """Train entry ``name`` from scratch by its recipe; nothing is saved.

    Args:
        name: A zoo entry (see :func:`names`).
        device: Where to train (default :func:`~cnncourse.get_device`).
        epochs: Override the recipe's epochs (a short run).
        train_size: Override the recipe's number of training images (or canvases).
        val_size: Images held out for validation (default 10 000), or
            validation canvases (default :data:`SEGMENTATION_VAL_SIZE`);
            smaller makes faster smoke runs.
        data: Ready splits to train on (then ``train_size`` and ``val_size``
            are ignored).
        progress: Show progress bars.

    Under a process group (``torchrun``), every rank calls it: each takes
    ``batch_size / world_size`` examples of its shard per step.

    Returns:
        ``(model, history)``: the trained model (in eval mode) and the
        per-epoch :class:`~cnncourse.History`.
    """
    r = recipe(name)
    epochs = epochs or r.epochs
    device = get_device(device)
    if r.batch_size % distributed.world_size():
        raise ValueError(f"{name}'s global batch of {r.batch_size} does not split among "
                         f"{distributed.world_size()} processes: use a number of processes that divides it")
    if r.augment and r.task not in ("classification", "segmentation"):
        raise ValueError(f"{name}: augment moves images but not their {r.task} targets; set augment=False")
    seed_everything(r.seed)
    model = build(name)
    if data is None:
        data = _data(r, train_size=train_size, val_size=val_size)
    batch_size = r.batch_size // distributed.world_size()
    train_loader, val_loader, _ = data.loaders(batch_size, device=device, seed=r.seed)
    batches = train_loader
    if r.augment and r.task == "segmentation":
        batches = _FreshCanvases(data.train, r.data_kwargs, batch_size, seed=r.seed, device=device)
    elif r.augment:
        batches = _Augmented(train_loader, r.seed, r.erasing)
    optimizer = _optimizer(r, model)
    steps = epochs * len(batches)
    # one cycle needs a step up and a step down; a smoke run of a few steps gets a longer warm-up
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=r.lr, total_steps=max(steps, 4),
                                                    pct_start=max(0.25, 2 / max(steps, 4)))
    loss_fn, metrics, callbacks = _objective(r, model, data)
    history = fit(model, batches, val_loader if r.task != "detection" else None, epochs=epochs, optimizer=optimizer,
                  scheduler=scheduler, scheduler_interval="batch", loss_fn=loss_fn, metrics=metrics,
                  callbacks=callbacks, device=device, progress=progress)
    return model.eval(), history


def _objective(r: Recipe, model: nn.Module, data: DataSplits) -> tuple[nn.Module, tuple[str, ...], list[Callback]]:
    """The loss, the metrics and the callbacks that train a recipe's task with :func:`fit`.

    A detector's loss is its own (``model.loss_fn()``, over the padded boxes), and
    its validation (loss and mAP) is a callback: in evaluation mode it returns
    detections, not the logits ``fit``'s own validation averages over.
    """
    if r.task == "detection":
        from .detection import DetectionValidation  # here: it imports torchvision, which takes seconds

        loss_fn = model.loss_fn()
        return loss_fn, (), [DetectionValidation(data.val, loss_fn)]
    metrics = ("pixel_accuracy", "mean_iou") if r.task == "segmentation" else ("accuracy",)
    return nn.CrossEntropyLoss(label_smoothing=r.label_smoothing), metrics, []


@functools.lru_cache(maxsize=2)
def _sliver(task: str = "classification", options: str = "{}") -> DataSplits:
    """128 training and 128 validation examples: one optimizer step for the smoke profile."""
    if task in ("segmentation", "detection"):
        return canvas_splits(train_size=128, val_size=128, test_size=128,
                             targets="boxes" if task == "detection" else "semantic", **json.loads(options))
    return fashion_mnist(train_size=128, val_size=128)


@dataclass(frozen=True)
class Obtained:
    """A zoo model as a chapter uses it, trained here or loaded; see :func:`obtain`.

    Attributes:
        model: The trained network, on the CPU, in eval mode.
        history: Its per-epoch training history.
        test_accuracy: On Fashion-MNIST's test images (a segmenter's: pixel
            accuracy on the test canvases; a detector's: mAP at IoU 0.5).
        info: The zoo's record when the model was loaded, ``None`` when it trained here.
        test_metrics: The task's test scores, as in :attr:`ZooInfo.test_metrics`.
        task: The recipe's task.
    """

    model: nn.Module
    history: History
    test_accuracy: float
    info: ZooInfo | None = None
    test_metrics: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"

    @property
    def trained_here(self) -> bool:
        return self.info is None

    @property
    def score(self) -> float:
        """The task's headline score: test accuracy, a segmenter's mean IoU, a detector's mAP at IoU 0.5."""
        return _score(self.task, self.test_accuracy, self.test_metrics)

    def __str__(self) -> str:
        h = self.history
        if self.info is None:
            where = f"trained here, {len(h)} epochs in {sum(h['time']):,.0f} s"
        else:
            where = (f"the zoo's checkpoint: {len(h)} epochs on {self.info.device}, "
                     f"{self.info.seconds_per_epoch:,.0f} s per epoch")
        if self.task == "segmentation":
            return (f"{where}; final validation mean IoU {h['val_mean_iou'][-1]:.4f}, "
                    f"test mean IoU {self.score:.4f}, test pixel accuracy {self.test_accuracy:.4f}")
        if self.task == "detection":
            return (f"{where}; final validation mAP@0.5 {h['val_map_50'][-1]:.4f}, "
                    f"test mAP@0.5 {self.score:.4f}, test mAP@[0.5:0.95] {self.test_metrics['map']:.4f}")
        return f"{where}; final validation accuracy {h['val_accuracy'][-1]:.4f}, test accuracy {self.test_accuracy:.4f}"


def obtain(
    name: str,
    *,
    train_here: bool | None = None,
    device: str | torch.device | None = None,
    smoke: bool = False,
    directory: str | os.PathLike | None = None,
    **short: Any,
) -> Obtained:
    """Train entry ``name`` here, or load its trained checkpoint: the choice every architecture chapter makes.

    Args:
        name: A zoo entry (see :func:`names`).
        train_here: ``True`` trains from scratch by the recipe, ``False`` loads the
            checkpoint (downloading it if need be), ``None`` (default) trains on
            a CUDA GPU and loads elsewhere.
        device: Where to train (default :func:`~cnncourse.get_device`).
        smoke: The smoke profile, which proves that the code runs rather than
            that the model learns: training takes one epoch on 512 images
            (canvases), and loading also runs one training step on 128, so
            that the training path is exercised on every machine.
        directory: Folder of the checkpoints (default :func:`zoo_dir`).
        **short: ``epochs``, ``train_size`` or ``val_size`` for :func:`train`
            when training here (a shorter run than the recipe's).

    Returns:
        An :class:`Obtained`. A loaded model's test scores are its record (the
        test suite re-measures every shipped checkpoint); a model trained here
        is measured on the 10 000 test images (1 000 in the smoke profile), a
        segmenter or a detector on the test canvases (100 in the smoke profile).
    """
    device = get_device(device)
    r = recipe(name)
    if train_here is None:
        train_here = device.type == "cuda"
    if not train_here:
        if smoke:  # one step on a sliver: proves that the training path runs, costs well under a second
            train(name, device=device, epochs=1, data=_sliver(r.task, json.dumps(r.data_kwargs, sort_keys=True)),
                  progress=False)
        info = load_info(name, directory)
        return Obtained(load_pretrained(name, directory=directory), info.history, info.test_accuracy, info,
                        info.test_metrics, r.task)
    if smoke:
        short = {"epochs": 1, "train_size": 512, "val_size": 500 if r.task == "classification" else 100} | short
    model, history = train(name, device=device, progress=False, **short)
    test = _test_set(r)
    if smoke:
        keep = 1000 if r.task == "classification" else 100
        test = torch.utils.data.TensorDataset(*(t[:keep] for t in test.tensors))
    metrics = _test_metrics(model, test, r, device=device)
    return Obtained(model.cpu().eval(), history, metrics["accuracy"], None, metrics, r.task)


def _commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True,
                               text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _test_metrics(model: nn.Module, test: torch.utils.data.TensorDataset, r: Recipe,
                  device: str | torch.device = "cpu") -> dict[str, Any]:
    """The task's test scores: ``accuracy`` and ``loss``, a segmenter's IoUs, a detector's APs."""
    if r.task == "detection":
        from .detection import evaluate_detector

        scores, loss = evaluate_detector(model.to(device), test, loss_fn=model.loss_fn(), device=device)
        found = scores.to_dict()
        return {"accuracy": found["map_50"], "loss": loss, **found}
    if r.task == "segmentation":
        scores = segmentation_scores(model.to(device), tensor_loader(test, 100), device=device)
        return {"accuracy": scores.pixel_accuracy, **scores.to_dict()}
    return evaluate(model, tensor_loader(test, 1000), device=device, amp=False)


def save(
    name: str,
    model: nn.Module,
    history: History,
    *,
    device: str,
    train_seconds: float,
    data: DataSplits | None = None,
    directory: str | os.PathLike | None = None,
    commit: str | None = None,
) -> ZooInfo:
    """Store a trained entry: weights, metadata (test scores of the stored weights) and checksums.

    The test scores are measured after the weights are written, on a model
    freshly loaded from the file on the CPU, so they are exactly what
    :func:`load_pretrained` gives back; ``data.test`` is the test set (default:
    the task's, Fashion-MNIST's test images or the test canvases). ``commit``
    is the git commit of the code that trained the model (default: the
    checkout's, now).
    """
    r = dataclasses.replace(recipe(name), epochs=len(history))
    folder = Path(directory) if directory is not None else zoo_dir()
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if r.half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, folder / f"{name}.pt")
    sums = _read_checksums(folder) | {f"{name}.pt": _sha256(folder / f"{name}.pt")}
    _write_checksums(folder, sums)

    stored = load_pretrained(name, directory=folder)
    test = _test_metrics(stored, _test_set(r, data), r)
    counts = summary(build(name), input_size(name), receptive_fields=False)
    meta = {
        "name": name,
        "recipe": r.to_dict(),
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "params": counts.total_params,
        "macs": counts.total_macs,
        "device": device,
        "train_seconds": round(train_seconds, 1),
        "seconds_per_epoch": round(sum(history["time"]) / len(history), 2),
        "commit": commit or _commit(),
        "sha256": sums[f"{name}.pt"],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "test_metrics": test if r.task != "classification" else {"accuracy": test["accuracy"]},
        "history": history.to_dict(),
    }
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    # read the sums again: another training run may have saved its entry in the meantime
    _write_checksums(folder, _read_checksums(folder) | {f"{name}.json": _sha256(folder / f"{name}.json")})
    return load_info(name, folder)


def verify(names_: Sequence[str] | None = None, directory: str | os.PathLike | None = None,
           data: DataSplits | None = None) -> dict[str, tuple[float, float]]:
    """Re-evaluate trained entries on their task's test set.

    Args:
        names_: Entries to check (default: every trained one).
        directory: Folder of the checkpoints (default :func:`zoo_dir`).
        data: Fashion-MNIST splits for the classification entries (default
            ``fashion_mnist()``); segmenters are scored on the test canvases.

    Returns:
        ``{name: (recorded, measured)}`` scores (test accuracy, a segmenter's
        mean IoU); the checksums are checked on the way (a mismatch raises
        ``ValueError``).
    """
    folder = Path(directory) if directory is not None else zoo_dir()
    results = {}
    for name in names_ or available(folder):
        info = load_info(name, folder)
        if info.recipe.task == "classification":
            data = data or fashion_mnist()
        test = _test_set(info.recipe, data if info.recipe.task == "classification" else None)
        measured = _test_metrics(load_pretrained(name, directory=folder), test, info.recipe)
        results[name] = (info.score, _score(info.recipe.task, measured["accuracy"], measured))
    return results


def main(argv: Sequence[str] | None = None, out: Callable[[str], Any] = print) -> int:
    """The command line: ``python -m cnncourse.zoo {list,train,verify}``."""
    parser = argparse.ArgumentParser(prog="python -m cnncourse.zoo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the entries, and the recorded results of the trained ones")
    trainer = commands.add_parser("train", help="train entries by their recipes and store them in the zoo")
    trainer.add_argument("names", nargs="*", help="entries to train (default: all; on a CPU all but the GPU recipes)")
    trainer.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    trainer.add_argument("--epochs", type=int, help="override the recipe (the metadata records what ran)")
    checker = commands.add_parser("verify", help="re-evaluate stored checkpoints against their records")
    checker.add_argument("names", nargs="*", help="entries to check (default: all trained)")
    args = parser.parse_args(argv)

    if args.command == "list":
        trained = set(available())
        rows = []
        for name in names():
            info = load_info(name) if name in trained else None
            score = {"segmentation": "mIoU", "detection": "mAP50"}.get(recipe(name).task, "acc")
            untrained = "not trained" + (" (a GPU recipe)" if recipe(name).needs_gpu else "")
            rows.append([name, recipe(name).model, f"{score} {info.score:.4f}" if info else "-",
                         str(len(info.history)) if info else "-", info.device if info else untrained])
        out(str(Table(["entry", "model", "test score", "epochs", "trained on"], rows, align="llrrl")))
        return 0
    if args.command == "verify":
        results = verify(args.names or None)
        bad = {n: v for n, v in results.items() if abs(v[0] - v[1]) > TOLERANCE}
        out(str(Table(["entry", "recorded", "measured", ""],
                      [[n, f"{a:.4f}", f"{b:.4f}", "FAIL" if n in bad else "ok"] for n, (a, b) in results.items()])))
        return 1 if bad else 0

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # fit logs each epoch
    device = distributed.init_from_env(args.device)  # under torchrun: this rank's GPU, or the CPU with gloo
    commit, processes = _commit(), distributed.world_size()
    where = describe_device(device).splitlines()[0].removeprefix("Device: ")
    where = f"{processes} x {where}" if processes > 1 else where
    data = None  # Fashion-MNIST, loaded once for the classification entries that use all of it

    def store(name: str, model: nn.Module, history: History, seconds: float) -> None:
        r = recipe(name)
        info = save(name, model, history, device=where, train_seconds=seconds,
                    data=data if r.task == "classification" else None, commit=commit)
        score = "test " + SCORE_NAMES[r.task]
        out(f"{name}: {score} {info.score:.4f} after {len(info.history)} epochs, "
            f"{info.train_seconds:.0f} s on {info.device}")

    runs = []
    for name in args.names or [n for n in names() if device.type == "cuda" or not recipe(n).needs_gpu]:
        r = recipe(name)
        if r.task == "classification" and data is None:
            data = fashion_mnist()
        start = time.perf_counter()
        model, history = train(name, device=device, epochs=args.epochs,
                               data=data if r.task == "classification" and not r.train_size else None)
        runs.append((name, model, history, time.perf_counter() - start))
        if not distributed.is_initialized():  # one process: store every entry as soon as it is trained
            store(*runs.pop())
    # Under torchrun every rank holds the same weights; rank 0 stores them once the group is gone, so that
    # its test evaluation is its own and no rank waits for it in a collective.
    distributed.cleanup()
    if distributed.is_main_process():
        for run in runs:
            store(*run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
