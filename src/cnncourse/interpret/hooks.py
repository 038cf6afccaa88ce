"""Reading a network's inside: the feature maps of named layers, and their gradients.

Everything here rests on two kinds of hook, both removed in a ``finally`` so that
a model never keeps a hook after a call, even one that raised:

* a **forward hook** on the module (``module.register_forward_hook``) sees the
  module's output as it is computed;
* a **tensor hook** on that output (``output.register_hook``), registered from the
  forward hook, sees the gradient of that output during the backward pass.

Module *backward* hooks (``register_full_backward_hook``) are not used: they fail
on modules whose output is then modified in place, as the in-place ReLUs of
torchvision's ResNet and of our ``CifarResNet`` do. For the same reason the
forward hook hands the rest of the network a *copy* of the output: an in-place
operation downstream changes the copy, never the tensor that was recorded.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))
    >>> maps = activations(model, torch.rand(2, 1, 8, 8), ["0", "1"])
    >>> maps["0"].shape
    torch.Size([2, 4, 6, 6])
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Sequence
from typing import Union

import torch
from torch import nn

__all__ = ["Capture", "activations", "capture", "layer_names", "resolve_layer"]

#: A layer: its dotted name in ``model.named_modules()`` (``"layer3.1.conv2"``) or the module itself.
LayerRef = Union[str, nn.Module]


def layer_names(model: nn.Module) -> list[str]:
    """Every submodule's dotted name, in the order ``model.named_modules()`` gives them (the model itself left out).

    Example:
        >>> layer_names(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
        ['0', '1']
    """
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, layer: LayerRef) -> tuple[str, nn.Module]:
    """Find a layer of ``model`` by dotted name or by identity.

    Args:
        model: The network.
        layer: A dotted name such as ``"layer3"`` or ``"features.4"``, or a
            module that is part of ``model``.

    Returns:
        ``(name, module)``.

    Raises:
        TypeError: ``layer`` is neither a string nor a module.
        ValueError: No such layer; the message lists the closest names (or the
            model's top-level children) to pass instead.

    Example:
        >>> resolve_layer(nn.Sequential(nn.Conv2d(1, 2, 3)), "0")[0]
        '0'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        for name, module in modules.items():
            if module is layer and name:
                return name, module
        raise ValueError(
            f"the {type(layer).__name__} passed as a layer is not a submodule of this "
            f"{type(model).__name__}: pass one of its own modules (model.layer3) or a name "
            f"such as {_examples(model)}"
        )
    if not isinstance(layer, str):
        raise TypeError(f"a layer is a dotted name (str) or an nn.Module, got {type(layer).__name__}")
    if layer and layer in modules:
        return layer, modules[layer]
    close = difflib.get_close_matches(layer, [n for n in modules if n], n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"try {_examples(model)}"
    raise ValueError(
        f"{type(model).__name__} has no layer {layer!r}: {hint} (the names are those of "
        "model.named_modules(), e.g. from cnncourse.interpret.layer_names(model))"
    )


def _examples(model: nn.Module) -> str:
    children = [name for name, _ in model.named_children()]
    shown = ", ".join(repr(c) for c in children[:6])
    return shown + (", ..." if len(children) > 6 else "") if children else "(the model has no submodules)"


class Capture:
    """What :func:`capture` recorded: each layer's output and, after a backward pass, its gradient.

    Attributes:
        names: The layers, in the order they were asked for.
        outputs: ``{name: output}``, still attached to the autograd graph when
            gradients are recorded (detached copies otherwise).
        gradients: ``{name: d(score)/d(output)}``, filled by the tensor hooks
            during a backward pass (:meth:`backward`, or any ``.backward()``).
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.outputs: dict[str, torch.Tensor] = {}
        self.gradients: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {name: 0 for name in names}

    def reset(self) -> None:
        """Forget the last forward pass (called as each new forward pass of the model starts)."""
        self.outputs.clear()
        self.gradients.clear()
        self.calls = {name: 0 for name in self.names}

    def check_ran(self) -> None:
        """Raise a ValueError naming the layers that the last forward pass did not run."""
        absent = [name for name in self.names if name not in self.outputs]
        if absent:
            raise ValueError(f"layer(s) {absent} did not run in the forward pass: choose layers on the path "
                             "from the input to the output")

    def backward(self, score: torch.Tensor) -> None:
        """Backpropagate ``score`` (a scalar) as far as the captured layers, and no further.

        It runs ``torch.autograd.grad`` with the captured outputs as the inputs,
        so no parameter's ``.grad`` is written; the tensor hooks record the
        gradients in :attr:`gradients` on the way.

        Raises:
            ValueError: ``score`` is not a scalar, or a layer's output does not
                take part in it (a layer after the score, or one without gradient).
        """
        if score.dim() != 0:
            raise ValueError(f"score must be a scalar (e.g. logits[:, k].sum()), got shape {tuple(score.shape)}")
        self.check_ran()
        if score.grad_fn is None:
            raise ValueError("score does not depend on anything that requires grad: compute it from the model's "
                             "output inside the capture block, with gradients enabled")
        frozen = [n for n in self.names if not self.outputs[n].requires_grad]
        if frozen:
            raise ValueError(f"the output of layer(s) {frozen} does not require grad: run the forward pass with "
                             "gradients enabled (outside torch.no_grad) and an input that requires grad")
        try:
            torch.autograd.grad(score, [self.outputs[n] for n in self.names])
        except RuntimeError as error:
            if "not have been used in the graph" not in str(error):
                raise
            raise ValueError(f"score does not depend on every layer of {self.names}: capture layers that "
                             "lie between the input and the score") from None


@contextlib.contextmanager
def capture(
    model: nn.Module, layers: LayerRef | Sequence[LayerRef], *, gradients: bool = False
) -> Iterator[Capture]:
    """Record the outputs (and gradients) of some layers during the forward passes run inside the block.

    Each layer must run once per forward pass (a module reused at several places,
    such as the single ``relu`` of torchvision's ``BasicBlock``, is refused: pick
    its parent block instead). Hooks are removed when the block ends, also when
    it raises.

    Args:
        model: The network.
        layers: One layer or several, by dotted name or as modules.
        gradients: Also record each output's gradient during a backward pass
            (through a tensor hook); the outputs then stay attached to the graph.

    Yields:
        A :class:`Capture`.

    Raises:
        ValueError: A layer does not exist, is given twice, runs more than once
            in a forward pass, or outputs something other than a tensor.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> with capture(model, "0", gradients=True) as seen:
        ...     seen.backward(model(torch.rand(1, 1, 4, 4))[:, 0].sum())
        >>> seen.gradients["0"].shape
        torch.Size([1, 2, 2, 2])
    """
    refs = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
    if not refs:
        raise ValueError("layers is empty: name at least one layer, e.g. layers=['layer3']")
    resolved = [resolve_layer(model, ref) for ref in refs]
    names = [name for name, _ in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"a layer is named twice in {names}: give each layer once")
    seen = Capture(names)
    handles = []

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> torch.Tensor:
            if not isinstance(output, torch.Tensor):
                raise ValueError(
                    f"layer {name!r} ({type(module).__name__}) returns {type(output).__name__}, not a tensor: "
                    "choose a layer whose output is one tensor"
                )
            seen.calls[name] += 1
            if seen.calls[name] > 1:
                raise ValueError(
                    f"layer {name!r} ({type(module).__name__}) runs more than once in a forward pass (a module "
                    "used at several places): choose a module that runs once, such as the block that holds it"
                )
            if gradients and output.requires_grad:
                seen.outputs[name] = output
                output.register_hook(lambda grad: seen.gradients.__setitem__(name, grad.detach()))
            else:
                seen.outputs[name] = output.detach().clone()
            # The rest of the network gets a copy, which in-place operations may change freely.
            return output.clone()

        return hook

    try:
        # Each forward pass of the model starts a fresh record (a loop of passes in one block).
        handles.append(model.register_forward_pre_hook(lambda module, inputs: seen.reset()))
        for name, module in resolved:
            handles.append(module.register_forward_hook(hook_for(name)))
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def activations(
    model: nn.Module, x: torch.Tensor, layers: LayerRef | Sequence[LayerRef]
) -> dict[str, torch.Tensor]:
    """The outputs (feature maps) of some layers for a batch of images.

    The model runs once, in eval mode and without gradients; its train/eval
    modes are restored afterwards, and no hook stays behind.

    Args:
        model: The network.
        x: A batch of images.
        layers: One layer or several, by dotted name (``"layer2"``,
            ``"features.3"``) or as modules.

    Returns:
        ``{name: output}`` in the order of ``layers``, detached, on ``x``'s device.

    Shape:
        ``x``: ``(N, C, H, W)``; each output as the layer gives it, e.g.
        ``(N, C', H', W')`` for a convolution, ``(N, F)`` for a linear layer.

    Raises:
        ValueError: ``x`` is not 4-D, or a layer is unknown (the message says what to pass).

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
        >>> activations(model, torch.rand(5, 1, 8, 8), "1")["1"].shape
        torch.Size([5, 3, 6, 6])
    """
    x = check_images(x)
    with evaluating(model), capture(model, layers) as seen, torch.no_grad():
        model(x.to(model_device(model, x)))
    seen.check_ran()
    return {name: seen.outputs[name].to(x.device) for name in seen.names}


# --- checks shared by the modules of cnncourse.interpret -------------------------------


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode inside the block and restore every submodule's mode after it."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def model_device(model: nn.Module, x: torch.Tensor) -> torch.device:
    """Where the model's parameters live (``x``'s device for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else x.device


def check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` as a floating-point ``N x C x H x W`` batch, or a ValueError that says how to make one."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images, got {type(x).__name__}")
    if x.dim() == 3:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}: pass a batch N x C x H x W; for one image use {name}[None] "
            f"(or {name}.unsqueeze(0))"
        )
    if x.dim() != 4:
        raise ValueError(f"{name} must be a batch of images N x C x H x W, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch: pass at least one image")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}: pass float images, e.g. {name}.float() / 255")
    return x


def check_targets(target: int | Sequence[int] | torch.Tensor, count: int, num_classes: int | None = None,
                  name: str = "target") -> torch.Tensor:
    """One class index per image, as a long tensor of length ``count``.

    Raises:
        ValueError: The wrong number of targets, or one outside ``0 ... num_classes - 1``.
    """
    if isinstance(target, bool):
        raise TypeError(f"{name} must be a class index or one per image, got {target!r}")
    if isinstance(target, int):
        targets = torch.full((count,), target, dtype=torch.long)
    else:
        targets = torch.as_tensor(target)
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer class indices, got dtype {targets.dtype}")
        targets = targets.long().flatten().cpu() if targets.dim() <= 1 else None
        if targets is None or len(targets) not in (1, count):
            shape = tuple(torch.as_tensor(target).shape)
            raise ValueError(f"{name} has shape {shape}: give one class index, or one per image ({count})")
        targets = targets.expand(count).clone()
    if num_classes is not None and ((targets < 0) | (targets >= num_classes)).any():
        bad = targets[(targets < 0) | (targets >= num_classes)][0].item()
        raise ValueError(f"{name} {bad} is out of range: the model has {num_classes} classes, "
                         f"so use 0 ... {num_classes - 1}")
    return targets


def check_logits(logits: object) -> torch.Tensor:
    """The model's output must be ``N x num_classes`` scores."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"the model returned {shape}, not N x num_classes logits: wrap it so that forward returns the "
            "class scores (for GoogLeNet in training mode, call .eval() to drop the auxiliary outputs)"
        )
    return logits
