"""Transfer learning: freeze and unfreeze parts of a network, give it a new head, take a label budget.

The recipe of chapter 10 in three calls::

    freeze(model.features)              # keep what pretraining learned ...
    replace_head(model, num_classes=5)  # ... and learn a new classifier for the new task
    optimizer = torch.optim.Adam(trainable_parameters(model), lr=1e-3)

Fine-tuning with a learning rate per stage, lower for the early, generic layers
(*discriminative fine-tuning*), is one more call::

    groups = discriminative_param_groups([block1, block2, head], lr=1e-3, lr_decay=0.1)
    optimizer = torch.optim.Adam(groups)  # block1 at 1e-5, block2 at 1e-4, head at 1e-3

and the experiments around it have their own helpers: :func:`class_subset` and
:func:`label_budget` draw a fixed number of labelled examples per class (nested
across budgets), :func:`steps_loader` gives every budget the same number of
optimizer steps, and :func:`pseudo_label` picks the confident predictions on
unlabelled data that self-training adds to its labelled set.

Freezing a network with batch normalization needs care. Setting ``requires_grad`` to
False stops the layer's scale and shift from learning, but not its *running
statistics*: those are buffers, updated by every forward pass in train mode, and in
train mode the layer normalizes with the statistics of the current batch rather than
the stored ones. So a "frozen" block would still drift, and would behave differently in
training and at test time. :func:`freeze` therefore swaps each ``BatchNorm2d`` for a
:class:`FrozenBatchNorm2d`, which always normalizes with the stored statistics, as
torchvision's detection models and timm's ``freeze`` do; :func:`unfreeze` swaps them
back. A swap lasts until undone, and ``model.train()`` cannot undo it (``fit`` calls
``model.train()`` every epoch, so setting the layers to eval mode once would not last).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

__all__ = [
    "FrozenBatchNorm2d",
    "class_subset",
    "count_trainable",
    "discriminative_param_groups",
    "freeze",
    "label_budget",
    "pseudo_label",
    "replace_head",
    "steps_loader",
    "trainable_parameters",
    "unfreeze",
]


class FrozenBatchNorm2d(nn.Module):
    """Batch normalization whose statistics and affine parameters are fixed buffers.

    It computes what ``nn.BatchNorm2d`` computes in eval mode,
    ``(x - running_mean) / sqrt(running_var + eps) * weight + bias`` per channel, in
    train mode too, and it has no parameters, so nothing about it can change while
    the rest of the network trains. ``momentum`` is kept only so that
    :meth:`to_batch_norm` can restore the original layer.

    Args:
        num_features: Number of channels ``C``.
        eps: Added to the variance before the square root.
        momentum: The momentum of the batch norm layer this one replaces.

    Shape:
        Input and output ``(N, C, H, W)``.

    Example:
        >>> bn = nn.BatchNorm2d(8).eval()
        >>> frozen = FrozenBatchNorm2d.from_batch_norm(bn)
        >>> x = torch.randn(2, 8, 5, 5)
        >>> torch.equal(frozen.train()(x), frozen.eval()(x))
        True
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        # kept so that the state dict has the same keys as BatchNorm2d's, and loads into either
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @classmethod
    def from_batch_norm(cls, bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
        """Copy ``bn``'s statistics and affine parameters (ones and zeros if it has none)."""
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError(
                f"{bn} keeps no running statistics (track_running_stats=False), so it always normalizes "
                "with the batch's own statistics and there is nothing to freeze: freeze with batch_norm=False"
            )
        frozen = cls(bn.num_features, bn.eps, bn.momentum)
        with torch.no_grad():
            frozen.running_mean.copy_(bn.running_mean)
            frozen.running_var.copy_(bn.running_var)
            if bn.num_batches_tracked is not None:
                frozen.num_batches_tracked.copy_(bn.num_batches_tracked)
            if bn.affine:
                frozen.weight.copy_(bn.weight)
                frozen.bias.copy_(bn.bias)
        frozen.train(bn.training)  # the mode changes nothing here, but model.training should stay consistent
        return frozen.to(bn.running_mean.device, bn.running_mean.dtype)  # .to leaves the integer counter alone

    def to_batch_norm(self) -> nn.BatchNorm2d:
        """Return a trainable ``nn.BatchNorm2d`` holding the same numbers (always with a scale and shift)."""
        bn = nn.BatchNorm2d(self.num_features, eps=self.eps, momentum=self.momentum)
        bn = bn.to(self.running_mean.device, self.running_mean.dtype)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                getattr(bn, name).copy_(getattr(self, name))
        return bn.train(self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # fold the four vectors into one scale and one shift per channel
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[:, None, None] + shift[:, None, None]

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def _swap(module: nn.Module, kind: type[nn.Module], convert) -> nn.Module:
    """Replace every submodule of type ``kind`` (``module`` itself included) by ``convert(it)``."""
    if isinstance(module, kind):
        return convert(module)
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kind):
                setattr(parent, name, convert(child))  # works for Sequential children too: "0", "bn1"
    return module


def _apply(module: nn.Module, names: tuple[str, ...], change) -> nn.Module:
    """Run ``change`` on ``module``, or on each named submodule, putting replacements in place."""
    if not names:
        return change(module)
    parts = []
    for name in names:  # look every name up first, so that a typo changes nothing
        try:
            parts.append((name, module.get_submodule(name)))
        except AttributeError as error:
            known = ", ".join(n for n, _ in module.named_modules() if n) or "none"
            raise ValueError(f"{type(module).__name__} has no submodule {name!r}; its submodules are: {known}") from error
    for name, part in parts:
        new = change(part)
        if new is not part:  # the part itself was swapped (a batch norm layer): put the new one in its place
            parent_name, _, child_name = name.rpartition(".")
            setattr(module.get_submodule(parent_name), child_name, new)
    return module


def freeze(module: nn.Module, *names: str, batch_norm: bool = True) -> nn.Module:
    """Stop ``module`` (or its submodules ``names``) from learning, batch norm statistics included.

    Every parameter gets ``requires_grad=False``. With ``batch_norm=True`` each
    ``nn.BatchNorm2d`` inside is also replaced by a :class:`FrozenBatchNorm2d` holding
    the same numbers, so the module computes in train mode exactly what it computes in
    eval mode and its running statistics never move (see the module docstring).

    The module is changed in place and returned. Pass a module that lives in the
    model (``model.features``) or name its parts (``freeze(model.features, "conv1",
    "bn1")``), not a slice such as ``model.features[:2]``: a slice is a new container,
    and the batch norm layers swapped in it would never reach the model.

    Args:
        module: The network, or the part of it to freeze.
        *names: Freeze only these submodules of ``module``, given as in
            ``module.named_modules()`` (``"conv1"``, ``"layer4.1.bn2"``).
        batch_norm: Also freeze the statistics of ``BatchNorm2d`` layers. With False
            they keep normalizing each batch with its own statistics and keep
            updating their running averages in train mode; only their scale and shift
            stop learning.

    Returns:
        ``module``, or its frozen replacement if it is itself a ``BatchNorm2d``.

    Raises:
        ValueError: A name is not a submodule; or, with ``batch_norm=True``, a
            ``BatchNorm1d``/``3d`` layer (not swapped: freeze it with
            ``batch_norm=False``) or one without running statistics.

    Example:
        >>> from cnncourse.models import simple_cnn
        >>> model = simple_cnn()
        >>> _ = freeze(model.features)
        >>> type(model.features.bn1).__name__, model.features.conv1.weight.requires_grad
        ('FrozenBatchNorm2d', False)
    """

    def change(part: nn.Module) -> nn.Module:
        if batch_norm:
            others = [m for m in part.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.BatchNorm2d)]
            if others:
                raise ValueError(
                    f"freeze converts only BatchNorm2d layers, and this module holds {type(others[0]).__name__}: "
                    "call freeze(..., batch_norm=False) and put those layers in eval mode yourself"
                )
            part = _swap(part, nn.BatchNorm2d, FrozenBatchNorm2d.from_batch_norm)
        for param in part.parameters():
            param.requires_grad_(False)
        return part

    return _apply(module, names, change)


