"""A layer-by-layer table of a model: output shapes, parameters, multiply-accumulates, receptive fields.

:func:`summary` runs the model once, on the meta device whenever it can (only
shapes are computed, so summarising VGG-16 or ResNet-152 at 224 x 224 takes no
memory and no arithmetic), and records with forward hooks what every layer
returns. The result, a :class:`ModelSummary`, prints as a text table, shows as
an HTML table in a notebook, and keeps the numbers for code.

How the numbers are counted:

* **Parameters**: every parameter once, at the first layer that uses it.
* **MACs** (multiply-accumulates) of convolutions and linear layers: one per
  multiply-add, so a 3 x 3 convolution from 64 to 64 channels costs
  ``64 * 9 = 576`` MACs per output value. Biases, batch norm, activations,
  pooling and additions count zero: they are cheap next to the convolutions.
  This is the convention of the "FLOPs" in the ResNet paper's table 1 and of
  the ``_ops`` (GFLOPS) in torchvision's model metadata; a "FLOP" that counts
  the multiply and the add separately is twice as large.
* **Receptive field**: from :func:`cnncourse.arithmetic.receptive_field`,
  which traces the model with ``torch.fx``; left empty for layers after the
  spatial part (``Flatten``, ``Linear``) and for the whole column when the
  model cannot be traced.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from math import prod
from typing import Any

import torch
from torch import nn

from .arithmetic import _batch_norm_passes_through
from .arithmetic import receptive_field as _receptive_field
from .notebook import Table

__all__ = ["LayerSummary", "ModelSummary", "layer_macs", "summary"]

log = logging.getLogger(__name__)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerSummary:
    """One row of a :class:`ModelSummary`.

    Attributes:
        name: The module's path in the model (``"layer1.0.conv1"``), as in
            ``model.named_modules()``; a module called twice gets two rows with
            the same name.
        type: The module's class name.
        output_shape: Shape of the output, batch included (a tuple of shapes
            when the module returns several tensors; None when it returns none).
        params: Parameters counted at this row (each parameter once in the table).
        macs: Multiply-accumulates of this call (its convolutions and linear layers).
        receptive_field: (height, width) of the input region one output unit
            sees, or None (after the spatial part, or untraceable model).
        depth: Nesting level: 1 for the model's children, 2 for theirs, ...
    """

    name: str
    type: str
    output_shape: Shape | tuple[Shape, ...] | None
    params: int
    macs: int
    receptive_field: tuple[int, int] | None
    depth: int


@dataclass(frozen=True)
class ModelSummary:
    """The table that :func:`summary` returns; print it, or show it in a notebook.

    Attributes:
        model: The model's class name.
        input_size: The input shape, batch included.
        rows: One :class:`LayerSummary` per layer call, in the order they ran.
        output_shape: Shape of the model's output (see :attr:`LayerSummary.output_shape`).
        total_params: Number of parameters of the model (shared ones once).
        trainable_params: Those with ``requires_grad``.
        total_macs: Multiply-accumulates of one forward pass on ``input_size``.
        receptive_field: (height, width) at the end of the spatial part, or None.
    """

    model: str
    input_size: Shape
    rows: list[LayerSummary]
    output_shape: Shape | tuple[Shape, ...] | None
    total_params: int
    trainable_params: int
    total_macs: int
    receptive_field: tuple[int, int] | None

    def row(self, name: str) -> LayerSummary:
        """Return the (first) row of the layer called ``name``.

        Raises:
            KeyError: No row has that name (the message lists some).
        """
        for row in self.rows:
            if row.name == name:
                return row
        shown = ", ".join(r.name for r in self.rows[:6]) + (", ..." if len(self.rows) > 6 else "")
        raise KeyError(f"no row is named {name!r}; the rows are {shown}")

    def to_rows(self) -> list[dict[str, Any]]:
        """Return the rows as plain dicts (keys as in :class:`LayerSummary`), e.g. for ``pandas.DataFrame``."""
        return [asdict(row) for row in self.rows]

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["layer", "type", "output shape", "params", "MACs", "receptive field"]
        body = [
            [
                row.name or "(model)",
                row.type,
                _shape_text(row.output_shape),
                f"{row.params:,}",
                f"{row.macs:,}",
                _pair_text(row.receptive_field),
            ]
            for row in self.rows
        ]
        return header, body

    def _footer(self) -> list[str]:
        lines = [
            f"{self.model} on input {list(self.input_size)} -> output {_shape_text(self.output_shape)}",
            f"parameters: {self.total_params:,}{_human(self.total_params)}, trainable {self.trainable_params:,}",
            f"multiply-accumulates: {self.total_macs:,}{_human(self.total_macs, ' MACs')}",
        ]
        outside = self.total_params - sum(row.params for row in self.rows)
        if outside:
            lines.append(f"{outside:,} parameters belong to layers that did not run (such as auxiliary heads)")
        if self.receptive_field is not None:
            lines.append(f"receptive field at the end of the spatial part: {_pair_text(self.receptive_field)}")
        return lines

    def _table(self) -> Table:
        header, body = self._cells()
        return Table(header, body, align="lllrrl", footer=self._footer(), rules=True)

    def __str__(self) -> str:
        return str(self._table())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(f"ModelSummary({self.model})" if cycle else str(self))

    def _repr_html_(self) -> str:
        return self._table()._repr_html_()


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], tuple):
        return ", ".join(_shape_text(s) for s in shape)
    return str(list(shape))


def _pair_text(pair: tuple[int, int] | None) -> str:
    return "-" if pair is None else f"{pair[0]} x {pair[1]}"


def _human(n: int, suffix: str = "") -> str:
    """`` (4.09 G)`` for large numbers, nothing below a thousand."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f" ({n / scale:.2f} {unit}{suffix})"
    return ""


