"""Multi-process (DDP) plumbing: process group set-up, rank helpers, gathering results.

Every function here is the identity (or a constant) in a plain single process, so callers never
branch on "am I distributed?". Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`setup_distributed`
joins the process group: NCCL on CUDA, Gloo on CPU.

Evaluation under DDP: :class:`ShardSampler` gives each rank one *contiguous* block of the
validation set, with no padding, so :func:`gather_cat` / :func:`gather_list` (which concatenate
in rank order) return the results for the whole set, once each, in dataset order. Gather once,
after the loop over batches: ranks may hold different numbers of batches, and each gather is a
collective that every rank must reach.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that logs, writes files and shows progress."""
    return get_rank() == 0


def setup_distributed(device: torch.device) -> tuple[torch.device, bool]:
    """Join the ``torchrun`` process group if there is one; return ``(device, initialised_here)``.

    On CUDA each process takes the GPU named by ``LOCAL_RANK``. ``initialised_here`` tells the
    caller whether it owns the group (and so should destroy it with :func:`teardown_distributed`).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return device, False
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if dist.is_initialized():
        return device, False
    if device.type == "cuda":
        dist.init_process_group(backend="nccl", device_id=device)
    else:
        dist.init_process_group(backend="gloo")
    return device, True


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _comm_device(tensor: torch.Tensor) -> torch.device:
    # NCCL only moves CUDA tensors; Gloo only CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks (a new tensor on the input's device; a copy when single-process)."""
    if not is_distributed():
        return tensor.clone()
    out = tensor.detach().to(_comm_device(tensor)).clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(tensor.device)


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), as a list indexed by rank; ``[obj]`` when single-process."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_list(items: list) -> list:
    """Concatenate every rank's list in rank order (for ragged or non-tensor results)."""
    if not is_distributed():
        return list(items)
    return [item for part in all_gather_object(list(items)) for item in part]


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank, so decisions taken from it agree everywhere."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order; identity when single-process.

    Ranks may hold different numbers of rows; the other dimensions must match (flatten ragged
    outputs such as per-token predictions first, or use :func:`gather_list`).
    """
    if not is_distributed():
        return tensor
    comm = _comm_device(tensor)
    local = tensor.detach().to(comm).contiguous()
    sizes = [int(s) for s in all_gather_object(local.shape[0])]
    longest = max(sizes)
    if local.shape[0] < longest:
        pad = local.new_zeros((longest - local.shape[0], *local.shape[1:]))
        local = torch.cat([local, pad])
    parts = [torch.empty_like(local) for _ in sizes]
    dist.all_gather(parts, local)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)]).to(tensor.device)


class ShardSampler(Sampler[int]):
    """This rank's contiguous block of ``range(n)``, in order, without padding (for evaluation).

    Unlike ``DistributedSampler(drop_last=False)``, no example is repeated to even out the
    shards, so metrics over the gathered results count every example exactly once.
    """

    def __init__(self, n: int, num_replicas: int | None = None, rank: int | None = None):
        self.n = n
        self.num_replicas = get_world_size() if num_replicas is None else num_replicas
        self.rank = get_rank() if rank is None else rank
        per, extra = divmod(n, self.num_replicas)
        self.start = self.rank * per + min(self.rank, extra)
        self.stop = self.start + per + (1 if self.rank < extra else 0)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start