def unfreeze(module: nn.Module, *names: str) -> nn.Module:
    """Let ``module`` (or its submodules ``names``) learn again, frozen batch norms included.

    Every parameter becomes trainable, and each :class:`FrozenBatchNorm2d` inside
    becomes an ``nn.BatchNorm2d`` with the same numbers, whose scale and shift are
    *new* parameter tensors: build the optimizer after calling this, or it will not
    know about them.

    Args:
        module: The network, or the part of it to unfreeze.
        *names: Unfreeze only these submodules of ``module`` (as for :func:`freeze`).

    Returns:
        ``module``, or its trainable replacement if it is itself a ``FrozenBatchNorm2d``.

    Example:
        >>> from cnncourse.models import simple_cnn
        >>> model = simple_cnn()
        >>> _ = unfreeze(freeze(model))
        >>> type(model.features.bn1).__name__, count_trainable(model)[0] == count_trainable(model)[1]
        ('BatchNorm2d', True)
    """

    def change(part: nn.Module) -> nn.Module:
        part = _swap(part, FrozenBatchNorm2d, FrozenBatchNorm2d.to_batch_norm)
        for param in part.parameters():
            param.requires_grad_(True)
        return part

    return _apply(module, names, change)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that still learn (``requires_grad``): what to hand to an optimizer.

    Example:
        >>> optimizer = torch.optim.Adam(trainable_parameters(model), lr=1e-3)  # doctest: +SKIP
    """
    return [p for p in model.parameters() if p.requires_grad]


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """Return ``(trainable, total)`` numbers of parameters of ``model``.

    Buffers (batch norm statistics, also those of :class:`FrozenBatchNorm2d`) are
    not parameters and are not counted.

    Example:
        >>> count_trainable(nn.Linear(3, 2))
        (8, 8)
    """
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Give ``model`` a fresh, randomly initialised last linear layer with ``num_classes`` outputs.

    The head is found where torchvision and :func:`cnncourse.models.simple_cnn` put
    it: ``model.fc`` (ResNet, GoogLeNet), ``model.classifier`` when it is a linear
    layer (DenseNet), or the last layer of ``model.classifier`` when that is an
    ``nn.Sequential`` ending in one (simple_cnn, VGG, AlexNet, MobileNet,
    EfficientNet). The new layer keeps the old one's input size, bias, device and
    dtype, and is trainable even if the rest of the model is frozen.

    Args:
        model: The network.
        num_classes: Outputs of the new head.

    Returns:
        The new head (also reachable through ``model``), handy for optimizer groups.

    Raises:
        ValueError: ``num_classes < 1``, or the model has no head of these forms.

    Example:
        >>> from cnncourse.models import simple_cnn
        >>> model = simple_cnn(num_classes=10)
        >>> head = replace_head(model, 5)
        >>> model.classifier.fc is head, model(torch.zeros(1, 1, 28, 28)).shape
        (True, torch.Size([1, 5]))
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    fc = getattr(model, "fc", None)
    classifier = getattr(model, "classifier", None)
    if isinstance(fc, nn.Linear):
        parent, name, old = model, "fc", fc
    elif isinstance(classifier, nn.Linear):
        parent, name, old = model, "classifier", classifier
    elif isinstance(classifier, nn.Sequential) and len(classifier) and isinstance(classifier[-1], nn.Linear):
        parent, name, old = classifier, list(classifier._modules)[-1], classifier[-1]
    else:
        raise ValueError(
            f"cannot find the head of {type(model).__name__}: replace_head looks for an nn.Linear at model.fc, "
            "at model.classifier, or at the end of an nn.Sequential model.classifier; replace the last layer "
            "yourself with setattr(parent, name, nn.Linear(in_features, num_classes))"
        )
    head = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    head = head.to(old.weight.device, old.weight.dtype)
    setattr(parent, name, head)
    return head


def class_subset(
    dataset: TensorDataset,
    classes: Sequence[int],
    *,
    per_class: int | None = None,
    seed: int = 0,
    relabel: bool = True,
) -> TensorDataset:
    """Keep the examples of ``classes``, optionally only ``per_class`` of each (a label budget).

    The examples of each class are drawn in the order of one seeded permutation of
    the whole data set, so budgets are nested: with the same seed, the 10 images per
    class of a small budget are among the 50 of a larger one, and which images of a
    class are drawn does not depend on the other classes asked for. The kept
    examples stay in their original order.

    Args:
        dataset: A ``TensorDataset(X, y)`` with integer labels ``y``, as in
            :mod:`cnncourse.data`.
        classes: The labels to keep, distinct, in the order that defines the new
            labels.
        per_class: Keep this many examples of each class (``None``: all of them).
        seed: Seed of the draw.
        relabel: Renumber the labels ``classes[i] -> i``, so that a head with
            ``len(classes)`` outputs fits; with False the original labels stay.

    Returns:
        A ``TensorDataset(X_subset, y_subset)``.

    Raises:
        ValueError: ``classes`` is empty, has repeats or labels that do not occur,
            ``per_class < 1``, or a class has fewer than ``per_class`` examples.

    Example:
        >>> ds = TensorDataset(torch.zeros(6, 1, 2, 2), torch.tensor([0, 1, 2, 1, 2, 2]))
        >>> class_subset(ds, [2, 1], per_class=2).tensors[1].bincount().tolist()
        [2, 2]
    """
    X, y = _labelled_tensors(dataset, "class_subset")
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be a non-empty list of distinct labels, got {classes}")
    _check_per_class(per_class, allow_none=True)
    index = _draw(y, classes, per_class, seed)
    labels = y[index]
    if relabel:
        lookup = torch.full((int(y.max()) + 1,), -1, dtype=y.dtype)
        lookup[torch.tensor(classes)] = torch.arange(len(classes), dtype=y.dtype)
        labels = lookup[labels]
    return TensorDataset(X[index], labels)


def _labelled_tensors(dataset: TensorDataset, caller: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(dataset, TensorDataset) or len(dataset.tensors) != 2:
        count = len(dataset.tensors) if isinstance(dataset, TensorDataset) else "no"
        raise ValueError(f"{caller} needs a TensorDataset(X, y), got one with {count} tensors")
    X, y = dataset.tensors
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.ndim != 1:
        raise ValueError(f"labels must be a 1-D integer tensor, got dtype {y.dtype} and shape {tuple(y.shape)}")
    return X, y


def _check_per_class(per_class: int | None, *, allow_none: bool) -> None:
    if per_class is None and allow_none:
        return
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive int{' or None' if allow_none else ''}, got {per_class!r}")


def _draw(y: torch.Tensor, classes: Sequence[int], per_class: int | None, seed: int) -> torch.Tensor:
    """Indices of the first ``per_class`` examples of each class in one seeded permutation, sorted."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    shuffled = y[order]
    keep = []
    for c in classes:
        drawn = order[shuffled == c]  # the indices of class c, in the permutation's order
        if len(drawn) == 0:
            raise ValueError(f"class {c} does not occur in the data set (labels present: {y.unique().tolist()})")
        if per_class is not None:
            if len(drawn) < per_class:
                raise ValueError(f"class {c} has only {len(drawn)} examples, fewer than per_class={per_class}")
            drawn = drawn[:per_class]
        keep.append(drawn)
    return torch.cat(keep).sort().values


