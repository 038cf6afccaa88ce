"""Zoo models as ONNX files for the browser, with their feature maps as extra outputs.

The website's live page (``book/06b_live_cnn.md``) runs trained zoo networks in
the reader's browser with ONNX Runtime Web. This module makes what that page
loads, from the committed zoo checkpoints, every time the book is built
(``_ext/live_models.py`` calls :func:`export_live`):

* ``NAME.onnx`` for each entry of :data:`LIVE_MODELS`, exported with
  ``torch.onnx.export(..., dynamo=True)``. Its first output is ``logits``; the
  others are the feature maps of the layers the page draws, tapped with
  forward hooks (:class:`FeatureTaps`), so that one run gives the prediction and
  every picture;
* ``samples.json``: a few Fashion-MNIST test images (the first ``per_class`` of
  each class, in test-set order) for the page's picker, as raw bytes;
* ``models.json``: for each model, where it came from (the zoo checkpoint's
  sha256, its test accuracy), the opset, the input (shape and normalisation) and
  every output's name, shape and label, and the class names;
* ``SHA256SUMS`` of all of the above, in the format ``sha256sum -c`` reads.

The exported graph computes exactly what the PyTorch model does
(``tests/test_export.py`` checks every output against PyTorch in
onnxruntime, to 1e-5), and ``tests/test_live_site.py`` checks the page's
logits against PyTorch's in headless Chromium.

Example:
    >>> from cnncourse import export
    >>> [t.label for t in export.LIVE_MODELS["lenet5"].taps][:2]
    ['C1: convolution 5 × 5, tanh', 'S2: average pooling 2 × 2']
    >>> export.export_live("_build/html/_static/live")  # doctest: +SKIP

Command line: ``python -m cnncourse.export OUT_DIR [NAME ...]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import zoo

__all__ = [
    "CHECKSUMS",
    "LIVE_MODELS",
    "OPSET",
    "FeatureTaps",
    "LiveModel",
    "Tap",
    "export_live",
    "export_model",
    "picker_samples",
]

log = logging.getLogger(__name__)

#: ONNX opset of the exported graphs (ONNX Runtime Web 1.31 runs opsets 7 to 23).
OPSET = 18
CHECKSUMS = "SHA256SUMS"
INPUT_NAME = "image"
LOGITS = "logits"
#: How the page turns 8-bit pixels into the network's input: ``(p * scale - mean) / std``. The zoo
#: trained on Fashion-MNIST as it comes, floats in [0, 1] (white garment on black), without
#: standardisation, so mean 0 and std 1.
NORMALISATION = {"scale": 1 / 255, "mean": 0.0, "std": 1.0}


@dataclass(frozen=True)
class Tap:
    """A layer whose output the exported graph also returns.

    Attributes:
        module: Its name in ``model.named_modules()`` (``"features.act1"``).
        label: What the page calls it.
    """

    module: str
    label: str

    @property
    def output(self) -> str:
        """The ONNX output's name: the module name with dots as underscores."""
        return self.module.replace(".", "_")


@dataclass(frozen=True)
class LiveModel:
    """A zoo entry on the live page: its title there and the layers it shows."""

    title: str
    taps: tuple[Tap, ...]


def _vgg_taps() -> tuple[Tap, ...]:
    # vgg_small with batch norm: features = [conv, bn, relu] x 2, pool, three times;
    # the taps are each ReLU (after conv and batch norm) and each pool.
    taps, index = [], 0
    for block, channels in enumerate((16, 32, 64), start=1):
        for conv in (1, 2):
            taps.append(Tap(f"features.{index + 2}", f"Block {block}, convolution {conv}: 3 × 3, {channels} maps, "
                                                     "batch norm, ReLU"))
            index += 3
        taps.append(Tap(f"features.{index}", f"Block {block}: max pooling 2 × 2"))
        index += 1
    return tuple(taps)


#: The models the live page offers, in its order, and the layers it draws for each.
LIVE_MODELS: dict[str, LiveModel] = {
    "lenet5": LiveModel("LeNet-5", (
        Tap("features.act1", "C1: convolution 5 × 5, tanh"),
        Tap("features.s2", "S2: average pooling 2 × 2"),
        Tap("features.act3", "C3: convolution 5 × 5, tanh"),
        Tap("features.s4", "S4: average pooling 2 × 2"),
    )),
    "vgg_small": LiveModel("VGG (small)", _vgg_taps()),
    "resnet20": LiveModel("ResNet-20", (
        Tap("relu", "Stem: convolution 3 × 3, batch norm, ReLU"),
        Tap("layer1", "Stage 1: three residual blocks, 16 maps"),
        Tap("layer2", "Stage 2: three residual blocks, 32 maps, stride 2"),
        Tap("layer3", "Stage 3: three residual blocks, 64 maps, stride 2"),
    )),
}


