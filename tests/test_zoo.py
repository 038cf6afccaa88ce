"""The model zoo: recipes, the batched augmentation, saving and loading, and the shipped checkpoints."""

import dataclasses
import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from cnncourse import list_models, summary, zoo
from cnncourse.augment import shift_and_flip
from cnncourse.data import canvas_splits, fashion_canvas, fashion_mnist

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return fashion_mnist()


@pytest.fixture(scope="module")
def tiny(data, tmp_path_factory):
    """LeNet-5 trained for one epoch on 512 images, saved into a scratch zoo folder."""
    folder = tmp_path_factory.mktemp("zoo")
    small = fashion_mnist(val_size=512, train_size=512)
    model, history = zoo.train("lenet5", epochs=1, data=small, progress=False)
    info = zoo.save("lenet5", model, history, device="test", train_seconds=1.0, data=data, directory=folder)
    return folder, model, history, info


# --- recipes ---------------------------------------------------------------


def test_every_recipe_builds_a_registered_model():
    assert zoo.names()[:6] == ["lenet5", "alexnet_small", "vgg_small", "googlenet_small", "resnet20", "se_resnet20"]
    for name in zoo.names():
        r = zoo.recipe(name)
        assert r.model in list_models() and r.task in zoo.TASKS
        size = zoo.input_size(name)
        out = zoo.build(name)(torch.zeros(2, *size[1:]))  # in training mode: a detector's dense maps
        expected = {"classification": (2, 10), "segmentation": (2, 11, *size[2:]),
                    "detection": (2, 14, *(s // 4 for s in size[2:]))}
        assert out.shape == expected[r.task]


def test_entries_can_be_chosen_by_task(tiny):
    by_task = {task: zoo.names(task) for task in zoo.TASKS}
    assert sorted(sum(by_task.values(), [])) == sorted(zoo.names())
    assert by_task["segmentation"] == ["fcn_canvas", "unet_canvas"] and by_task["detection"] == ["detector_canvas"]
    assert all(zoo.recipe(n).task == "classification" for n in by_task["classification"])
    folder = tiny[0]
    assert zoo.available(folder, task="classification") == ["lenet5"] and zoo.available(folder, task="detection") == []
    with pytest.raises(ValueError, match="unknown task 'captioning'"):
        zoo.names("captioning")


def test_the_segmenters_differ_only_in_the_model():
    fcn, unet = zoo.recipe("fcn_canvas"), zoo.recipe("unet_canvas")
    assert (fcn.model, unet.model) == ("fcn", "unet") and fcn.task == unet.task == "segmentation"
    assert dataclasses.replace(fcn, model="unet", note="") == dataclasses.replace(unet, note="")
    assert zoo.input_size("unet_canvas") == (1, 1, 64, 64) and zoo.input_size("lenet5") == zoo.INPUT_SIZE


def test_degradation_pairs_differ_only_in_depth_and_shortcuts():
    plain, residual = zoo.recipe("plain56_narrow"), zoo.recipe("resnet56_narrow")
    assert plain.model_kwargs == residual.model_kwargs
    assert {f: getattr(plain, f) for f in ("epochs", "lr", "train_size", "augment")} == \
           {f: getattr(residual, f) for f in ("epochs", "lr", "train_size", "augment")}
    a, b = zoo.build("plain56_narrow"), zoo.build("resnet56_narrow")
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())


def test_unknown_entry_names_the_entries():
    with pytest.raises(KeyError, match="resnet20"):
        zoo.recipe("resnet21")


def test_recipe_round_trips_through_a_dict():
    r = zoo.recipe("resnet20_narrow")
    assert zoo.Recipe(**r.to_dict()) == r


def test_unknown_tasks_and_augmented_detectors_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="unknown task 'captioning'"):
        zoo._data(zoo.Recipe("unet", task="captioning"))
    monkeypatch.setitem(zoo.RECIPES, "detector_canvas", dataclasses.replace(zoo.recipe("detector_canvas"), augment=True))
    with pytest.raises(ValueError, match="set augment=False"):
        zoo.train("detector_canvas", epochs=1, device="cpu", progress=False)


def test_segmenters_see_new_canvases_every_epoch():
    small = canvas_splits(train_size=40, val_size=8, test_size=8)
    epochs = zoo._FreshCanvases(small.train, {}, 16, seed=0, device=torch.device("cpu"))
    assert len(epochs) == 3
    first, second = ([x for x, _ in epochs] for _ in range(2))
    assert sorted(x.sum().item() for x in torch.cat(first)) == sorted(x.sum().item() for x in small.train.tensors[0])
    drawn = fashion_canvas("train", n=40, seed=1).semantic_dataset().tensors[0]
    assert sorted(x.sum().item() for x in torch.cat(second)) == sorted(x.sum().item() for x in drawn)
    assert zoo.recipe("unet_canvas").augment and zoo.recipe("fcn_canvas").augment  # the recipes use it


# --- shift_and_flip ----------------------------------------------------------


def test_shift_and_flip_matches_crop_of_the_padded_image():
    x = torch.rand(6, 2, 7, 5)
    out = shift_and_flip(x, max_shift=2, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the same draws, in the same order
    offsets, flips = torch.randint(0, 5, (2, 6), generator=g), torch.rand(6, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        crop = padded[i, :, offsets[0, i]:offsets[0, i] + 7, offsets[1, i]:offsets[1, i] + 5]
        torch.testing.assert_close(out[i], crop.flip(-1) if flips[i] else crop)


def test_shift_and_flip_extremes():
    x = torch.rand(4, 1, 5, 5)
    assert torch.equal(shift_and_flip(x, max_shift=0, p_flip=0.0), x)
    assert torch.equal(shift_and_flip(x, max_shift=0, p_flip=1.0), x.flip(-1))
    shifted = shift_and_flip(torch.ones(64, 1, 5, 5), max_shift=2, p_flip=0.0)
    assert (shifted.sum(dim=(1, 2, 3)) < 25).any()  # some images moved, leaving zero rows or columns


@pytest.mark.parametrize("kwargs, match", [
    ({"max_shift": -1}, "max_shift"),
    ({"p_flip": 1.5}, "probability"),
])
def test_shift_and_flip_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shift_and_flip(torch.rand(2, 1, 4, 4), **kwargs)
    with pytest.raises(ValueError, match="N x C x H x W"):
        shift_and_flip(torch.rand(1, 4, 4))


# --- train, save, load -------------------------------------------------------


def test_training_is_reproducible(tiny):
    _, model, history, _ = tiny
    small = fashion_mnist(val_size=512, train_size=512)
    again, history2 = zoo.train("lenet5", epochs=1, data=small, progress=False)
    assert history2["loss"] == history["loss"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("steps", [1, 3, 4, 5])
def test_a_smoke_run_of_a_few_steps_trains(steps):
    small = fashion_mnist(val_size=64, train_size=128 * steps)
    model, history = zoo.train("lenet5", epochs=1, data=small, progress=False)
    assert len(history) == 1 and history["loss"][0] > 0


def test_adamw_recipes_train_and_unknown_optimizers_are_refused():
    small = fashion_mnist(val_size=64, train_size=256)
    assert zoo.recipe("alexnet_small").optimizer == "adamw"
    _, history = zoo.train("alexnet_small", epochs=1, data=small, progress=False)
    assert len(history) == 1
    with pytest.raises(ValueError, match="'sgd' or 'adamw'"):
        zoo._optimizer(zoo.Recipe("lenet5", optimizer="lion"), zoo.build("lenet5"))


def test_saved_entry_loads_back_with_its_metadata(tiny, data):
    folder, model, history, info = tiny
    assert zoo.available(folder) == ["lenet5"]
    loaded = zoo.load_pretrained("lenet5", directory=folder)
    assert not loaded.training
    x = data.test.tensors[0][:16]
    torch.testing.assert_close(loaded(x), model.cpu().eval()(x))
    assert info.params == 61_706 == sum(p.numel() for p in loaded.parameters())
    assert info.macs > 0 and info.recipe.epochs == 1 == len(info.history)
    assert info.history["loss"] == history["loss"]
    assert info.sha256 == zoo._sha256(folder / "lenet5.pt")
    recorded, measured = zoo.verify(["lenet5"], folder, data)["lenet5"]
    assert recorded == info.test_accuracy and abs(recorded - measured) <= zoo.TOLERANCE


def test_a_changed_file_fails_its_checksum(tiny, tmp_path):
    folder = tiny[0]
    for file in ("lenet5.pt", "lenet5.json", zoo.CHECKSUMS):
        shutil.copy(folder / file, tmp_path / file)
    meta = json.loads((tmp_path / "lenet5.json").read_text())
    meta["test_accuracy"] = 0.999
    (tmp_path / "lenet5.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="changed by hand"):
        zoo.load_info("lenet5", tmp_path)


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """A folder standing in for the repository's data/zoo on GitHub, as a file:// URL."""
    folder = tmp_path / "remote"
    folder.mkdir()
    monkeypatch.setenv("CNNCOURSE_ZOO_URL", folder.as_uri())
    return folder


def test_a_missing_entry_says_how_to_train_it(tmp_path, remote):
    with pytest.raises(FileNotFoundError, match="python -m cnncourse.zoo train resnet20"):
        zoo.load_pretrained("resnet20", directory=tmp_path / "zoo")


def test_offline_the_message_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNCOURSE_ZOO_URL", "https://example.invalid/zoo/")
    monkeypatch.setattr(zoo, "can_reach", lambda url: False)
    with pytest.raises(FileNotFoundError, match="cannot be reached.*connect to the internet"):
        zoo.load_info("lenet5", tmp_path)


def test_a_missing_entry_is_downloaded_and_checked(tmp_path, remote):
    for file in ("lenet5.pt", "lenet5.json", zoo.CHECKSUMS):
        shutil.copy(zoo.zoo_dir() / file, remote / file)
    cache = tmp_path / "zoo"  # what a pip install starts from: no folder at all
    info = zoo.load_info("lenet5", cache)
    model = zoo.load_pretrained("lenet5", directory=cache)
    assert info == zoo.load_info("lenet5") and sorted(p.name for p in cache.iterdir()) == [
        zoo.CHECKSUMS, "lenet5.json", "lenet5.pt"]
    assert zoo._read_checksums(cache) == {f: zoo._read_checksums(remote)[f] for f in ("lenet5.pt", "lenet5.json")}
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(model(x), zoo.load_pretrained("lenet5")(x))


def test_a_damaged_download_is_refused_and_left_out(tmp_path, remote):
    for file in ("lenet5.pt", zoo.CHECKSUMS):
        shutil.copy(zoo.zoo_dir() / file, remote / file)
    with open(remote / "lenet5.pt", "ab") as f:
        f.write(b"x")
    cache = tmp_path / "zoo"
    with pytest.raises(FileNotFoundError, match="damaged"):
        zoo.load_pretrained("lenet5", directory=cache)
    assert list(cache.iterdir()) == []  # no half or bad file stays behind


def test_obtain_loads_a_shipped_entry_with_its_record():
    got = zoo.obtain("lenet5", train_here=False)
    info = zoo.load_info("lenet5")
    assert not got.trained_here and got.info == info
    assert got.test_accuracy == info.test_accuracy and got.history["loss"] == info.history["loss"]
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(got.model(x), zoo.load_pretrained("lenet5")(x))
    assert "the zoo's checkpoint: 15 epochs" in str(got)


def test_obtain_trains_when_asked():
    got = zoo.obtain("lenet5", train_here=True, device="cpu", smoke=True)
    assert got.trained_here and got.info is None and len(got.history) == 1
    assert not got.model.training and next(got.model.parameters()).device.type == "cpu"
    assert 0 <= got.test_accuracy <= 1 and str(got).startswith("trained here, 1 epochs")


def test_obtain_in_the_smoke_profile_also_runs_the_training_path(monkeypatch):
    calls = []
    monkeypatch.setattr(zoo, "train", lambda name, **kwargs: calls.append((name, kwargs)))
    got = zoo.obtain("lenet5", train_here=False, smoke=True, device="cpu")
    assert not got.trained_here
    assert len(calls) == 1 and calls[0][0] == "lenet5" and calls[0][1]["epochs"] == 1
    assert len(calls[0][1]["data"].train) == 128


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    """The FCN trained for one epoch on 64 canvases, saved into a scratch zoo folder (scored on the test canvases)."""
    folder = tmp_path_factory.mktemp("zoo")
    small = canvas_splits(train_size=64, val_size=32, test_size=32)
    model, history = zoo.train("fcn_canvas", epochs=1, data=small, progress=False)
    info = zoo.save("fcn_canvas", model, history, device="test", train_seconds=1.0, directory=folder)
    return folder, model, history, info


def test_a_segmenter_is_saved_with_its_task_scores(segmenter):
    folder, model, history, info = segmenter
    assert info.recipe.task == "segmentation" and info.recipe.epochs == 1
    assert set(history.keys()) >= {"loss", "pixel_accuracy", "mean_iou", "val_pixel_accuracy", "val_mean_iou"}
    metrics = info.test_metrics
    assert set(metrics) == {"accuracy", "pixel_accuracy", "mean_iou", "loss", "iou"} and len(metrics["iou"]) == 11
    assert info.score == metrics["mean_iou"] and info.test_accuracy == metrics["pixel_accuracy"]
    assert 0 <= metrics["mean_iou"] <= 1 and metrics["pixel_accuracy"] > 0.5  # background, at least
    assert info.macs == summary(zoo.build("fcn_canvas"), (1, 1, 64, 64), receptive_fields=False).total_macs
    loaded = zoo.load_pretrained("fcn_canvas", directory=folder)
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(loaded(x), model.cpu().eval()(x), atol=2e-2, rtol=0)  # stored in float16
    recorded, measured = zoo.verify(["fcn_canvas"], folder)["fcn_canvas"]
    assert recorded == info.score and abs(recorded - measured) <= zoo.TOLERANCE


def test_obtain_trains_a_segmenter_when_asked():
    got = zoo.obtain("fcn_canvas", train_here=True, device="cpu", smoke=True)
    assert got.trained_here and got.task == "segmentation" and len(got.history) == 1
    assert got.score == got.test_metrics["mean_iou"] and 0 <= got.score <= 1
    assert "test mean IoU" in str(got) and got.model(torch.zeros(1, 1, 64, 64)).shape == (1, 11, 64, 64)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """The CenterNet trained for one epoch on 64 canvases, saved into a scratch zoo folder (scored on 500 canvases)."""
    folder = tmp_path_factory.mktemp("zoo")
    small = canvas_splits(train_size=64, val_size=32, test_size=32, targets="boxes")
    model, history = zoo.train("detector_canvas", epochs=1, data=small, progress=False)
    info = zoo.save("detector_canvas", model, history, device="test", train_seconds=1.0, directory=folder)
    return folder, model, history, info


def test_a_detector_is_saved_with_its_task_scores(detector):
    folder, model, history, info = detector
    r = zoo.recipe("detector_canvas")
    assert r.task == "detection" and r.model == "centernet" and r.half and zoo.input_size("detector_canvas") == (
        1, 1, 64, 64)
    assert info.recipe.task == "detection" and info.recipe.epochs == 1
    assert set(history.keys()) == {"loss", "lr", "time", "val_loss", "val_map_50", "val_map"}
    metrics = info.test_metrics
    assert set(metrics) == {"accuracy", "loss", "map", "map_50", "map_75", "ap_50", "ap"} and len(metrics["ap"]) == 10
    assert info.score == metrics["map_50"] == info.test_accuracy and 0 <= metrics["map"] <= metrics["map_50"] <= 1
    assert info.macs == summary(zoo.build("detector_canvas"), (1, 1, 64, 64), receptive_fields=False).total_macs
    loaded = zoo.load_pretrained("detector_canvas", directory=folder)
    assert not loaded.training and isinstance(loaded(torch.rand(2, 1, 64, 64)), list)
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(loaded.dense(x), model.cpu().eval().dense(x), atol=5e-2, rtol=0)  # float16
    recorded, measured = zoo.verify(["detector_canvas"], folder)["detector_canvas"]
    assert recorded == info.score and abs(recorded - measured) <= zoo.TOLERANCE


def test_obtain_trains_a_detector_when_asked():
    got = zoo.obtain("detector_canvas", train_here=True, device="cpu", smoke=True)
    assert got.trained_here and got.task == "detection" and len(got.history) == 1
    assert got.score == got.test_metrics["map_50"] and 0 <= got.score <= 1
    assert "test mAP@0.5" in str(got) and isinstance(got.model(torch.zeros(1, 1, 64, 64)), list)


def test_entries_saved_before_the_tasks_load_as_classifiers():
    info = zoo.load_info("resnet20")  # its JSON has no task, data_kwargs or test_metrics
    assert "test_metrics" not in json.loads((zoo.zoo_dir() / "resnet20.json").read_text())
    assert info.recipe.task == "classification" and info.recipe.data_kwargs == {}
    assert info.test_metrics == {"accuracy": info.test_accuracy} and info.score == info.test_accuracy


def test_cli_lists_entries(capsys):
    lines = []
    assert zoo.main(["list"], out=lines.append) == 0
    table = lines[0].splitlines()
    assert table[0].split()[:2] == ["entry", "model"]
    assert [row.split()[0] for row in table[1:]] == zoo.names()


def test_the_gpu_recipe_is_listed_untrained_and_its_training_path_runs(monkeypatch):
    r = zoo.recipe("resnet20_wide")
    assert r.needs_gpu and r.erasing > 0 and r.label_smoothing > 0 and r.model_kwargs["widths"] == (64, 128, 256)
    lines = []
    zoo.main(["list"], out=lines.append)
    row = next(line for line in lines[0].splitlines() if line.startswith("resnet20_wide"))
    assert ("not trained" in row) == ("resnet20_wide" not in zoo.available())
    # one step on a sliver: shift, flip, random erasing and label smoothing
    _, history = zoo.train("resnet20_wide", epochs=1, data=fashion_mnist(val_size=32, train_size=32), progress=False)
    assert len(history) == 1 and history["loss"][0] > 0
    # training "all" on a CPU leaves the GPU recipes out
    trained = []
    monkeypatch.setattr(zoo, "train", lambda name, **kwargs: trained.append(name) or (None, None))
    record = SimpleNamespace(test_accuracy=0.5, score=0.5, history=[], train_seconds=0.0, device="cpu")
    monkeypatch.setattr(zoo, "save", lambda *args, **kwargs: record)
    monkeypatch.setattr(zoo, "fashion_mnist", lambda *args, **kwargs: None)
    monkeypatch.setattr(zoo, "_commit", lambda: "test")
    monkeypatch.setattr(zoo.distributed, "init_from_env", lambda device=None: torch.device("cpu"))
    assert zoo.main(["train", "--device", "cpu"], out=lambda line: None) == 0
    assert trained == [name for name in zoo.names() if not zoo.recipe(name).needs_gpu]


# --- the shipped zoo ---------------------------------------------------------


def test_every_entry_is_shipped_and_small_enough():
    # GPU recipes may be shipped untrained (no files): the CPU cannot train them in its budget
    cpu_entries = [name for name in zoo.names() if not zoo.recipe(name).needs_gpu]
    assert set(cpu_entries) <= set(zoo.available())
    total = sum(p.stat().st_size for p in zoo.zoo_dir().iterdir())
    assert total <= 40 * 2**20


@pytest.mark.parametrize("name", zoo.available())
def test_shipped_checkpoint_reproduces_its_recorded_test_accuracy(name, data):
    info = zoo.load_info(name)
    assert info.recipe.model == zoo.recipe(name).model
    assert len(info.history) == info.recipe.epochs
    recorded, measured = zoo.verify([name], data=data)[name]
    assert abs(recorded - measured) <= zoo.TOLERANCE, f"{name}: recorded {recorded:.4f}, measured {measured:.4f}"


@pytest.mark.parametrize(
    "name, floor", [("lenet5", 0.90), ("resnet20", 0.935), ("unet_canvas", 0.75), ("detector_canvas", 0.80)]
)
def test_shipped_checkpoints_reach_the_course_targets(name, floor):
    # the scores the chapters promise (accuracy; the U-Net's mean IoU; the detector's mAP at IoU 0.5 on 500 test
    # canvases); the test above proves the records true
    assert zoo.load_info(name).score >= floor


def test_the_shipped_unet_beats_the_fcn():
    unet, fcn = zoo.load_info("unet_canvas"), zoo.load_info("fcn_canvas")
    assert unet.score > fcn.score and unet.test_metrics["iou"][0] > 0.95  # the background, at least, is easy
    assert unet.recipe.epochs == fcn.recipe.epochs and unet.recipe.train_size == fcn.recipe.train_size
