"""cnncourse.interpret: attribution maps equal captum's, hooks never stay behind, bad input says what to pass.

captum (a ``test`` extra) is the library no one here wrote: saliency, Grad-CAM and
occlusion are compared with its ``Saliency``, ``LayerGradCam`` (+
``LayerAttribution.interpolate``) and ``Occlusion`` on the zoo's trained ResNet-20.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnncourse import interpret, zoo
from cnncourse.data import fashion_mnist
from cnncourse.interpret import (
    Channel,
    ClassLogit,
    ClassProbability,
    Layer,
    Neuron,
    activations,
    capture,
    deep_dream,
    deletion_curve,
    fgsm,
    grad_cam,
    maximize_activation,
    occlusion,
    saliency,
    smoothgrad,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-5  # the bar: max difference after the same scaling


@pytest.fixture(scope="module")
def resnet20() -> nn.Module:
    return zoo.load_pretrained("resnet20")


@pytest.fixture(scope="module")
def test_images() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = fashion_mnist().test.tensors
    return X[:200].clone(), y[:200].clone()


@pytest.fixture(scope="module")
def batch(test_images) -> tuple[torch.Tensor, torch.Tensor]:
    return test_images[0][:8], test_images[1][:8]


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # N x 4 x 8 x 8
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 6, 3, padding=1, stride=2),  # N x 6 x 4 x 4
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 3),
    )


def hooks_left(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks]


def grads_left(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.grad is not None]


def last_spatial_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The module that finishes last among those with a 4-D output larger than 1 x 1: the usual Grad-CAM layer."""
    finished: list[tuple[str, object]] = []
    handles = [m.register_forward_hook(lambda m, i, o, n=n: finished.append((n, o)))
               for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    spatial = [n for n, o in finished if isinstance(o, torch.Tensor) and o.dim() == 4 and o.shape[-1] > 1]
    return spatial[-1]


# --- against captum ------------------------------------------------------------------


def test_saliency_equals_captum(resnet20, batch):
    from captum.attr import Saliency

    x, y = batch
    ours = saliency(resnet20, x, y)
    theirs = Saliency(resnet20).attribute(x.clone().requires_grad_(True), target=y, abs=True)
    assert ours.shape == (8, 28, 28)
    theirs = theirs.amax(dim=1)  # the same scaling: max over the input channels
    assert (ours - theirs).abs().max() <= TOLERANCE
    assert ours.max() > 0


@pytest.mark.parametrize("layer", ["layer3", "layer2", "layer3.2.conv2"])
def test_grad_cam_equals_captum(resnet20, batch, layer):
    from captum.attr import LayerAttribution, LayerGradCam

    x, y = batch
    ours = grad_cam(resnet20, x, y, layer)
    coarse = LayerGradCam(resnet20, resnet20.get_submodule(layer)).attribute(
        x.clone().requires_grad_(True), target=y, relu_attributions=True)
    theirs = LayerAttribution.interpolate(coarse, (28, 28), "bilinear")[:, 0]
    assert ours.shape == (8, 28, 28) and (ours >= 0).all()
    scale = theirs.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)  # each map divided by its maximum
    assert (ours / scale - theirs / scale).abs().max() <= TOLERANCE
    torch.testing.assert_close(grad_cam(resnet20, x, y, layer, upsample=False), coarse[:, 0], rtol=1e-5, atol=1e-6)


def test_grad_cam_takes_the_module_itself(resnet20, batch):
    x, y = batch
    torch.testing.assert_close(grad_cam(resnet20, x, y, resnet20.layer3), grad_cam(resnet20, x, y, "layer3"))