# ---------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------


def layer_macs(module: nn.Module, inputs: tuple, output: Any) -> int:
    """Return the multiply-accumulates of one call of a convolution or linear layer (0 for other layers).

    Args:
        module: The layer.
        inputs: The positional arguments it was called with.
        output: What it returned.

    Returns:
        ``output elements x (in_channels / groups) x kernel area`` for a
        convolution, ``input elements x (out_channels / groups) x kernel area``
        for a transposed convolution, ``output elements x in_features`` for a
        linear layer; biases are not counted.

    Example:
        >>> conv = nn.Conv2d(3, 8, 3, padding=1)
        >>> x = torch.zeros(1, 3, 4, 4)
        >>> layer_macs(conv, (x,), conv(x))  # 8 * 4 * 4 outputs, 3 * 3 * 3 MACs each
        3456
    """
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return inputs[0].numel() * (module.out_channels // module.groups) * prod(module.kernel_size)
    if isinstance(module, nn.modules.conv._ConvNd):
        return output.numel() * (module.in_channels // module.groups) * prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _output_shape(output: Any) -> Shape | tuple[Shape, ...] | None:
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        shapes = tuple(tuple(t.shape) for t in output if isinstance(t, torch.Tensor))
        return shapes or None
    return None


def _input_shape(input_size: Sequence[int]) -> Shape:
    try:
        shape = tuple(int(n) for n in input_size)
    except TypeError:
        raise TypeError(f"input_size must be a tuple of ints such as (3, 224, 224), got {input_size!r}") from None
    if not shape or min(shape) < 1:
        raise ValueError(f"input_size must hold positive sizes, such as (1, 28, 28), got {tuple(input_size)}")
    return (1, *shape) if len(shape) == 3 else shape  # (C, H, W): one image


@dataclass
class _Call:
    module: nn.Module
    name: str
    call: int
    output_shape: Shape | tuple[Shape, ...] | None
    macs: int
    depth: int


def _to_meta(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.is_meta else torch.empty_like(tensor, device="meta")


class _RunFailed(Exception):
    """The forward pass raised; the message names the layer."""


def _run(model: nn.Module, shape: Shape, depth: int | None, *, meta: bool) -> tuple[list[_Call], int, Any]:
    """Run the model once with hooks; return the row calls, the total MACs and the output."""
    names = {module: name for name, module in model.named_modules()}
    is_leaf = {module: next(module.children(), None) is None for module in names}

    def level(name: str) -> int:
        return 0 if name == "" else name.count(".") + 1

    def is_row(module: nn.Module) -> bool:
        d = level(names[module])
        if depth is None:
            return is_leaf[module]
        return d == depth or (is_leaf[module] and d < depth)  # shallower leaves too (``fc`` at depth 2)

    total = [0]
    starts: list[int] = []
    calls: Counter[str] = Counter()
    records: list[_Call] = []
    active: list[str] = []  # the modules running now, outermost first

    def pre_hook(module: nn.Module, args: tuple) -> None:
        starts.append(total[0])
        active.append(names[module])

    def post_hook(module: nn.Module, args: tuple, output: Any) -> None:
        if is_leaf[module]:
            total[0] += layer_macs(module, args, output)
        start = starts.pop()
        active.pop()
        if is_row(module):
            name = names[module]
            records.append(_Call(module, name, calls[name], _output_shape(output), total[0] - start, level(name)))
            calls[name] += 1

    handles = []
    try:
        for module in names:
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook))
        floating = [t for t in chain(model.parameters(), model.buffers()) if t.is_floating_point()]
        dtype = floating[0].dtype if floating else torch.get_default_dtype()
        with torch.no_grad():
            if meta:
                state = {name: _to_meta(t) for name, t in chain(model.named_parameters(), model.named_buffers())}
                x = torch.zeros(shape, dtype=dtype, device="meta")
                with _batch_norm_passes_through(model):  # shapes are all a meta run gives: skip the slow part
                    output = torch.func.functional_call(model, state, (x,))
            else:
                device = floating[0].device if floating else torch.device("cpu")
                output = model(torch.zeros(shape, dtype=dtype, device=device))
    except Exception as err:
        where = repr(active[-1]) if active and active[-1] else "the model's own forward"
        raise _RunFailed(f"{type(model).__name__} fails on an input of size {list(shape)} at {where}: {err}") from err
    finally:
        for handle in handles:
            handle.remove()
    return records, total[0], output


def _receptive_fields(model: nn.Module, shape: Shape):
    if len(shape) != 4:
        return None
    try:
        return _receptive_field(model, shape, include_pointwise=True)
    except Exception as err:  # noqa: BLE001 - the column is optional: any failure leaves it empty
        log.info("no receptive fields for %s: %s", type(model).__name__, err)
        return None


def summary(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    depth: int | None = None,
    receptive_fields: bool = True,
) -> ModelSummary:
    """Tabulate a model layer by layer: output shape, parameters, MACs and receptive field.

    The model runs once in evaluation mode (its training flags are restored
    afterwards) on an input of zeros, on the meta device when every layer
    supports it (no memory, no arithmetic, the model's own tensors untouched),
    otherwise on the model's device.

    Args:
        model: The network.
        input_size: ``(C, H, W)`` for one image, or ``(N, C, H, W)``; the MACs
            are those of the whole input.
        depth: None gives one row per leaf layer (``Conv2d``, ``ReLU``, ...);
            ``depth=1`` one row per child of the model (``layer1``, ``fc``),
            ``depth=2`` one per grandchild (``layer1.0``), and so on, each
            with the parameters and MACs of everything inside it.
        receptive_fields: Compute the receptive field column (it traces the model).

    Returns:
        A :class:`ModelSummary`; ``.total_params``, ``.total_macs`` and
        ``.rows`` hold the numbers.

    Raises:
        ValueError: The model fails on an input of that size (the message
            names the layer), or a bad ``depth``.
        TypeError: ``input_size`` is not a tuple of ints.

    Shape:
        - Input: ``input_size``, e.g. :math:`(C, H, W)`.

    Example:
        >>> from cnncourse.models import resnet18
        >>> s = summary(resnet18(), (3, 224, 224), depth=1)
        >>> s.total_params, round(s.total_macs / 1e9, 3)
        (11689512, 1.814)
        >>> s.row("layer4").output_shape, s.row("layer4").receptive_field
        ((1, 512, 7, 7), (435, 435))
    """
    shape = _input_shape(input_size)
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 1):
        raise ValueError(f"depth must be None (leaf layers) or an int >= 1 (1: the model's children), got {depth!r}")
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        try:
            records, total_macs, output = _run(model, shape, depth, meta=True)
        except _RunFailed as meta_err:
            # Some layer has no meta kernel, or the input does not fit: try real zeros to tell which.
            log.debug("the meta run failed (%s); running on zeros", meta_err)
            try:
                records, total_macs, output = _run(model, shape, depth, meta=False)
            except _RunFailed as err:
                raise ValueError(
                    f"{err} (is the input large enough, with the number of channels the model expects?)"
                ) from err.__cause__
        rf = _receptive_fields(model, shape) if receptive_fields else None
    finally:
        for module, training in modes.items():
            module.training = training

    rf_sizes = {row.name: row.size for row in rf.layers} if rf is not None else {}
    counted: set[int] = set()
    rows = []
    for record in records:
        params = 0
        for p in record.module.parameters():
            if id(p) not in counted:
                counted.add(id(p))
                params += p.numel()
        rows.append(
            LayerSummary(
                name=record.name,
                type=type(record.module).__name__,
                output_shape=record.output_shape,
                params=params,
                macs=record.macs,
                receptive_field=_row_receptive_field(rf, rf_sizes, record),
                depth=record.depth,
            )
        )
    unique = {id(p): p for p in model.parameters()}.values()
    return ModelSummary(
        model=type(model).__name__,
        input_size=shape,
        rows=rows,
        output_shape=_output_shape(output),
        total_params=sum(p.numel() for p in unique),
        trainable_params=sum(p.numel() for p in unique if p.requires_grad),
        total_macs=total_macs,
        receptive_field=rf.size if rf is not None else None,
    )


def _row_receptive_field(rf: Any, sizes: dict[str, tuple[int, int]], record: _Call) -> tuple[int, int] | None:
    if rf is None:
        return None
    # torch.fx names the second call of a module "<name>_1", the third "<name>_2", ...
    key = record.name if record.call == 0 else f"{record.name}_{record.call}"
    if key in sizes:
        return sizes[key]
    if record.name == "":
        return rf.size if len(rf.layers) > 1 else None  # the model is a single layer
    if next(record.module.children(), None) is None:
        return None  # a leaf with no row: after the spatial part
    inside = [row for row in rf.layers if row.name.startswith(record.name + ".")]
    return inside[-1].size if inside else None  # a container: its last layer's field
