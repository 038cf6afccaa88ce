"""Tests of cnncourse.data.digits: scikit-learn's 8 x 8 digits as stratified, upsampled splits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnncourse.data import DIGITS_CLASSES, DataSplits, digits

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def original():
    bunch = sklearn_datasets.load_digits()
    return torch.tensor(bunch.images, dtype=torch.float32), torch.tensor(bunch.target)


@pytest.fixture(scope="module")
def data():
    return digits()


def test_default_splits(data):
    assert isinstance(data, DataSplits) and data.classes == DIGITS_CLASSES == tuple("0123456789")
    assert (len(data.train), len(data.val), len(data.test)) == (1797 - 700, 200, 500)
    for split in (data.train, data.val, data.test):
        X, y = split.tensors
        assert X.shape[1:] == (1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.long
        assert X.min() >= 0 and X.max() <= 1
    assert data.test.tensors[1].bincount().tolist() == [50] * 10
    assert data.val.tensors[1].bincount().tolist() == [20] * 10
    assert data.train.tensors[1].bincount().min() == 174 - 70  # the 8s are the rarest digit


def test_size_8_keeps_the_originals_and_the_splits_partition_them(original):
    images, labels = original
    data = digits(size=8)
    X = torch.cat([s.tensors[0] for s in (data.train, data.val, data.test)])
    y = torch.cat([s.tensors[1] for s in (data.train, data.val, data.test)])
    assert len(X) == len(images)
    # every original image appears exactly once, with its label, scaled from 0..16 to [0, 1]
    key = lambda t: [tuple(row) for row in t.flatten(1).tolist()]  # noqa: E731
    ours = sorted(zip(key(X * 16), y.tolist()))
    theirs = sorted(zip(key(images[:, None]), labels.tolist()))
    assert ours == theirs


def test_upsampling_is_bilinear(original):
    data = digits(size=8)
    big = digits(size=28)
    expected = F.interpolate(data.test.tensors[0], size=(28, 28), mode="bilinear", align_corners=False)
    torch.testing.assert_close(big.test.tensors[0], expected)
    assert torch.equal(big.test.tensors[1], data.test.tensors[1])


def test_the_split_is_seeded(data):
    again = digits()
    other = digits(seed=1)
    assert torch.equal(again.test.tensors[0], data.test.tensors[0])
    assert not torch.equal(other.test.tensors[0], data.test.tensors[0])


def test_mean_and_std_come_from_the_training_split(data):
    X = data.train.tensors[0]
    assert data.mean == pytest.approx(X.mean().item()) and data.std == pytest.approx(X.std().item())


def test_split_sizes_can_change_and_val_can_be_empty():
    data = digits(size=16, test_per_class=30, val_per_class=0)
    assert len(data.test) == 300 and len(data.val) == 0 and len(data.train) == 1797 - 300
    assert data.val.tensors[0].shape == (0, 1, 16, 16)
    train, _, test = data.loaders(batch_size=64)
    assert sum(len(y) for _, y in test) == 300 and sum(len(y) for _, y in train) == 1497


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 7}, "size"),
        ({"size": 28.0}, "size"),
        ({"test_per_class": 0}, "test_per_class"),
        ({"val_per_class": -1}, "val_per_class"),
        ({"test_per_class": 150, "val_per_class": 24}, "no training image"),
    ],
)
def test_bad_requests_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        digits(**kwargs)