class FeatureTaps(nn.Module):
    """Wrap a model so that it returns its logits and the outputs of some of its layers.

    The outputs are caught by forward hooks that live only during the call
    (removed in a ``finally``), so the wrapped model is left as it was. Each
    tapped module must run exactly once per forward pass.

    Args:
        model: The network (in eval mode for export).
        modules: Names of the layers to tap, in ``model.named_modules()``.

    Shape:
        - Input: what ``model`` takes, e.g. :math:`(N, 1, 28, 28)`.
        - Output: a tuple ``(logits, map_1, ..., map_k)`` in the order of ``modules``.

    Example:
        >>> from cnncourse import create_model
        >>> taps = FeatureTaps(create_model("lenet5"), ["features.c1", "features.s4"])
        >>> [tuple(t.shape) for t in taps(torch.zeros(1, 1, 28, 28))]
        [(1, 10), (1, 6, 28, 28), (1, 16, 5, 5)]
    """

    def __init__(self, model: nn.Module, modules: Sequence[str]) -> None:
        super().__init__()
        known = dict(model.named_modules())
        missing = [name for name in modules if name not in known]
        if missing:
            raise ValueError(f"the model has no module {missing}; its modules are: "
                             f"{', '.join(n for n in known if n)}")
        self.model = model
        self.names = list(modules)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        caught: dict[str, list[torch.Tensor]] = {name: [] for name in self.names}
        modules = dict(self.model.named_modules())
        handles = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: caught[name].append(out))
                   for name in self.names]
        try:
            logits = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        twice = [name for name, outs in caught.items() if len(outs) != 1]
        if twice:
            raise ValueError(f"modules {twice} ran {[len(caught[n]) for n in twice]} times in one forward pass: "
                             "tap modules that run once (a shared ReLU cannot be told apart)")
        return (logits, *(caught[name][0] for name in self.names))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_model(name: str, path: str | os.PathLike, *, directory: str | os.PathLike | None = None,
                 opset: int = OPSET) -> dict[str, Any]:
    """Export zoo entry ``name`` (one of :data:`LIVE_MODELS`) to ONNX, feature maps included.

    Args:
        name: A key of :data:`LIVE_MODELS`, trained in the zoo.
        path: The ``.onnx`` file to write (one file, weights inside, float32).
        directory: The zoo's folder (default :func:`cnncourse.zoo.zoo_dir`).
        opset: ONNX opset version.

    Returns:
        The model's entry in ``models.json``: title, zoo checkpoint and its
        sha256, test accuracy, parameters, opset, file and its sha256, input,
        outputs (name, shape, label) and classes.

    Raises:
        KeyError: ``name`` is not on the live page.
    """
    if name not in LIVE_MODELS:
        raise KeyError(f"{name!r} is not a live model; they are: {', '.join(LIVE_MODELS)}")
    import onnx  # the [book] extra: only building the website needs it

    live, path = LIVE_MODELS[name], Path(path)
    folder = Path(directory) if directory is not None else zoo.zoo_dir()
    model = zoo.load_pretrained(name, directory=folder)  # float32, eval mode, checksum verified
    info = zoo.load_info(name, directory=folder)
    wrapped = FeatureTaps(model, [tap.module for tap in live.taps]).eval()
    example = torch.zeros(zoo.INPUT_SIZE)
    outputs = [LOGITS, *(tap.output for tap in live.taps)]
    with torch.no_grad():
        shapes = [list(t.shape) for t in wrapped(example)]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(wrapped, (example,), path, dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                      output_names=outputs, external_data=False, verbose=False)
    graph = onnx.load(path)
    # The exporter notes each node's Python stack trace and FX node, absolute paths of this
    # machine included; only the module path ("namespace", which Netron shows) is worth shipping.
    for node in graph.graph.node:
        kept = [(p.key, p.value) for p in node.metadata_props if p.key == "namespace"]
        del node.metadata_props[:]
        for key, value in kept:
            node.metadata_props.add(key=key, value=value)
    # Where the weights came from, inside the file too.
    for key, value in {"cnncourse.zoo_entry": name, "cnncourse.checkpoint_sha256": info.sha256}.items():
        graph.metadata_props.add(key=key, value=value)
    graph.doc_string = f"cnncourse zoo entry {name} ({live.title}): logits and {len(live.taps)} feature maps"
    onnx.save(graph, path)
    labels = ["Logits of the ten classes", *(tap.label for tap in live.taps)]
    return {
        "name": name,
        "title": live.title,
        "file": path.name,
        "sha256": _sha256(path),
        "checkpoint": f"{name}.pt",
        "checkpoint_sha256": info.sha256,
        "test_accuracy": info.test_accuracy,
        "params": info.params,
        "opset": opset,
        "input": {"name": INPUT_NAME, "shape": list(zoo.INPUT_SIZE), "dtype": "float32", **NORMALISATION},
        "outputs": [{"name": o, "shape": s, "label": label} for o, s, label in zip(outputs, shapes, labels)],
    }