@pytest.mark.parametrize("window, stride", [(5, 3), (4, 4), ((7, 3), (2, 3)), (28, 1)])
def test_occlusion_equals_captum(resnet20, batch, window, stride):
    from captum.attr import Occlusion

    x, y = batch[0][:3], batch[1][:3]
    ours = occlusion(resnet20, x, y, window=window, stride=stride)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    theirs = Occlusion(resnet20).attribute(x, target=y, sliding_window_shapes=(1, *pair(window)),
                                           strides=(1, *pair(stride)), baselines=0.0)[:, 0]
    assert ours.shape == (3, 28, 28)
    assert (ours - theirs).abs().max() <= TOLERANCE


def test_occlusion_of_the_whole_image_is_the_drop_to_the_baseline(resnet20, batch):
    x, y = batch[0][:2], batch[1][:2]
    with torch.no_grad():
        drop = resnet20(x).gather(1, y[:, None])[:, 0] - resnet20(torch.full_like(x, 0.5)).gather(1, y[:, None])[:, 0]
    result = occlusion(resnet20, x, y, window=28, stride=28, baseline=0.5)
    torch.testing.assert_close(result, drop.view(2, 1, 1).expand(2, 28, 28), rtol=1e-5, atol=1e-5)


# --- Grad-CAM on other networks ------------------------------------------------------


@pytest.mark.parametrize("layer", ["layer4", "layer3.1.bn2", "layer2.0.bn1"])
def test_grad_cam_on_torchvision_resnet18_with_in_place_relus(layer):
    """bn2's output is modified in place (``out += identity``, then an in-place ReLU), bn1's by the ReLU."""
    from captum.attr import LayerAttribution, LayerGradCam

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()  # random weights: nothing to download
    x = torch.rand(2, 3, 64, 64)
    ours = grad_cam(model, x, [1, 500], layer)
    theirs = LayerAttribution.interpolate(
        LayerGradCam(model, model.get_submodule(layer)).attribute(x.clone().requires_grad_(True), target=[1, 500],
                                                                  relu_attributions=True), (64, 64), "bilinear")[:, 0]
    assert ours.shape == (2, 64, 64) and torch.isfinite(ours).all()
    scale = theirs.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    assert (ours / scale - theirs / scale).abs().max() <= TOLERANCE
    assert not hooks_left(model) and not grads_left(model)


