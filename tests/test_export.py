"""ONNX export for the live page: every output of the exported graphs equals PyTorch's, in onnxruntime."""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from cnncourse import create_model, export, zoo
from cnncourse.data import FASHION_MNIST_CLASSES, fashion_mnist

pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Everything the live page loads, exported once into a scratch folder."""
    folder = tmp_path_factory.mktemp("live")
    return folder, export.export_live(folder, extra={"fingerprint": "abc"})


@pytest.fixture(scope="module")
def test_images():
    data = fashion_mnist()
    X, y = data.test.tensors
    return X, y


# --- FeatureTaps ---------------------------------------------------------------------


def test_taps_return_the_logits_and_the_tapped_maps_in_order():
    model = create_model("lenet5").eval()
    taps = export.FeatureTaps(model, ["features.s4", "features.c1"])
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        logits, s4, c1 = taps(x)
        torch.testing.assert_close(logits, model(x), rtol=0, atol=0)
        torch.testing.assert_close(c1, model.features.c1(x), rtol=0, atol=0)
    assert s4.shape == (2, 16, 5, 5)
    assert not any(m._forward_hooks for m in model.modules()), "the hooks outlived the call"


def test_taps_refuse_unknown_and_shared_modules():
    with pytest.raises(ValueError, match="no module"):
        export.FeatureTaps(create_model("lenet5"), ["features.c2"])
    relu = nn.ReLU()
    shared = nn.Sequential(nn.Conv2d(1, 2, 3), relu, nn.Conv2d(2, 2, 3), relu, nn.Flatten(), nn.LazyLinear(3))
    with pytest.raises(ValueError, match="ran \\[2\\] times"):
        export.FeatureTaps(shared, ["1"])(torch.zeros(1, 1, 8, 8))


def test_every_live_model_is_a_trained_zoo_entry_with_existing_layers():
    assert list(export.LIVE_MODELS)[:1] == ["lenet5"]
    assert {"vgg_small", "resnet20"} & set(export.LIVE_MODELS)
    for name, live in export.LIVE_MODELS.items():
        assert name in zoo.available()
        modules = dict(zoo.build(name).named_modules())
        assert all(tap.module in modules for tap in live.taps), name
        assert len({tap.output for tap in live.taps}) == len(live.taps)


def test_samples_are_the_first_test_images_of_each_class(test_images):
    X, y = test_images
    samples = export.picker_samples(per_class=2)
    assert samples["labels"] == [c for c in range(10) for _ in range(2)]
    pixels = np.frombuffer(base64.b64decode(samples["pixels"]), dtype=np.uint8).reshape(samples["shape"])
    for k, index in enumerate(samples["indices"]):
        assert y[index] == samples["labels"][k]
        assert int((y[:index] == y[index]).sum()) < 2, "not among the first two of its class"
        # what the page computes, p * (1 / 255) in float64 rounded to float32, is torch's input exactly
        np.testing.assert_array_equal((pixels[k] * (1 / 255)).astype(np.float32), X[index, 0].numpy())
    with pytest.raises(ValueError, match="per_class"):
        export.picker_samples(per_class=0)


# --- the exported files ----------------------------------------------------------------


def test_metadata_records_the_checkpoints_and_checksums(exported):
    folder, meta = exported
    assert meta["classes"] == list(FASHION_MNIST_CLASSES)
    assert json.loads((folder / "models.json").read_text()) == meta
    assert meta["fingerprint"] == "abc"
    sums = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"models.json", "samples.json", *(f"{n}.onnx" for n in export.LIVE_MODELS)}
    for file, digest in sums.items():
        assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, file
    zoo_sums = dict(reversed(line.split()) for line in (zoo.zoo_dir() / "SHA256SUMS").read_text().splitlines())
    for entry in meta["models"]:
        assert entry["checkpoint_sha256"] == zoo_sums[entry["checkpoint"]]
        assert entry["sha256"] == sums[entry["file"]]
        assert entry["opset"] == export.OPSET
        assert entry["input"]["shape"] == [1, 1, 28, 28] and entry["input"]["scale"] == 1 / 255
        data = (folder / entry["file"]).read_bytes()
        assert b"stack_trace" not in data and str(export.Path(export.__file__).parent).encode() not in data, (
            "the ONNX file carries the build machine's paths")
        graph = onnx.load(folder / entry["file"])
        assert graph.opset_import[0].version == export.OPSET
        assert {p.key: p.value for p in graph.metadata_props}["cnncourse.checkpoint_sha256"] == \
            entry["checkpoint_sha256"]


@pytest.mark.parametrize("name", list(export.LIVE_MODELS))
def test_onnx_outputs_equal_pytorch(exported, test_images, name):
    folder, meta = exported
    entry = next(m for m in meta["models"] if m["name"] == name)
    session = ort.InferenceSession(str(folder / entry["file"]), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [o["name"] for o in entry["outputs"]]
    assert [o.shape for o in session.get_outputs()] == [o["shape"] for o in entry["outputs"]]
    assert [i.name for i in session.get_inputs()] == [entry["input"]["name"]]

    wrapped = export.FeatureTaps(zoo.load_pretrained(name), [t.module for t in export.LIVE_MODELS[name].taps])
    X, y = test_images
    images = torch.cat([X[:8], torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))])
    worst, correct = 0.0, 0
    for k, image in enumerate(images):
        with torch.no_grad():
            expected = [t.numpy() for t in wrapped(image[None])]
        got = session.run(None, {entry["input"]["name"]: image[None].numpy()})
        assert len(got) == len(expected) == len(entry["outputs"])
        for output, want, have in zip(entry["outputs"], expected, got):
            assert have.shape == want.shape, output["name"]
            worst = max(worst, float(np.abs(have - want).max()))
        correct += k < 8 and int(got[0].argmax()) == int(y[k])
    assert worst <= TOLERANCE, f"{name}: ONNX differs from PyTorch by {worst:.2e}"
    assert correct >= 6, f"{name}: only {correct} of 8 test images right: the weights did not load"
