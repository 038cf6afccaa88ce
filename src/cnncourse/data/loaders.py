"""Batches of in-memory tensors, gathered by index."""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

__all__ = ["tensor_loader"]


def tensor_loader(
    dataset: TensorDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """Batch a :class:`TensorDataset` by index instead of item by item.

    A :class:`~torch.utils.data.BatchSampler` hands the dataset a whole list of
    indices at once, so each batch is one tensor gather rather than
    ``batch_size`` calls and a collate. With ``device`` set, the tensors are
    moved there first: on a GPU the data then stay in device memory and only
    the shuffled indices change each epoch. On CUDA without that, pinned
    memory makes host-to-device copies asynchronous.

    Args:
        dataset: Tensors with a common first dimension.
        batch_size: Examples per batch.
        shuffle: Draw a new permutation each epoch.
        seed: Seed of the shuffling generator, so epochs are reproducible.
        device: Keep the tensors on this device (``None``: where they are).
        drop_last: Drop a last, smaller batch.

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
    if shuffle:
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
