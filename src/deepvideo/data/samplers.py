"""Index samplers for training and evaluation, in one process or sharded over DDP ranks.

Data order. :class:`EpochSampler` is ``torch.utils.data.DistributedSampler`` (the epoch's
permutation is ``torch.randperm(n, generator=manual_seed(seed + epoch))``, padded to a
multiple of the world size, and rank ``r`` takes positions ``r, r+W, r+2W, ...``). A single
process uses the same class with ``num_replicas=1``, i.e. the same permutation unsharded.
With a per-rank batch of ``B/W``, rank ``r``'s ``k``-th batch holds positions
``k*B + r + W*m`` (``m < B/W``), so the union of the ``W`` rank batches is exactly positions
``k*B .. k*B+B-1``: the single process's ``k``-th global batch of ``B``. DDP averages the
per-rank mean gradients, which equals the gradient of the global-batch mean.
The sampler yields ``(index, epoch)`` pairs so the dataset derives each clip's random
sampling and augmentation from ``(seed, epoch, index)`` alone, independent of worker
processes (persistent workers never see ``set_epoch``), of the number of workers and of
ranks; that is what makes resumed and distributed runs reproduce the data exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler


class EpochSampler(DistributedSampler):
    """``DistributedSampler`` yielding ``(index, epoch)`` and able to skip a prefix.

    Works in a single process (``num_replicas=1, rank=0``). :meth:`set_start` skips the
    first ``n`` items of this rank's epoch order (resuming mid-epoch).
    """

    def __init__(
        self,
        dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for k, i in enumerate(super().__iter__()):
            if k >= self.start:
                yield (int(i), epoch)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation order: rank ``r`` takes ``r, r+W, ...`` with no padding, as ``(index, 0)``.

    Without padding no item is counted twice, so all-reduced sums are exact.
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0):
        self.n, self.num_replicas, self.rank = len(dataset), num_replicas, rank

    def __iter__(self):
        return iter((i, 0) for i in range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))
