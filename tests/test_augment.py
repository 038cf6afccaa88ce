"""cnncourse.augment: per-image augmentation, salt-and-pepper noise, the Fashion-MNIST presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from cnncourse.augment import (
    STRENGTHS,
    AugmentedDataset,
    SaltAndPepper,
    augment_batch,
    fashion_mnist_augmentation,
    random_erasing,
)


def distinct_images(n: int = 32, size: int = 28) -> torch.Tensor:
    """n different images with no left-right symmetry, so that a flip always shows."""
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, size, size, generator=g)


def is_flipped(out: torch.Tensor, image: torch.Tensor) -> bool:
    if torch.equal(out, image):
        return False
    assert torch.equal(out, image.flip(-1)), "neither the image nor its mirror image"
    return True


# --- one draw per batch versus one draw per image ------------------------------------


def test_a_v2_transform_on_a_batch_draws_one_parameter_set():
    images = distinct_images(64)
    flip = v2.RandomHorizontalFlip(p=0.5)
    for seed in range(10):
        torch.manual_seed(seed)
        out = flip(images)
        flipped = {is_flipped(o, i) for o, i in zip(out, images)}
        assert len(flipped) == 1, "the whole batch should be flipped, or none of it"


def test_augment_batch_draws_per_image():
    images = distinct_images(64)
    torch.manual_seed(0)
    out = augment_batch(images, v2.RandomHorizontalFlip(p=0.5))
    flipped = [is_flipped(o, i) for o, i in zip(out, images)]
    assert 10 < sum(flipped) < 54  # Binomial(64, 1/2): both kinds, in about equal numbers


def test_augment_batch_matches_the_transform_when_it_is_deterministic():
    images = distinct_images(5)
    torch.testing.assert_close(augment_batch(images, v2.RandomHorizontalFlip(p=1.0)), images.flip(-1))
    torch.testing.assert_close(augment_batch(images, v2.Identity()), images)


def test_augment_batch_refuses_bad_input():
    with pytest.raises(ValueError, match="N x C x H x W"):
        augment_batch(torch.rand(1, 28, 28), v2.Identity())
    with pytest.raises(ValueError, match="changed an image's shape"):
        augment_batch(torch.rand(2, 1, 28, 28), v2.RandomResizedCrop(20))


def test_affine_parameters_differ_per_image():
    # every image gets its own angle: 16 copies of one image come out 16 different ways
    image = distinct_images(1)
    torch.manual_seed(0)
    out = augment_batch(image.expand(16, -1, -1, -1), v2.RandomRotation(30, interpolation=v2.InterpolationMode.BILINEAR))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 16
    same = v2.RandomRotation(30)(image.expand(16, -1, -1, -1))
    assert all(torch.equal(o, same[0]) for o in same)


# --- AugmentedDataset -----------------------------------------------------------------


@pytest.fixture
def base() -> TensorDataset:
    return TensorDataset(distinct_images(40), torch.arange(40) % 10)


def test_dataset_single_index_and_batch_of_indices(base):
    data = AugmentedDataset(base, v2.RandomHorizontalFlip(p=1.0))
    assert len(data) == 40
    x, y = data[3]
    assert x.shape == (1, 28, 28) and y.item() == 3
    torch.testing.assert_close(x, base.tensors[0][3].flip(-1))
    x, y = data[torch.tensor(4)]
    assert x.shape == (1, 28, 28) and y.item() == 4
    xb, yb = data[[0, 5, 17]]
    assert xb.shape == (3, 1, 28, 28) and yb.tolist() == [0, 5, 7]
    torch.testing.assert_close(xb, base.tensors[0][[0, 5, 17]].flip(-1))
    xb, yb = data[torch.tensor([1, 2])]
    assert xb.shape == (2, 1, 28, 28) and yb.tolist() == [1, 2]
    x, y = data[np.int64(6)]  # numpy integers, as samplers built on numpy give
    assert x.shape == (1, 28, 28) and y.item() == 6
    xb, yb = data[np.array([7, 8])]
    assert xb.shape == (2, 1, 28, 28) and yb.tolist() == [7, 8]


def test_dataset_transforms_each_image_of_a_batch_on_its_own():
    same = TensorDataset(distinct_images(1).expand(64, -1, -1, -1).clone(), torch.zeros(64, dtype=torch.long))
    data = AugmentedDataset(same, v2.RandomHorizontalFlip(p=0.5))
    torch.manual_seed(0)
    xb, _ = data[list(range(64))]
    flipped = [is_flipped(o, same.tensors[0][0]) for o in xb]
    assert 10 < sum(flipped) < 54


def test_dataset_draws_afresh_every_read(base):
    data = AugmentedDataset(base, v2.RandomRotation(30))
    torch.manual_seed(0)
    first, second = data[0][0], data[0][0]
    assert not torch.equal(first, second)


def test_dataset_is_reproducible_under_a_seed(base):
    data = AugmentedDataset(base, fashion_mnist_augmentation("strong"))
    torch.manual_seed(7)
    a = data[list(range(10))][0]
    torch.manual_seed(7)
    b = data[list(range(10))][0]
    torch.testing.assert_close(a, b)


def test_dataset_in_a_dataloader_with_and_without_workers(base):
    data = AugmentedDataset(base, fashion_mnist_augmentation("strong"))

    def batches(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(data, batch_size=16, shuffle=True, num_workers=workers,
                            generator=torch.Generator().manual_seed(3))
        return [torch.cat([x.flatten(1), y[:, None].float()], 1) for x, y in loader]

    torch.manual_seed(0)
    plain = batches(0)
    assert [len(b) for b in plain] == [16, 16, 8]
    torch.manual_seed(0)
    for a, b in zip(plain, batches(0)):
        torch.testing.assert_close(a, b)
    # with workers, each worker's generator is seeded from the loader's: still reproducible
    first, second = batches(1), batches(1)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)


def test_dataset_with_a_batch_sampler(base):
    from torch.utils.data import BatchSampler, SequentialSampler

    data = AugmentedDataset(base, v2.RandomHorizontalFlip(p=1.0))
    loader = DataLoader(data, sampler=BatchSampler(SequentialSampler(data), 16, drop_last=False), batch_size=None)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [16, 16, 8]
    torch.testing.assert_close(torch.cat([x for x, _ in batches]), base.tensors[0].flip(-1))


def test_dataset_refuses_bad_arguments(base):
    with pytest.raises(TypeError, match="callable"):
        AugmentedDataset(base, "flip")
    with pytest.raises(TypeError, match="indexing"):
        AugmentedDataset(3, v2.Identity())
    with pytest.raises(ValueError, match="empty"):
        AugmentedDataset(base, v2.Identity())[[]]


# --- salt and pepper ------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0.01, 0.05, 0.2, 0.5])
def test_salt_and_pepper_replaces_about_amount_of_the_pixels(amount):
    torch.manual_seed(0)
    gray = torch.full((1, 200, 200), 0.5)
    out = SaltAndPepper(amount)(gray)
    values = set(out.unique().tolist())
    assert values <= {0.0, 0.5, 1.0}
    hit = (out != 0.5).float().mean().item()
    assert abs(hit - amount) < 0.01  # 40 000 pixels: the standard error is at most 0.0025
    salt = (out == 1.0).float().sum() / (out != 0.5).float().sum()
    assert abs(salt.item() - 0.5) < 0.05


def test_salt_and_pepper_ratio_and_extremes():
    torch.manual_seed(0)
    gray = torch.full((1, 100, 100), 0.5)
    only_salt = SaltAndPepper(0.3, salt_vs_pepper=1.0)(gray)
    assert set(only_salt.unique().tolist()) == {0.5, 1.0}
    only_pepper = SaltAndPepper(0.3, salt_vs_pepper=0.0)(gray)
    assert set(only_pepper.unique().tolist()) == {0.0, 0.5}
    assert torch.equal(SaltAndPepper(0.0)(gray), gray)
    assert torch.equal(SaltAndPepper(0.5, p=0.0)(gray), gray)
    assert set(SaltAndPepper(1.0)(gray).unique().tolist()) == {0.0, 1.0}


def test_salt_and_pepper_p_is_one_draw_per_call():
    torch.manual_seed(0)
    gray = torch.full((1, 10, 10), 0.5)
    noise = SaltAndPepper(0.5, p=0.3)
    changed = sum(not torch.equal(noise(gray), gray) for _ in range(400))
    assert 80 < changed < 160  # Binomial(400, 0.3): mean 120, sd 9


def test_salt_and_pepper_hits_all_channels_of_a_pixel_and_keeps_the_dtype():
    torch.manual_seed(0)
    colour = torch.full((3, 50, 50), 0.5)
    out = SaltAndPepper(0.2)(colour)
    hit = out != 0.5
    assert torch.equal(hit[0], hit[1]) and torch.equal(hit[1], hit[2])
    assert torch.equal(out[0], out[2])  # the same value in every channel: white or black pixels
    as_bytes = torch.full((3, 50, 50), 128, dtype=torch.uint8)
    out = SaltAndPepper(0.2)(as_bytes)
    assert out.dtype == torch.uint8 and set(out.unique().tolist()) == {0, 128, 255}


def test_salt_and_pepper_on_a_batch_gives_each_image_its_own_pixels():
    torch.manual_seed(0)
    out = SaltAndPepper(0.1)(torch.full((8, 1, 28, 28), 0.5))
    masks = [(o != 0.5) for o in out]
    assert all(not torch.equal(masks[0], m) for m in masks[1:])


def test_salt_and_pepper_generator_is_reproducible_and_leaves_the_global_one_alone():
    image = torch.full((1, 28, 28), 0.5)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = SaltAndPepper(0.1, generator=torch.Generator().manual_seed(5))(image)
    assert torch.equal(torch.get_rng_state(), state)
    b = SaltAndPepper(0.1, generator=torch.Generator().manual_seed(5))(image)
    assert torch.equal(a, b)
    torch.manual_seed(1)
    c = SaltAndPepper(0.1)(image)
    torch.manual_seed(1)
    assert torch.equal(c, SaltAndPepper(0.1)(image))


def test_salt_and_pepper_as_a_v2_transform():
    torch.manual_seed(0)
    image = tv_tensors.Image(torch.full((1, 28, 28), 0.5))
    mask = tv_tensors.Mask(torch.ones(28, 28, dtype=torch.long))
    out_image, out_mask, label = SaltAndPepper(0.3)(image, mask, 4)
    assert isinstance(out_image, tv_tensors.Image) and not torch.equal(out_image, image)
    assert out_mask is mask and label == 4  # masks and labels pass through
    composed = v2.Compose([v2.RandomHorizontalFlip(), SaltAndPepper(0.1)])
    assert composed(torch.rand(1, 28, 28)).shape == (1, 28, 28)
    assert "amount=0.1" in repr(SaltAndPepper(0.1))


def test_salt_and_pepper_refuses_bad_arguments():
    for bad in (dict(amount=1.5), dict(amount=-0.1), dict(p=2), dict(salt_vs_pepper=-1), dict(amount=True)):
        with pytest.raises(ValueError, match="probability"):
            SaltAndPepper(**bad)
    with pytest.raises(TypeError, match="Generator"):
        SaltAndPepper(0.1, generator=0)
    with pytest.raises(ValueError, match="C x H x W"):
        SaltAndPepper(0.1)(torch.rand(28, 28))
    from PIL import Image

    with pytest.raises(TypeError, match="ToImage"):
        SaltAndPepper(0.1)(Image.new("L", (8, 8)))


# --- presets --------------------------------------------------------------------------


@pytest.mark.parametrize("strength", STRENGTHS)
def test_presets_keep_shape_and_range(strength):
    torch.manual_seed(0)
    out = augment_batch(distinct_images(50), fashion_mnist_augmentation(strength))
    assert out.shape == (50, 1, 28, 28) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_preset_none_is_the_identity():
    images = distinct_images(4)
    torch.testing.assert_close(augment_batch(images, fashion_mnist_augmentation("none")), images)


def shifted(image: torch.Tensor, dx: int, dy: int, pad: int = 2) -> torch.Tensor:
    size = image.shape[-1]
    padded = F.pad(image, (pad, pad, pad, pad))
    return padded[..., pad + dy: pad + dy + size, pad + dx: pad + dx + size]


def test_light_preset_is_a_flip_and_a_shift_of_at_most_two_pixels():
    torch.manual_seed(0)
    images = distinct_images(30)
    out = augment_batch(images, fashion_mnist_augmentation("light"))
    candidates = [(flip, dx, dy) for flip in (False, True) for dx in range(-2, 3) for dy in range(-2, 3)]
    seen = set()
    for o, image in zip(out, images):
        matches = [c for c in candidates if torch.equal(o, shifted(image.flip(-1) if c[0] else image, c[1], c[2]))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len({flip for flip, _, _ in seen}) == 2 and len(seen) > 10  # varied draws


def test_presets_never_flip_vertically():
    for strength in STRENGTHS:
        names = [type(t).__name__ for t in fashion_mnist_augmentation(strength).transforms]
        assert "RandomVerticalFlip" not in names


def test_strong_preset_erases_rectangles_sometimes():
    torch.manual_seed(0)
    white = torch.ones(200, 1, 28, 28)
    out = augment_batch(white, fashion_mnist_augmentation("strong"))
    centre = out[:, 0, 8:20, 8:20]  # far from the border, so shifts and rotations leave it white
    erased = (centre == 0).flatten(1).any(1).float().mean().item()
    assert 0.15 < erased < 0.6  # p = 0.5, but a rectangle can fall outside the centre


def test_unknown_preset():
    with pytest.raises(ValueError, match="'light'"):
        fashion_mnist_augmentation("medium")


# --- random_erasing: torchvision's RandomErasing, drawn for a whole batch -----------


def erased_boxes(out: torch.Tensor, value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For images of ones: which were erased, and the heights and widths of their erased pixels."""
    hit = out[:, 0] == value
    return hit.flatten(1).any(1), hit.any(2).sum(1), hit.any(1).sum(1)