def test_a_module_backward_hook_fails_where_grad_cam_works():
    """Why tensor hooks: a full backward hook on a module whose output is then changed in place raises."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    handle = model.layer4[1].bn2.register_full_backward_hook(lambda module, grad_in, grad_out: None)
    try:
        with pytest.raises(RuntimeError, match="modified inplace"):
            model(x)[0, 1].backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    assert torch.isfinite(grad_cam(model, x, 1, "layer4.1.bn2")).all()


@pytest.mark.parametrize("name", zoo.available(task="classification"))  # every trained classifier
def test_grad_cam_runs_on_every_zoo_model(name):
    model = zoo.load_pretrained(name)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    layer = last_spatial_layer(model, x)
    cam = grad_cam(model, x, [0, 4, 9], layer)
    assert cam.shape == (3, 28, 28) and torch.isfinite(cam).all() and (cam >= 0).all()
    assert not hooks_left(model) and not grads_left(model)


# --- hooks and their clean-up --------------------------------------------------------


def test_activations_are_the_layers_outputs():
    model, x = tiny_cnn(), torch.rand(5, 1, 8, 8)
    maps = activations(model, x, ["0", model[4], "6"])
    assert list(maps) == ["0", "4", "6"]
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(maps["0"], model[0](x))
        torch.testing.assert_close(maps["4"], model[:5](x))
        torch.testing.assert_close(maps["6"], model(x))
    assert not maps["0"].requires_grad and not hooks_left(model)


def test_in_place_operations_after_a_layer_do_not_change_what_was_recorded():
    model, x = tiny_cnn(), torch.rand(5, 1, 8, 8)
    batch_norm = activations(model, x, "1")["1"]  # followed by an in-place ReLU
    assert (batch_norm < 0).any(), "the recorded output was rectified in place"


def test_capture_records_the_gradient_of_each_layer():
    model, x = tiny_cnn().eval(), torch.rand(2, 1, 8, 8)
    with capture(model, ["1", "3"], gradients=True) as seen:
        logits = model(x)
        seen.backward(logits[:, 2].sum())
    # the same gradient, computed without hooks: split the network at layer 3's output
    features = model[:4](x).detach().requires_grad_(True)
    (direct,) = torch.autograd.grad(model[4:](features.clone())[:, 2].sum(), features)
    torch.testing.assert_close(seen.gradients["3"], direct)
    assert seen.gradients["1"].shape == (2, 4, 8, 8)
    assert not hooks_left(model) and not grads_left(model)


def test_a_module_used_twice_is_refused():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(1, 2, 3), relu, nn.Conv2d(2, 2, 3), relu, nn.Flatten(), nn.LazyLinear(3))
    model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="runs more than once.*block that holds it"):
        activations(model, torch.rand(1, 1, 8, 8), "1")
    assert not hooks_left(model)


def test_capture_starts_afresh_for_each_forward_pass():
    model = tiny_cnn().eval()
    with capture(model, "3") as seen:
        for _ in range(3):
            model(torch.rand(1, 1, 8, 8))
            assert seen.calls["3"] == 1


@pytest.mark.parametrize("call", [
    lambda m, x: saliency(m, x, 7),
    lambda m, x: smoothgrad(m, x, 7, samples=2),
    lambda m, x: grad_cam(m, x, 7, "3"),
    lambda m, x: occlusion(m, x, 7, window=4, stride=2),
    lambda m, x: fgsm(m, x, 7, eps=0.1),
    lambda m, x: deletion_curve(m, x, 7, torch.rand(2, 8, 8)),
    lambda m, x: maximize_activation(m, Channel("3", 9), size=(1, 8, 8), steps=2),
    lambda m, x: maximize_activation(m, ClassLogit(5), size=(1, 8, 8), steps=2),
], ids=["saliency", "smoothgrad", "grad_cam", "occlusion", "fgsm", "deletion", "channel", "logit"])
def test_no_hook_gradient_or_mode_change_is_left_behind_even_on_error(call):
    model, x = tiny_cnn().train(), torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="out of range"):
        call(model, x)  # class 7 of 3, channel 9 of 6: found after the forward pass, hooks in place
    assert not hooks_left(model) and not grads_left(model)
    assert all(m.training for m in model.modules()), "the model's train mode was not restored"


def test_functions_leave_the_model_as_they_found_it(resnet20, batch):
    x, y = batch[0][:2], batch[1][:2]
    resnet20.layer1.train()  # a mixed state, restored exactly
    try:
        before = {k: v.clone() for k, v in resnet20.state_dict().items()}
        saliency(resnet20, x, y)
        grad_cam(resnet20, x, y, "layer3")
        occlusion(resnet20, x, y, window=7, stride=7)
        fgsm(resnet20, x, y, eps=0.05)
        maximize_activation(resnet20, Neuron("layer2", 3), steps=2)
        assert [m.training for m in resnet20.modules()] == [m in set(resnet20.layer1.modules())
                                                           for m in resnet20.modules()]
        for k, v in resnet20.state_dict().items():  # batch norm's running statistics included
            assert torch.equal(v, before[k]), k
    finally:
        resnet20.eval()
    assert not hooks_left(resnet20) and not grads_left(resnet20)


# --- bad input says what to pass ------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda m, x: saliency(m, x[0], 0), r"for one image use x\[None\]"),
    (lambda m, x: saliency(m, x.flatten(1), 0), "N x C x H x W"),
    (lambda m, x: saliency(m, (x * 255).to(torch.uint8), 0), "float images"),
    (lambda m, x: saliency(m, x, 3), "3 classes, so use 0 ... 2"),
    (lambda m, x: saliency(m, x, [0, 1, 2]), "one per image"),
    (lambda m, x: grad_cam(m, x, 0, "layer3"), "no layer 'layer3'.*try '0', '1'"),
    (lambda m, x: grad_cam(m, x, 0, "30"), "did you mean '[03]'"),
    (lambda m, x: grad_cam(m, x, 0, nn.Conv2d(1, 1, 1)), "not a submodule"),
    (lambda m, x: grad_cam(m, x, 0, "6"), "Grad-CAM needs a convolutional layer"),
    (lambda m, x: occlusion(m, x, 0, window=9, stride=1), "larger than the 8 x 8 image"),
    (lambda m, x: occlusion(m, x, 0, window=3, stride=4), "use stride <= window"),
    (lambda m, x: smoothgrad(m, x, 0, samples=0), "samples must be"),
    (lambda m, x: fgsm(m, x, 0, eps=-0.1), "eps must be a number >= 0"),
    (lambda m, x: deletion_curve(m, x, 0, torch.rand(2, 4, 4)), r"shape \(2, 8, 8\)"),
    (lambda m, x: maximize_activation(m, Channel("conv9", 0), size=(1, 8, 8)), "no layer 'conv9'"),
    (lambda m, x: maximize_activation(m, Neuron("6", 0), size=(1, 8, 8), steps=1), "use ClassLogit"),
    (lambda m, x: maximize_activation(m, ClassLogit(0), steps=0), "steps must be"),
    (lambda m, x: maximize_activation(m, ClassLogit([0, 1]), start=x[:1].repeat(3, 1, 1, 1)), "one start image"),
    (lambda m, x: deep_dream(m, x, "3", octaves=0), "octaves"),
])
def test_bad_input_raises_a_value_error_that_says_what_to_pass(call, match):
    model, x = tiny_cnn(), torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match=match):
        call(model, x)
    assert not hooks_left(model) and not grads_left(model)


def test_a_model_that_does_not_return_logits_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match="not N x num_classes logits"):
        saliency(model, torch.rand(1, 1, 8, 8), 0)


# --- smoothgrad, deletion, fgsm --------------------------------------------------------


def test_smoothgrad_without_noise_is_saliency_and_is_seeded(resnet20, batch):
    x, y = batch[0][:2], batch[1][:2]
    torch.testing.assert_close(smoothgrad(resnet20, x, y, samples=2, noise=0.0), saliency(resnet20, x, y))
    state = torch.get_rng_state()
    first = smoothgrad(resnet20, x, y, samples=3, seed=1)
    assert torch.equal(torch.get_rng_state(), state), "smoothgrad used the global generator"
    torch.testing.assert_close(first, smoothgrad(resnet20, x, y, samples=3, seed=1))
    assert not torch.allclose(first, smoothgrad(resnet20, x, y, samples=3, seed=2))


def test_deletion_curve_runs_from_the_image_to_the_baseline(resnet20, batch):
    x, y = batch
    curve = deletion_curve(resnet20, x, y, torch.rand(8, 28, 28), steps=4)
    torch.testing.assert_close(curve.fractions, torch.tensor([0, 0.25, 0.5, 0.75, 1.0]), atol=1e-3, rtol=0)
    with torch.no_grad():
        clean = resnet20(x).softmax(1).gather(1, y[:, None])[:, 0]
        blank = resnet20(torch.zeros_like(x)).softmax(1).gather(1, y[:, None])[:, 0]
    torch.testing.assert_close(curve.probabilities[:, 0], clean)
    torch.testing.assert_close(curve.probabilities[:, -1], blank)
    assert curve.area().shape == (8,)


def test_deletion_removes_the_highest_ranked_pixels_first():
    # a "model" whose class-0 logit is the mean of the left half: ranking the left half first kills it at once
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].weight[0] = torch.tensor([[1.0, 1, 0, 0]] * 4).flatten() * 10
    x = torch.ones(1, 1, 4, 4)
    left = torch.tensor([[1.0, 1, 0, 0]] * 4)[None]
    good = deletion_curve(model, x, 0, left, steps=2)
    bad = deletion_curve(model, x, 0, 1 - left, steps=2)
    assert good.probabilities[0, 1] < 0.51 < bad.probabilities[0, 1]
    assert good.area() < bad.area()


def test_fgsm_moves_each_pixel_by_eps_along_the_gradient_sign(resnet20, batch):
    x, y = batch
    assert torch.equal(fgsm(resnet20, x, y, eps=0.0), x)
    free = fgsm(resnet20, x, y, eps=0.1, value_range=None)
    resnet20.eval()
    inputs = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(nn.functional.cross_entropy(resnet20(inputs), y), inputs)
    torch.testing.assert_close(free, x + 0.1 * gradient.sign())
    clamped = fgsm(resnet20, x, y, eps=0.1)
    assert clamped.min() >= 0 and clamped.max() <= 1 and (clamped - x).abs().max() <= 0.1 + 1e-6
    assert not grads_left(resnet20)


def test_fgsm_fools_resnet20(resnet20, test_images):
    x, y = test_images
    with torch.no_grad():
        clean = (resnet20(x).argmax(1) == y).float().mean()
        attacked = (resnet20(fgsm(resnet20, x, y, eps=0.1)).argmax(1) == y).float().mean()
    assert clean > 0.85 and attacked < clean / 2


# --- feature visualization -----------------------------------------------------------


@pytest.fixture(scope="module")
def vgg_small() -> nn.Module:
    return zoo.load_pretrained("vgg_small")


@pytest.mark.parametrize("objective", [
    Neuron("features.11", [0, 5]),  # batch norms: before the ReLU, where a unit is never stuck at 0
    Channel("features.18", [1, 2, 3]),
    Layer("features.8"),
    ClassLogit([0, 9]),
    ClassProbability(3),
], ids=lambda o: type(o).__name__)
def test_maximize_activation_increases_its_objective(vgg_small, objective):
    result = maximize_activation(vgg_small, objective, steps=30, jitter=1, blur_every=4, tv=1.0, l2=0.1)
    assert result.images.shape == (objective.count, 1, 28, 28)
    assert result.history.shape == (30, objective.count)
    assert (result.history[-1] > result.history[0]).all()
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert not hooks_left(vgg_small) and not grads_left(vgg_small)


def test_maximize_activation_is_seeded_and_unregularized_ascent_is_plain_adam():
    model = tiny_cnn().eval()
    a = maximize_activation(model, ClassLogit(1), size=(1, 8, 8), steps=5, seed=3)
    b = maximize_activation(model, ClassLogit(1), size=(1, 8, 8), steps=5, seed=3)
    assert torch.equal(a.images, b.images)
    # without regularizers or clamping: Adam on -logit, started from 0 (no range, no grey) plus the seeded noise
    plain = maximize_activation(model, ClassLogit(1), size=(1, 8, 8), steps=3, seed=0, jitter=0, blur_every=0,
                                value_range=None)
    image = (0.0 + 0.01 * torch.randn((1, 1, 8, 8), generator=torch.Generator().manual_seed(0))).requires_grad_()
    optimizer = torch.optim.Adam([image], lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        (-model(image)[:, 1].sum()).backward()
        optimizer.step()
    torch.testing.assert_close(plain.images, image.detach())


def test_deep_dream_amplifies_the_layer(vgg_small, batch):
    x = batch[0][:2]
    dreamed = deep_dream(vgg_small, x, "features.12", steps=10, octaves=2)
    assert dreamed.shape == x.shape
    before = activations(vgg_small, x, "features.12")["features.12"].pow(2).mean()
    after = activations(vgg_small, dreamed, "features.12")["features.12"].pow(2).mean()
    assert after > before


def test_public_api():
    assert {"activations", "saliency", "smoothgrad", "grad_cam", "occlusion", "deletion_curve",
            "maximize_activation", "deep_dream", "fgsm"} <= set(interpret.__all__)
