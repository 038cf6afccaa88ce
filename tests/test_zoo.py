"""The model zoo: recipes, the batched augmentation, saving and loading, and the shipped checkpoints."""

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from cnncourse import list_models, zoo
from cnncourse.augment import shift_and_flip
from cnncourse.data import fashion_mnist

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
        assert r.model in list_models()
        out = zoo.build(name)(torch.zeros(2, 1, 28, 28))
        assert out.shape == (2, 10)


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
    record = SimpleNamespace(test_accuracy=0.5, history=[], train_seconds=0.0, device="cpu")
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


@pytest.mark.parametrize("name, floor", [("lenet5", 0.90), ("resnet20", 0.935)])
def test_shipped_checkpoints_reach_the_course_targets(name, floor):
    # the accuracies the architecture chapters promise; the test above proves the records are true
    assert zoo.load_info(name).test_accuracy >= floor