def test_random_erasing_erases_one_rectangle_per_image_and_nothing_else():
    x = torch.ones(500, 2, 12, 10)
    out = random_erasing(x, p=1.0, value=-1.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out[:, 0], out[:, 1])  # all channels alike
    erased, heights, widths = erased_boxes(out, value=-1.0)
    assert erased.all() and torch.equal((out[:, 0] == -1).sum((1, 2)), heights * widths)  # a filled rectangle
    assert set(out.unique().tolist()) == {-1.0, 1.0}
    assert (heights < 12).all() and (widths < 10).all()
    assert torch.equal(random_erasing(x, p=0.0), x)


def test_random_erasing_draws_as_torchvision_does():
    # the same distribution of rectangles as v2.RandomErasing applied image by image
    x = torch.ones(3000, 1, 28, 28)
    torch.manual_seed(0)
    ours = random_erasing(x, p=0.5, generator=torch.Generator().manual_seed(0))
    theirs = augment_batch(x, v2.RandomErasing(p=0.5, value=0.0))
    stats = []
    for out in (ours, theirs):
        erased, heights, widths = erased_boxes(out)
        stats.append((erased.float().mean(), heights[erased].float().mean(), widths[erased].float().mean(),
                      (heights * widths)[erased].float().mean() / 784))
    (p1, h1, w1, a1), (p2, h2, w2, a2) = stats
    assert abs(p1 - p2) < 0.05 and abs(h1 - h2) < 0.6 and abs(w1 - w2) < 0.6 and abs(a1 - a2) < 0.01
    assert 0.15 < a1 < 0.2  # the mean of U(0.02, 0.33), a little less after rounding


def test_random_erasing_is_reproducible_and_keeps_dtype():
    x = distinct_images(16).half()
    a = random_erasing(x, generator=torch.Generator().manual_seed(4))
    b = random_erasing(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.dtype == torch.float16


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"p": 1.5}, "probability"),
    ({"scale": (0.5, 0.2)}, "scale"),
    ({"ratio": (0.0, 1.0)}, "ratio"),
])
def test_random_erasing_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_erasing(torch.ones(2, 1, 4, 4), **kwargs)
    with pytest.raises(ValueError, match="N x C x H x W"):
        random_erasing(torch.ones(1, 4, 4))