def picker_samples(per_class: int = 3, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The first ``per_class`` test images of each Fashion-MNIST class, as ``samples.json`` holds them.

    Returns:
        ``{"source", "shape", "indices", "labels", "pixels"}``: ``pixels`` is
        base64 of the images' bytes (row by row, 0 = black), in the order of
        ``indices`` (class by class).
    """
    from .data.fashion import FASHION_MNIST_CLASSES, _load_split, prepare_fashion_mnist

    if not 1 <= per_class <= 100:
        raise ValueError(f"per_class must be between 1 and 100, got {per_class}")
    images, labels = _load_split(prepare_fashion_mnist(root), train=False)
    indices = [i for c in range(len(FASHION_MNIST_CLASSES))
               for i in torch.nonzero(labels == c).flatten()[:per_class].tolist()]
    pixels = (images[indices, 0] * 255).round().to(torch.uint8)  # back to the file's bytes, exactly
    return {
        "source": "Fashion-MNIST test set (Xiao et al. 2017), the first images of each class",
        "shape": [len(indices), 28, 28],
        "indices": indices,
        "labels": labels[indices].tolist(),
        "pixels": base64.b64encode(pixels.numpy().tobytes()).decode("ascii"),
    }


def export_live(out_dir: str | os.PathLike, names: Sequence[str] | None = None, *,
                directory: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                per_class: int = 3, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write everything the live page loads into ``out_dir`` (see the module's docstring).

    Args:
        out_dir: The folder (``_build/html/_static/live`` when the book builds).
        names: Which of :data:`LIVE_MODELS` (default: all, in their order).
        directory: The zoo's folder (default :func:`cnncourse.zoo.zoo_dir`).
        data_root: Fashion-MNIST's folder (default :func:`cnncourse.data.default_data_root`).
        per_class: Test images per class in ``samples.json``.
        extra: More entries for ``models.json`` (the build adds a fingerprint of its inputs).

    Returns:
        The content of ``models.json``.
    """
    from .data import FASHION_MNIST_CLASSES

    import onnx

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = [export_model(name, out / f"{name}.onnx", directory=directory) for name in (names or list(LIVE_MODELS))]
    (out / "samples.json").write_text(json.dumps(picker_samples(per_class, data_root)) + "\n")
    meta = {
        "generator": "cnncourse.export.export_live",
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        "classes": list(FASHION_MNIST_CLASSES),
        "samples": "samples.json",
        "models": models,
        **(extra or {}),
    }
    (out / "models.json").write_text(json.dumps(meta, indent=1) + "\n")
    files = [*(m["file"] for m in models), "samples.json", "models.json"]
    (out / CHECKSUMS).write_text("".join(f"{_sha256(out / f)}  {f}\n" for f in sorted(files)))
    log.info("exported %s to %s", ", ".join(m["name"] for m in models), out)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnncourse.export", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write the ONNX files, samples.json, models.json and SHA256SUMS")
    parser.add_argument("names", nargs="*", help=f"models (default: {' '.join(LIVE_MODELS)})")
    args = parser.parse_args(argv)
    meta = export_live(args.out_dir, args.names or None)
    for m in meta["models"]:
        sys.stdout.write(f"{m['file']}: {len(m['outputs'])} outputs, sha256 {m['sha256'][:12]}...\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
