"""CenterNet: a one-stage, anchor-free detector that finds objects as the peaks of a heatmap.

Xingyi Zhou, Dequan Wang and Philipp Krähenbühl, *Objects as Points*,
arXiv:1904.07850, 2019.

A backbone maps the image to a feature map at a fraction ``1 / stride`` of
its size (the paper: stride 4). Three small heads read every position of it:

* a **heatmap** of ``num_classes`` channels: the probability (after a sigmoid)
  that the centre of an object of that class falls in this cell;
* a **size**: the object's width and height, in cells;
* an **offset**: where in the cell the centre lies (the stride rounds it off).

Training asks each position to predict what :func:`encode_targets` makes of
the ground truth: a Gaussian hill of the object's class around the cell of
its centre, and the size and offset at that cell only. The loss
(:class:`CenterNetLoss`) is the paper's focal loss on the heatmap (positions
near a centre are penalised less for firing) plus L1 losses on the size and
offset. Detection reads the peaks back (:func:`decode`): a position whose
score is the largest of its 3 x 3 neighbourhood is a detection, with the box
that the size and offset there describe. No anchors, no matching of boxes to
anchors by IoU: each object has one positive position.

What this file changes from the paper:

* the backbone is the encoder of the U-Net of chapter 18 (:class:`~cnncourse.models.UNet`'s
  :class:`~cnncourse.models.DoubleConv`, :class:`~cnncourse.models.Down` and
  :class:`~cnncourse.models.Up` stages) cut at stride 4, widths
  (8, 16, 32, 64, 128) for 64 x 64 canvases: the paper's backbones
  (ResNet with up-convolutions, DLA-34, Hourglass-104) are encoder-decoders
  with a stride-4 output too;
* the Gaussian's standard deviation is a twelfth of the box's width and of
  its height (an ellipse), instead of the paper's radius from an IoU bound
  (about the same for square boxes);
* after the 3 x 3 peak pooling, which the paper uses instead of
  non-maximum suppression, the detections also go through per-class NMS
  (``torchvision.ops.batched_nms``), as torchvision's detectors do;
* the sizes are regressed in cells rather than pixels of the output.

In training mode the network returns its dense output, one ``(N, C + 4,
h, w)`` tensor, and the loss is an ordinary ``loss_fn(outputs, targets)``
whose targets are padded box tensors (:func:`pad_targets`): so
:func:`~cnncourse.fit` trains it unchanged. In evaluation mode it returns
torchvision's detection format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model
from .unet import DoubleConv, Down, Up

__all__ = [
    "CenterNet",
    "CenterNetLoss",
    "DenseTargets",
    "UNetFeatures",
    "centernet",
    "decode",
    "encode_targets",
    "pad_targets",
    "unpad_targets",
]

Detections = list[dict[str, torch.Tensor]]


# --- targets -----------------------------------------------------------------


def pad_targets(targets: Sequence[dict[str, torch.Tensor]], max_items: int | None = None) -> torch.Tensor:
    """Stack detection targets (dicts with ``boxes`` and ``labels``) into one padded tensor.

    Each image has its own number of objects, so torchvision keeps targets
    as a list of dicts. A fixed-size tensor batches like any other target
    (``TensorDataset``, :func:`~cnncourse.data.tensor_loader`, a GPU): row
    ``k`` of image ``n`` is ``(label, x1, y1, x2, y2)``, label 0 marking an
    empty row.

    Args:
        targets: One dict per image, ``boxes (K, 4)`` xyxy and ``labels (K,)`` in 1..C.
        max_items: Rows per image (default: the most objects of any image).

    Returns:
        ``(N, max_items, 5)`` float32.

    Example:
        >>> t = {"boxes": torch.tensor([[1.0, 2, 3, 4]]), "labels": torch.tensor([7])}
        >>> pad_targets([t], 2).tolist()
        [[[7.0, 1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]
    """
    most = max((len(t["labels"]) for t in targets), default=0)
    max_items = most if max_items is None else max_items
    if most > max_items:
        raise ValueError(f"an image has {most} objects, more than max_items={max_items}")
    padded = torch.zeros(len(targets), max_items, 5)
    for n, t in enumerate(targets):
        k = len(t["labels"])
        if k and (t["labels"].min() < 1):
            raise ValueError("labels must be >= 1: 0 is the background and marks empty rows")
        padded[n, :k, 0] = t["labels"].float()
        padded[n, :k, 1:] = t["boxes"].float()
    return padded


def unpad_targets(padded: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """The inverse of :func:`pad_targets`: one dict with ``boxes`` and ``labels`` (int64) per image."""
    out = []
    for rows in padded:
        rows = rows[rows[:, 0] > 0]
        out.append({"boxes": rows[:, 1:].clone(), "labels": rows[:, 0].long()})
    return out


class DenseTargets(NamedTuple):
    """What each position of the output is trained to predict (see :func:`encode_targets`).

    Attributes:
        heatmap: ``(N, C, h, w)`` in [0, 1]: 1 at the cell of each object's
            centre, a Gaussian hill around it, 0 far from every object.
        index: ``(N, K)`` int64, the flat index ``y * w + x`` of each object's centre cell.
        size: ``(N, K, 2)`` width and height in cells.
        offset: ``(N, K, 2)`` where the centre lies in its cell, in [0, 1).
        valid: ``(N, K)`` bool, False for padding rows.
    """

    heatmap: torch.Tensor
    index: torch.Tensor
    size: torch.Tensor
    offset: torch.Tensor
    valid: torch.Tensor


def encode_targets(
    targets: torch.Tensor, *, num_classes: int, stride: int, output_size: tuple[int, int], sigma_scale: float = 1 / 12
) -> DenseTargets:
    """Turn padded boxes into CenterNet's dense targets: the matching of objects to output positions.

    Each object is assigned to one position, the cell of the output map
    that holds its centre ``((x1 + x2) / 2, (y1 + y2) / 2) / stride``. There
    the heatmap of its class is 1 and the size and offset are the object's;
    around it the heatmap falls off as a Gaussian, ``exp(-dx^2 / 2 sx^2 -
    dy^2 / 2 sy^2)`` with ``sx = sigma_scale * width / stride`` (in cells), so
    that positions next to the centre, whose boxes would still fit well,
    are not punished as hard as the background. Where two hills of one class
    overlap, the larger value counts.

    Args:
        targets: ``(N, K, 5)`` padded ``(label, x1, y1, x2, y2)`` rows (:func:`pad_targets`).
        num_classes: Heatmap channels (labels 1..num_classes).
        stride: Input pixels per output cell.
        output_size: ``(h, w)`` of the output map.
        sigma_scale: The Gaussian's standard deviation as a fraction of the box's side.

    Returns:
        :class:`DenseTargets`, on the device of ``targets``.
    """
    h, w = output_size
    labels = targets[..., 0].long()
    valid = labels > 0
    boxes = targets[..., 1:].float()
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2 / stride  # N x K x 2, in cells
    cell = centre.floor().clamp(min=0)
    cell = torch.stack([cell[..., 0].clamp(max=w - 1), cell[..., 1].clamp(max=h - 1)], -1)
    size = (boxes[..., 2:] - boxes[..., :2]) / stride
    sigma = (sigma_scale * size).clamp(min=0.25)  # N x K x 2
    xs = torch.arange(w, device=targets.device, dtype=torch.float32)
    ys = torch.arange(h, device=targets.device, dtype=torch.float32)
    gx = ((xs - cell[..., 0:1]) / sigma[..., 0:1]).square()  # N x K x w
    gy = ((ys - cell[..., 1:2]) / sigma[..., 1:2]).square()  # N x K x h
    hills = torch.exp(-0.5 * (gy[..., :, None] + gx[..., None, :]))  # N x K x h x w
    hills = hills * valid[..., None, None]
    one_hot = F.one_hot((labels - 1).clamp(min=0), num_classes).to(hills.dtype) * valid[..., None]  # N x K x C
    heatmap = (
        (hills[:, :, None] * one_hot[..., None, None]).amax(1)
        if targets.shape[1]
        else hills.new_zeros(len(targets), num_classes, h, w)
    )
    index = (cell[..., 1] * w + cell[..., 0]).long()
    return DenseTargets(heatmap, index, size, centre - cell, valid)


# --- the loss ----------------------------------------------------------------


def focal_loss(logits: torch.Tensor, heatmap: torch.Tensor, *, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's variant of the focal loss (Lin et al., 2017), summed; divide by the number of objects.

    At an object's centre (target 1) the loss is ``-(1 - p)^alpha log p``;
    elsewhere ``-(1 - y)^beta p^alpha log(1 - p)``: the ``p^alpha`` factor
    makes the easy background (almost all positions) count for little, and
    ``(1 - y)^beta`` forgives firing next to a centre.
    """
    logits = logits.float()
    p = logits.sigmoid()
    centre = heatmap == 1
    positive = (1 - p).pow(alpha) * F.logsigmoid(logits)
    negative = (1 - heatmap).pow(beta) * p.pow(alpha) * F.logsigmoid(-logits)
    return -torch.where(centre, positive, negative).sum()


class CenterNetLoss(nn.Module):
    """The training loss of :class:`CenterNet`: focal loss on the heatmap, L1 on sizes and offsets.

    ``loss = focal + size_weight * L1(size) + offset_weight * L1(offset)``,
    each divided by the number of objects in the batch (the paper's weights:
    0.1 and 1).

    Args:
        num_classes: Heatmap channels.
        stride: Input pixels per output cell (the model's ``stride``).
        size_weight, offset_weight: Weights of the regression losses.

    Shape:
        - outputs: ``(N, num_classes + 4, h, w)``, the model's training-mode output;
        - targets: ``(N, K, 5)`` padded boxes (:func:`pad_targets`);
        - output: a scalar.

    Example:
        >>> model = centernet()
        >>> loss_fn = CenterNetLoss(10, stride=model.stride)
        >>> t = pad_targets([{"boxes": torch.tensor([[8.0, 8, 30, 40]]), "labels": torch.tensor([3])}])
        >>> loss_fn(model.train()(torch.rand(1, 1, 64, 64)), t).ndim
        0
    """

    def __init__(
        self, num_classes: int = 10, *, stride: int = 4, size_weight: float = 0.1, offset_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.num_classes, self.stride = num_classes, stride
        self.size_weight, self.offset_weight = size_weight, offset_weight

    def components(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three terms, each divided by the number of objects (unweighted)."""
        c = self.num_classes
        if outputs.shape[1] != c + 4:
            raise ValueError(f"outputs have {outputs.shape[1]} channels; a CenterNet for {c} classes has {c + 4}")
        dense = encode_targets(targets, num_classes=c, stride=self.stride, output_size=tuple(outputs.shape[-2:]))
        count = dense.valid.sum().clamp(min=1)
        regression = outputs[:, c:].float().flatten(2)  # N x 4 x hw
        at_centres = regression.gather(2, dense.index[:, None, :].expand(-1, 4, -1)).transpose(1, 2)  # N x K x 4
        mask = dense.valid[..., None]
        size = ((at_centres[..., :2] - dense.size).abs() * mask).sum()
        offset = ((at_centres[..., 2:] - dense.offset).abs() * mask).sum()
        return {
            "heatmap": focal_loss(outputs[:, :c], dense.heatmap) / count,
            "size": size / count,
            "offset": offset / count,
        }

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        parts = self.components(outputs, targets)
        return parts["heatmap"] + self.size_weight * parts["size"] + self.offset_weight * parts["offset"]


# --- decoding ----------------------------------------------------------------


def decode(
    outputs: torch.Tensor,
    *,
    num_classes: int,
    stride: int,
    image_size: tuple[int, int],
    score_threshold: float = 0.05,
    iou_threshold: float | None = 0.5,
    max_detections: int = 100,
    peaks: bool = True,
) -> Detections:
    """Read detections off the dense output: peaks of the heatmap, their boxes, then per-class NMS.

    Args:
        outputs: ``(N, num_classes + 4, h, w)``, the network's dense output.
        num_classes: Heatmap channels.
        stride: Input pixels per output cell.
        image_size: ``(H, W)`` of the input; boxes are clipped to it.
        score_threshold: Keep detections scoring at least this.
        iou_threshold: Per-class NMS threshold (``torchvision.ops.batched_nms``);
            ``None`` skips NMS.
        max_detections: At most this many per image, the best-scored.
        peaks: Keep only positions whose score is the largest of their 3 x 3
            neighbourhood, of their class (the paper's stand-in for NMS);
            ``False`` reads every position, as a detector without it would.

    Returns:
        One dict per image: ``boxes (D, 4)`` xyxy pixels, ``scores (D,)``,
        ``labels (D,)`` int64 in 1..num_classes, best score first.
    """
    from torchvision.ops import batched_nms  # here: torchvision takes seconds to import

    n, channels, h, w = outputs.shape
    if channels != num_classes + 4:
        raise ValueError(
            f"outputs have {channels} channels; a CenterNet for {num_classes} classes has {num_classes + 4}"
        )
    if outputs.is_meta:  # a shape-only run (summary, diagrams): the values decide what is found, and there are none
        empty = outputs.new_zeros(0)
        return [{"boxes": empty.view(0, 4), "scores": empty, "labels": empty.long()} for _ in range(n)]
    heat = outputs[:, :num_classes].float().sigmoid()
    if peaks:
        heat = heat * (heat == F.max_pool2d(heat, 3, stride=1, padding=1))
    k = min(num_classes * h * w, max(4 * max_detections, 100))
    scores, flat = heat.flatten(1).topk(k)  # N x k, best first
    labels = flat // (h * w) + 1
    position = flat % (h * w)
    regression = outputs[:, num_classes:].float().flatten(2)  # N x 4 x hw
    size, offset = regression.gather(2, position[:, None, :].expand(-1, 4, -1)).split(2, dim=1)  # N x 2 x k
    centre_x = (position % w + offset[:, 0]) * stride
    centre_y = (torch.div(position, w, rounding_mode="floor") + offset[:, 1]) * stride
    half_w, half_h = size[:, 0].clamp(min=0) * stride / 2, size[:, 1].clamp(min=0) * stride / 2
    boxes = torch.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], -1)
    height, width = image_size
    boxes = torch.stack(
        [
            boxes[..., 0].clamp(0, width - 1),
            boxes[..., 1].clamp(0, height - 1),
            boxes[..., 2].clamp(0, width - 1),
            boxes[..., 3].clamp(0, height - 1),
        ],
        -1,
    )
    detections = []
    for b, s, lab in zip(boxes, scores, labels):
        keep = s >= score_threshold
        b, s, lab = b[keep], s[keep], lab[keep]
        if iou_threshold is not None:
            keep = batched_nms(b, s, lab, iou_threshold)
            b, s, lab = b[keep], s[keep], lab[keep]
        detections.append({"boxes": b[:max_detections], "scores": s[:max_detections], "labels": lab[:max_detections]})
    return detections


# --- the network ---------------------------------------------------------------


class UNetFeatures(nn.Module):
    """The U-Net's encoder and the first stages of its decoder: features at ``1 / stride`` of the input.

    Args:
        in_channels: Input channels.
        widths: The encoder's stage widths (each stage after the first halves the size).
        stride: Output stride, a power of 2 from 1 to ``2 ** (len(widths) - 1)``;
            the decoder climbs back from the bottom to it, with skips.
        batch_norm: After every 3 x 3 convolution.

    Attributes:
        out_channels: Width of the output (the width of the encoder stage at that stride).

    Shape:
        - Input: ``(N, in_channels, H, W)``; output: ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (8, 16, 32, 64, 128),
        *,
        stride: int = 4,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        level = int(math.log2(stride)) if stride >= 1 else -1
        if 2**level != stride or not 0 <= level < len(widths):
            raise ValueError(
                f"stride must be a power of 2 from 1 to {2 ** (len(widths) - 1)} for {len(widths)} stages, got {stride}"
            )
        self.stride = stride
        self.encoder = nn.Sequential(
            DoubleConv(in_channels, widths[0], batch_norm=batch_norm),
            *(Down(a, b, batch_norm=batch_norm) for a, b in zip(widths, widths[1:])),
        )
        climbs = list(reversed(list(zip(widths, widths[1:]))))[: len(widths) - 1 - level]
        self.decoder = nn.ModuleList(Up(b, a, batch_norm=batch_norm) for a, b in climbs)
        self.out_channels = widths[level]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        out = x
        for stage in self.encoder:  # N x 8 x 64 x 64, ..., N x 128 x 4 x 4
            out = stage(out)
            skips.append(out)
        out = skips.pop()  # the bottom
        for up in self.decoder:  # N x 64 x 8 x 8, N x 32 x 16 x 16
            out = up(out, skips.pop())
        return out


def _head(in_channels: int, width: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, out_channels, kernel_size=1),
    )


class CenterNet(nn.Module):
    """A CenterNet detector: a backbone and three heads; dense maps in training, detections in evaluation.

    Args:
        backbone: Maps ``(N, C_in, H, W)`` images to ``(N, F, H / stride, W / stride)``
            features; it has attributes ``out_channels`` (``F``) and ``stride``.
        num_classes: Object classes, labelled 1..num_classes (0, the
            background, gets no channel; torchvision's two-stage detectors
            count it, so theirs would be ``num_classes + 1``).
        head_width: Channels of each head's 3 x 3 convolution.
        score_threshold, iou_threshold, max_detections: Of :func:`decode`,
            in evaluation mode.

    Shape:
        - Input: ``(N, C_in, H, W)`` or a list of ``(C_in, H, W)`` images of one size.
        - Training mode: ``(N, num_classes + 4, H / stride, W / stride)``:
          heatmap logits, then width, height, x and y offset.
        - Evaluation mode: a list of ``N`` dicts with ``boxes``, ``scores``
          and ``labels`` (torchvision's format).

    Example:
        >>> model = centernet().eval()
        >>> detections = model(torch.rand(2, 1, 64, 64))
        >>> len(detections), sorted(detections[0])
        (2, ['boxes', 'labels', 'scores'])
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 10,
        *,
        head_width: int = 64,
        score_threshold: float = 0.05,
        iou_threshold: float | None = 0.5,
        max_detections: int = 100,
    ) -> None:
        super().__init__()
        self.backbone, self.num_classes, self.stride = backbone, num_classes, backbone.stride
        features = backbone.out_channels
        self.heatmap = _head(features, head_width, num_classes)
        self.size = _head(features, head_width, 2)
        self.offset = _head(features, head_width, 2)
        if not self.heatmap[-1].bias.is_meta:
            # start every position at a probability of 0.1 (RetinaNet's prior): the background dominates, and
            # a start at 0.5 would bury the first steps under its loss
            nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - 0.1) / 0.1))
        self.score_threshold, self.iou_threshold, self.max_detections = score_threshold, iou_threshold, max_detections

    def dense(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """The dense output, in either mode: ``(N, num_classes + 4, h, w)``."""
        x = _as_batch(images)
        features = self.backbone(x)  # N x F x h x w
        return torch.cat([self.heatmap(features), self.size(features), self.offset(features)], dim=1)

    def postprocess(self, dense: torch.Tensor, image_size: tuple[int, int], **options) -> Detections:
        """Detections from the dense output, by :func:`decode` with this model's settings (``options`` override)."""
        settings = {
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "max_detections": self.max_detections,
        } | options
        return decode(dense, num_classes=self.num_classes, stride=self.stride, image_size=image_size, **settings)

    def detect(self, images: torch.Tensor | Sequence[torch.Tensor], **options) -> Detections:
        """Detections for a batch, with :func:`decode`'s options (``score_threshold``, ``peaks``, ...)."""
        x = _as_batch(images)
        return self.postprocess(self.dense(x), tuple(x.shape[-2:]), **options)

    def forward(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor | Detections:
        return self.dense(images) if self.training else self.detect(images)

    def loss_fn(self, **kwargs) -> CenterNetLoss:
        """A :class:`CenterNetLoss` for this model's classes and stride."""
        return CenterNetLoss(self.num_classes, stride=self.stride, **kwargs)


def _as_batch(images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"images must be a batch (N, C, H, W) or a list of (C, H, W), got {tuple(images.shape)}")
        return images
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"a list of images must hold (C, H, W) tensors of one shape, got {sorted(shapes)}")
    return torch.stack(list(images))


@register_model
def centernet(
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    widths: Sequence[int] = (8, 16, 32, 64, 128),
    stride: int = 4,
    head_width: int = 64,
    **kwargs,
) -> CenterNet:
    """CenterNet for 64 x 64 canvases: a U-Net encoder (8, 16, 32, 64, 128) cut at stride 4, a 16 x 16 output.

    ``widths`` and ``stride`` shape the backbone (:class:`UNetFeatures`); other
    options (``head_width``, ``score_threshold``, ``iou_threshold``,
    ``max_detections``) go to :class:`CenterNet`.
    """
    return CenterNet(UNetFeatures(in_channels, widths, stride=stride), num_classes, head_width=head_width, **kwargs)
