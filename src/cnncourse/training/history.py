"""What :func:`~cnncourse.training.fit` returns: one row of numbers per epoch."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch values (``loss``, ``val_loss``, ``accuracy``, ``lr``, ``time`` ...).

    ``history["val_accuracy"]`` is the list of that value over the epochs;
    ``history.rows`` keeps them epoch by epoch. ``stopped_early`` and
    ``best_epoch`` are filled in by :class:`~cnncourse.training.EarlyStopping`.

    Example:
        >>> h = History()
        >>> h.append({"loss": 1.0}); h.append({"loss": 0.5})
        >>> h["loss"], len(h)
        ([1.0, 0.5], 2)
    """

    rows: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

    def append(self, logs: dict[str, float]) -> None:
        self.rows.append(dict(logs))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list[float]:
        if not any(key in row for row in self.rows):
            raise KeyError(f"{key!r} was not recorded; recorded: {', '.join(self.keys())}")
        return [row.get(key, float("nan")) for row in self.rows]

    def keys(self) -> list[str]:
        """Names recorded in any epoch, in first-seen order."""
        return list(dict.fromkeys(key for row in self.rows for key in row))

    @property
    def last(self) -> dict[str, float]:
        """The values of the last epoch."""
        return self.rows[-1] if self.rows else {}

    def best(self, monitor: str = "val_loss", mode: str = "min") -> tuple[int, float]:
        """Return ``(epoch index, value)`` of the best epoch for ``monitor``."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        values = self[monitor]
        recorded = [i for i, value in enumerate(values) if not math.isnan(value)]
        if not recorded:
            raise ValueError(f"every recorded {monitor!r} is NaN: the run diverged")
        pick = min if mode == "min" else max
        index = pick(recorded, key=values.__getitem__)
        return index, values[index]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "stopped_early": self.stopped_early, "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(rows=[dict(r) for r in data["rows"]], stopped_early=data["stopped_early"], best_epoch=data["best_epoch"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the history as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def plot(self, metrics: tuple[str, ...] | None = None, *, title: str | None = None, axes=None):
        """Plot learning curves, one panel per metric, training and validation together.

        Args:
            metrics: Base names to plot (``"loss"``, ``"accuracy"``); by default
                every recorded one except ``lr`` and ``time``.
            title: A title over the panels.
            axes: Existing matplotlib axes to draw into (one per metric), for
                putting two histories side by side.

        Returns:
            The matplotlib ``Figure``.
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        if metrics is None:
            skip = {"lr", "time"}
            metrics = tuple(k for k in self.keys() if not k.startswith("val_") and k not in skip)
        if axes is None:
            from ..viz.style import FIGURE_WIDTH  # the widest figure the book's website shows unscaled

            width = min(4.5 * len(metrics), FIGURE_WIDTH - 0.2)  # a notebook pads saved figures by 0.1 inch
            fig, axes = plt.subplots(1, len(metrics), figsize=(width, 3.2), squeeze=False)
            axes = axes[0]
        fig = axes[0].figure
        epochs = range(1, len(self) + 1)
        for ax, name in zip(axes, metrics):
            for key, style in ((name, "-o"), (f"val_{name}", "--s")):
                if key in self.keys():
                    ax.plot(epochs, self[key], style, markersize=3, label=key)
            if self.best_epoch is not None:
                ax.axvline(self.best_epoch + 1, color="grey", linewidth=0.8, linestyle=":")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(name)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig
