"""Batches of in-memory tensors, gathered by index, and shared out among the ranks of a process group."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler, TensorDataset

from .. import distributed

__all__ = ["ShardedSampler", "tensor_loader"]


class ShardedSampler(Sampler[int]):
    """One rank's share of the indices: every ``world_size``-th one from ``rank`` on, as DistributedSampler splits.

    Every epoch starts from one order of all ``num_samples`` indices, the same
    on every rank: ``0, 1, 2, ...``, or, with ``shuffle``, a new permutation
    drawn from a generator seeded with ``seed`` (every rank draws the same
    one, without a ``set_epoch`` call). Rank ``r`` takes the positions
    ``r, r + world_size, r + 2 world_size, ...`` of that order.

    When ``num_samples`` is not a multiple of ``world_size``, the shards
    differ in length by one. ``even=True`` first repeats the start of the
    order until it is a multiple (as ``DistributedSampler`` pads), so every
    rank takes the same number of training steps, which
    DistributedDataParallel needs; a few examples then count twice per epoch.
    ``even=False`` leaves the shards uneven, so that an evaluation counts
    every example exactly once.

    Args:
        num_samples: Size of the dataset.
        rank: This rank (default: :func:`cnncourse.distributed.rank`).
        world_size: Number of ranks (default: :func:`cnncourse.distributed.world_size`).
        shuffle: A new permutation every epoch.
        seed: Seeds the permutations.
        even: Pad the order so that all shards have the same length.

    Example:
        >>> [list(ShardedSampler(5, rank=r, world_size=2)) for r in (0, 1)]
        [[0, 2, 4], [1, 3, 0]]
        >>> [list(ShardedSampler(5, rank=r, world_size=2, even=False)) for r in (0, 1)]
        [[0, 2, 4], [1, 3]]
    """

    def __init__(
        self,
        num_samples: int,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        even: bool = True,
    ) -> None:
        self.rank = distributed.rank() if rank is None else rank
        self.world_size = distributed.world_size() if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in 0..{self.world_size - 1} for world_size {self.world_size}, "
                             f"got {self.rank}")
        self.num_samples, self.shuffle, self.even = num_samples, shuffle, even
        self.generator = torch.Generator().manual_seed(seed) if shuffle else None

    def __len__(self) -> int:
        if self.even:
            return math.ceil(self.num_samples / self.world_size)
        return len(range(self.rank, self.num_samples, self.world_size))

    def __iter__(self) -> Iterator[int]:
        n = self.num_samples
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.even and n % self.world_size:
            padded = math.ceil(n / self.world_size) * self.world_size
            order = order.repeat(math.ceil(padded / n))[:padded]  # repeats the start, as often as needed
        return iter(order[self.rank::self.world_size].tolist())


def tensor_loader(
    dataset: TensorDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    drop_last: bool = False,
    even_shards: bool | None = None,
) -> DataLoader:
    """Batch a :class:`TensorDataset` by index instead of item by item.

    A :class:`~torch.utils.data.BatchSampler` hands the dataset a whole list of
    indices at once, so each batch is one tensor gather rather than
    ``batch_size`` calls and a collate. With ``device`` set, the tensors are
    moved there first: on a GPU the data then stay in device memory and only
    the shuffled indices change each epoch. On CUDA without that, pinned
    memory makes host-to-device copies asynchronous.

    When a process group is initialised (a script run by ``torchrun``, see
    :mod:`cnncourse.distributed`), each rank batches only its shard of the
    data (a :class:`ShardedSampler`): ``batch_size`` is then the batch of one
    rank, and the ranks together see ``world_size`` times as many examples
    per step.

    Args:
        dataset: Tensors with a common first dimension.
        batch_size: Examples per batch (per rank in a process group).
        shuffle: Draw a new permutation each epoch.
        seed: Seed of the shuffling generator, so epochs are reproducible.
        device: Keep the tensors on this device (``None``: where they are).
        drop_last: Drop a last, smaller batch.
        even_shards: In a process group, give every rank the same number of
            examples by repeating a few (see :class:`ShardedSampler`). Default:
            when shuffling, as training needs; an unshuffled (evaluation)
            loader counts every example once.

    Returns:
        A :class:`~torch.utils.data.DataLoader` yielding ``(inputs, targets)``.

    Example:
        >>> ds = TensorDataset(torch.zeros(10, 1, 28, 28), torch.arange(10))
        >>> [len(y) for _, y in tensor_loader(ds, 4)]
        [4, 4, 2]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is not None:
        dataset = TensorDataset(*(t.to(device) for t in dataset.tensors))
    on_cuda = dataset.tensors[0].is_cuda
    if distributed.is_initialized():
        even = shuffle if even_shards is None else even_shards
        sampler = ShardedSampler(len(dataset), shuffle=shuffle, seed=seed, even=even)
    elif shuffle:
        generator = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(dataset, generator=generator)
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(
        dataset,
        sampler=BatchSampler(sampler, batch_size, drop_last=drop_last),
        batch_size=None,  # the sampler already yields whole batches
        pin_memory=torch.cuda.is_available() and not on_cuda,
    )