def label_budget(dataset: TensorDataset, per_class: int, *, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Split a labelled data set into a label budget and the rest, the unlabelled pool.

    The budget holds ``per_class`` examples of every class that occurs, drawn
    exactly as :func:`class_subset` draws them (so budgets are nested, and the
    budget equals ``class_subset(dataset, classes, per_class=per_class, seed=seed,
    relabel=False)``). The pool holds every other example. It keeps its labels
    only so that an experiment can measure how good its guesses about them are
    (see :func:`pseudo_label`); a learner that claims to use unlabelled data must
    not read them.

    Args:
        dataset: A ``TensorDataset(X, y)`` with integer labels.
        per_class: Labelled examples per class.
        seed: Seed of the draw.

    Returns:
        ``(labelled, pool)``, two ``TensorDataset`` s in the original order.

    Raises:
        ValueError: ``per_class < 1``, or a class has fewer than ``per_class`` examples.

    Example:
        >>> ds = TensorDataset(torch.arange(8.0), torch.tensor([0, 1, 0, 1, 0, 1, 0, 1]))
        >>> labelled, pool = label_budget(ds, 1)
        >>> len(labelled), len(pool), labelled.tensors[1].bincount().tolist()
        (2, 6, [1, 1])
    """
    X, y = _labelled_tensors(dataset, "label_budget")
    _check_per_class(per_class, allow_none=False)
    index = _draw(y, y.unique().tolist(), per_class, seed)
    rest = torch.ones(len(y), dtype=torch.bool)
    rest[index] = False
    return TensorDataset(X[index], y[index]), TensorDataset(X[rest], y[rest])


class _Passes(Sampler[list[int]]):
    """``steps`` batches of indices from successive seeded permutations of ``range(n)``."""

    def __init__(self, n: int, batch_size: int, steps: int, seed: int) -> None:
        self.n, self.batch_size, self.steps = n, min(batch_size, n), steps
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        stream: list[int] = []
        for _ in range(self.steps):
            if len(stream) < self.batch_size:  # a new pass; a batch never holds an example twice
                stream += torch.randperm(self.n, generator=self.generator).tolist()
            batch, stream = stream[: self.batch_size], stream[self.batch_size :]
            yield batch


def steps_loader(dataset: TensorDataset, batch_size: int, steps: int, *, seed: int = 0) -> DataLoader:
    """Exactly ``steps`` shuffled batches of ``dataset``, however large or small it is.

    Comparing label budgets fairly means giving each the same number of
    optimizer steps: 50 images make many passes, 1 000 images few. One pass of
    this loader is the whole training run, so ``fit(model, loader, epochs=1)``
    takes ``steps`` steps, without the per-epoch work (evaluation, logging) that
    hundreds of tiny epochs would cost. The batches walk through successive
    seeded permutations of the examples; a batch holds ``min(batch_size,
    len(dataset))`` distinct examples, and every example is seen once before any
    is seen again (a batch may span the end of one pass and the start of the next).

    Args:
        dataset: The training examples.
        batch_size: Examples per batch (at most ``len(dataset)`` are used).
        steps: Batches in one pass of the loader.
        seed: Seed of the shuffling; a second pass of the loader continues the
            random stream rather than repeating it.

    Returns:
        A :class:`~torch.utils.data.DataLoader` of ``steps`` batches.

    Example:
        >>> ds = TensorDataset(torch.arange(10.0), torch.zeros(10, dtype=torch.long))
        >>> [len(y) for _, y in steps_loader(ds, 4, steps=5)]
        [4, 4, 4, 4, 4]
    """
    for name, value in (("batch_size", batch_size), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if len(dataset) == 0:
        raise ValueError("the data set is empty: there is nothing to train on")
    return DataLoader(dataset, sampler=_Passes(len(dataset), batch_size, steps, seed), batch_size=None)


def discriminative_param_groups(
    stages: Sequence[nn.Module | Iterable[nn.Parameter]],
    *,
    lr: float,
    lr_decay: float = 0.1,
) -> list[dict]:
    """Optimizer parameter groups whose learning rate falls stage by stage towards the input.

    *Discriminative fine-tuning* (Howard and Ruder, 2018, "Universal Language Model
    Fine-tuning for Text Classification", arXiv:1801.06146): the last stage, usually
    the new head, learns at ``lr``, the stage before it at ``lr * lr_decay``, the one
    before that at ``lr * lr_decay**2``, and so on, so that the early, generic layers
    move least. Parameters that do not require gradients (frozen stages) are left
    out, and so are stages left empty by that.

    Args:
        stages: The network's stages from the input to the output, each a module
            or an iterable of parameters (``[*model.features.conv1.parameters(),
            *model.features.bn1.parameters()]``). Every parameter may appear once.
        lr: Learning rate of the last stage.
        lr_decay: Factor between the rates of two neighbouring stages (ULMFiT used
            1 / 2.6); 1 gives every stage the same rate.

    Returns:
        A list of ``{"params": [...], "lr": ...}`` dicts, first stage first, for any
        ``torch.optim`` optimizer.

    Raises:
        ValueError: ``lr`` or ``lr_decay`` is not positive, no stage has a trainable
            parameter, or a parameter appears in two stages.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 1))
        >>> groups = discriminative_param_groups(list(model), lr=1e-2)
        >>> [round(g["lr"], 6) for g in groups]
        [0.0001, 0.001, 0.01]
    """
    if not lr > 0 or not lr_decay > 0:
        raise ValueError(f"lr and lr_decay must be positive, got lr={lr!r} and lr_decay={lr_decay!r}")
    stages = list(stages)
    groups, seen = [], set()
    for i, stage in enumerate(stages):
        params = list(stage.parameters()) if isinstance(stage, nn.Module) else list(stage)
        for p in params:
            if id(p) in seen:
                raise ValueError(f"a parameter of shape {tuple(p.shape)} appears in two stages (stage {i} again)")
            seen.add(id(p))
        trainable = [p for p in params if p.requires_grad]
        if trainable:
            groups.append({"params": trainable, "lr": lr * lr_decay ** (len(stages) - 1 - i)})
    if not groups:
        raise ValueError("no stage has a parameter that requires gradients: there is nothing to train")
    return groups


def pseudo_label(
    logits: torch.Tensor,
    *,
    per_class: int | None = None,
    threshold: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose the unlabelled examples a model is surest about, with its guesses as their labels.

    Self-training (pseudo-labelling) trains a model on its labelled data, predicts
    the unlabelled pool, adds the confident predictions as if they were labels and
    trains again (Lee, 2013, "Pseudo-Label: The Simple and Efficient
    Semi-Supervised Learning Method for Deep Neural Networks"). Confidence is the
    softmax probability of the predicted class. With ``per_class`` the choice is
    balanced, the ``per_class`` most confident examples predicted as each class (or
    all of them, if fewer are), so that a class the model favours cannot crowd out
    the others; with ``threshold`` only predictions at least that probable are kept;
    with both, both rules apply.

    Args:
        logits: ``N x num_classes`` outputs of the model on the unlabelled examples.
        per_class: Keep at most this many examples per predicted class.
        threshold: Keep only predictions with a probability of at least this.

    Returns:
        ``(index, labels)``: positions into ``logits``, most confident first within
        each class, and the predicted classes there.

    Raises:
        ValueError: Neither rule is given, ``per_class < 1``, a threshold outside
            [0, 1], or logits that are not ``N x num_classes``.

    Example:
        >>> logits = torch.tensor([[4.0, 0.0], [0.2, 0.0], [0.0, 3.0], [0.0, 1.0]])
        >>> index, labels = pseudo_label(logits, per_class=1)
        >>> index.tolist(), labels.tolist()
        ([0, 2], [0, 1])
    """
    if per_class is None and threshold is None:
        raise ValueError("give per_class, threshold or both: pseudo_label needs a rule for what is confident")
    if per_class is not None:
        _check_per_class(per_class, allow_none=False)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a probability between 0 and 1, got {threshold!r}")
    if logits.ndim != 2:
        raise ValueError(f"logits must be N x num_classes, got shape {tuple(logits.shape)}")
    confidence, guess = logits.detach().float().softmax(dim=1).max(dim=1)
    keep = []
    for c in range(logits.shape[1]):
        index = torch.nonzero(guess == c).flatten()
        index = index[confidence[index].argsort(descending=True, stable=True)]
        if threshold is not None:
            index = index[confidence[index] >= threshold]
        if per_class is not None:
            index = index[:per_class]
        keep.append(index)
    index = torch.cat(keep)
    return index, guess[index]
