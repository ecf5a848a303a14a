"""Process groups, devices and data sharding for DistributedDataParallel.

Launched by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``), :func:`init_distributed` joins the process group with
``nccl`` when CUDA is used and ``gloo`` otherwise. Without those variables everything runs
in one process and the helpers are no-ops. Multi-node runs use torchrun's standard
rendezvous flags (docs/distributed.md).

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

import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def select_device(name: str = "auto") -> torch.device:
    """``auto``: ``cuda:<LOCAL_RANK>`` when CUDA is available, otherwise ``cpu``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} requested but CUDA is not available; use device=auto or cpu")
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def init_distributed(device: torch.device) -> bool:
    """Join the torchrun process group if launched by torchrun; return whether distributed."""
    if is_distributed():
        return True
    if not launched_by_torchrun():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return True


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: list[float] | torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """Sum a vector of numbers over all processes (float64)."""
    t = torch.as_tensor(values, dtype=torch.float64)
    if is_distributed():
        backend_device = (
            device if (device is not None and dist.get_backend() == "nccl") else torch.device("cpu")
        )
        t = t.to(backend_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu()


def broadcast_object(obj, src: int = 0):
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


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
