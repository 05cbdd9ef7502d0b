"""From a map-style dataset to batches on the device: samplers, loaders, moving tensors.

:class:`LengthGroupedBatchSampler` puts examples of similar length in the same batch, so that
with a dynamic-padding collate a batch of short texts is not padded to the longest text in the
data set. Pass it to :func:`shared.training.fit` as ``train_batch_sampler``::

    sampler = LengthGroupedBatchSampler([len(ids) for ids in train.input_ids], cfg.train.batch_size,
                                        seed=cfg.train.seed)
    fit(model, task, train, valid, cfg.train, out_dir, collate_fn=pad_batch, train_batch_sampler=sampler)

Under DDP each rank must draw a different part of the training data and step the same number of
times; both the default sampler of :func:`make_train_loader` and the length-grouped one do.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler

from shared import distributed


def move_to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor inside dicts/lists/tuples to ``device``; leave other values alone.

    Mappings come back as plain dicts (so ``model(**batch)`` works); with ``channels_last``,
    4-D float tensors (images) are laid out NHWC to match a channels-last model.
    """
    if isinstance(batch, torch.Tensor):
        out = batch.to(device, non_blocking=True)
        if channels_last and out.dim() == 4 and out.is_floating_point():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, channels_last) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, channels_last) for v in batch)
    return batch


def default_batch_size(batch: Any) -> int:
    """Examples in a batch: the first dim of the first tensor, or the length of a leading list of
    per-example items (as in detection's ``(images, targets)``)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, Mapping):
        return default_batch_size(next(iter(batch.values()), None))
    if isinstance(batch, (list, tuple)) and batch:
        first = batch[0]
        return len(first) if isinstance(first, (list, tuple)) else default_batch_size(first)
    return 0


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Seeded, epoch-aware, DDP-aware batches of indices that group similar lengths together.

    Each epoch: shuffle all indices (seed + epoch), cut them into mega-batches of
    ``batch_size * num_replicas * mega_batch_factor``, sort each mega-batch by length and cut it
    into batches, then shuffle the batch order, keeping the batch with the longest example first
    so that an out-of-memory error shows up on the first step, not hours in. Under DDP every rank
    gets the same number of batches (a few are repeated to even them out), which DDP requires.

    ``num_replicas`` / ``rank`` default to the current process group (1 / 0 without one).
    ``shuffle=False`` gives a deterministic length-sorted order (longest first), handy for
    inference.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        mega_batch_factor: int = 50,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.mega_batch_factor = mega_batch_factor
        self.num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
        self.rank = distributed.get_rank() if rank is None else rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle differently (but reproducibly) for each epoch; the training loop calls this."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = torch.argsort(self.lengths, descending=True, stable=True)
            batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        else:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            perm = torch.randperm(n, generator=gen)
            mega = self.batch_size * self.num_replicas * self.mega_batch_factor
            batches = []
            for start in range(0, n, mega):
                chunk = perm[start : start + mega]
                chunk = chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)]
                batches.extend(chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size))
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
            if batches:
                longest = max(range(len(batches)), key=lambda b: int(self.lengths[batches[b]].max()))
                batches[0], batches[longest] = batches[longest], batches[0]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        return batches

    def _per_rank(self) -> int:
        # Mega-batches are whole multiples of batch_size, so only the very last batch can be short.
        n = len(self.lengths)
        if self.drop_last:
            return (n // self.batch_size) // self.num_replicas
        batches = (n + self.batch_size - 1) // self.batch_size
        return (batches + self.num_replicas - 1) // self.num_replicas

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        per_rank = self._per_rank()
        if self.drop_last:
            batches = batches[: per_rank * self.num_replicas]
        elif batches:
            # Repeat leading batches so every rank steps the same number of times.
            need = per_rank * self.num_replicas - len(batches)
            batches = batches + [batches[i % len(batches)] for i in range(need)]
        yield from batches[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        return self._per_rank()


class ResumableBatches(Sampler[list[int]]):
    """Wraps a batch sampler so that an epoch can start ``skip`` batches in (resuming mid-epoch)
    without loading the skipped data; forwards ``set_epoch`` to the sampler(s) inside."""

    def __init__(self, inner: Sampler[list[int]]):
        self.inner, self.skip = inner, 0

    def set_epoch(self, epoch: int) -> None:
        for obj in (self.inner, getattr(self.inner, "sampler", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        it = iter(self.inner)
        for _ in range(self.skip):
            next(it, None)
        return it

    def __len__(self) -> int:
        return len(self.inner)


class DeviceLoader:
    """A loader whose batches arrive on the device (what ``task.evaluate`` iterates).

    ``dataset`` is the full dataset; this rank's part of it is ``indices`` (contiguous, in order).
    """

    def __init__(self, loader: DataLoader, device: torch.device, channels_last: bool = False):
        self.loader, self.device, self.channels_last = loader, device, channels_last
        self.dataset = loader.dataset
        self.indices = range(loader.sampler.start, loader.sampler.stop)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            yield move_to_device(batch, self.device, self.channels_last)

    def __len__(self) -> int:
        return len(self.loader)


def _loader_kwargs(device: torch.device, collate_fn: Callable | None, num_workers: int) -> dict:
    # No own generator: each iter(loader) draws its workers' base seed from the global torch RNG, as
    # it always did, so recorded figures stay reproducible; shared.training restores a mid-epoch
    # checkpoint's RNG after making the iterator, so a resumed run gets the same stream.
    return {
        "collate_fn": collate_fn,
        "num_workers": num_workers,
        "pin_memory": device.type == "cuda",
        "persistent_workers": num_workers > 0,
    }


def make_train_loader(
    data: Dataset, batch_size: int, device: torch.device, *, seed: int = 0, drop_last: bool = False,
    collate_fn: Callable | None = None, num_workers: int = 0, batch_sampler: Sampler[list[int]] | None = None,
) -> DataLoader:
    """Shuffled batches (seed + epoch), one shard per rank; or the app's own ``batch_sampler``.

    The loader's ``batch_sampler`` is a :class:`ResumableBatches`; call its ``set_epoch`` before
    each epoch.
    """
    if batch_sampler is None:
        # A one-replica DistributedSampler is a seeded, epoch-aware shuffle: one path for both cases.
        sampler = DistributedSampler(
            data, num_replicas=distributed.get_world_size(), rank=distributed.get_rank(), shuffle=True, seed=seed,
        )
        batch_sampler = BatchSampler(sampler, batch_size, drop_last=drop_last)
    return DataLoader(data, batch_sampler=ResumableBatches(batch_sampler),
                      **_loader_kwargs(device, collate_fn, num_workers))


def make_eval_loader(
    data: Dataset, batch_size: int, device: torch.device, *, collate_fn: Callable | None = None,
    num_workers: int = 0, channels_last: bool = False,
) -> DeviceLoader:
    """This rank's contiguous shard of ``data``, in order, as device batches."""
    loader = DataLoader(data, batch_size=batch_size, sampler=distributed.ShardSampler(len(data)),
                        **_loader_kwargs(device, collate_fn, num_workers))
    return DeviceLoader(loader, device, channels_last)
