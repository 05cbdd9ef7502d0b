"""What the classification and segmentation data paths share: the checks every file goes through,
de-duplication, seeded splits, and the torch dataset over split records.

Every image is decoded once at preprocess time, so an unreadable or truncated file or an empty
split stops the run with a message naming the file (all bad files are listed, not just the first).
The sources themselves (a folder per class, a CSV, images with masks) are read in each task's
``data.py``.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from shared.errors import UserError
from vision_app.common.images import BadImage, ImageLimits, read_image, read_mask

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")
# the names a data set's own split goes by (folders, CSV values, VOC split files), as ours
SPLIT_NAMES = {"train": "train", "training": "train", "trainval": "train", "val": "valid", "valid": "valid",
               "validation": "valid", "dev": "valid", "test": "test", "testing": "test"}


# ---------------------------------------------------------------- validation and splitting
def raise_if_bad(bad: list[str]) -> None:
    """One error listing the first five bad files (and how many more)."""
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise UserError(f"{len(bad)} bad file(s): " + "; ".join(bad[:5]) + more)


def bad_file(exc: BadImage) -> str:
    """A bad training file's message; one over a size limit says which keys raise it (the upload
    wording, "send a smaller image", is for the server)."""
    if exc.status == 413:
        return f"{exc} (or raise data.max_image_bytes / data.max_image_pixels)"
    return str(exc)


def file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dedupe(hashes: list[str], labels: list | None = None) -> tuple[list[int], int]:
    """Indices to keep (first of each identical file) and how many duplicates were dropped.
    Identical files with different labels are a :class:`UserError`."""
    first: dict[str, int] = {}
    keep = []
    for i, h in enumerate(hashes):
        if h in first:
            if labels is not None and labels[first[h]] != labels[i]:
                raise UserError(f"the same image appears with two labels (entries {first[h]} and {i}); fix the data")
            continue
        first[h] = i
        keep.append(i)
    return keep, len(hashes) - len(keep)


def split_indices(n: int, test_fraction: float, valid_fraction: float, seed: int,
                  stratify: list[int] | None = None) -> dict[str, list[int]]:
    """Seeded train/valid/test index lists (stratified by ``stratify`` when given)."""
    idx = np.arange(n)
    strat = np.asarray(stratify) if stratify is not None else None
    try:
        rest, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=strat)
        valid: np.ndarray = np.array([], dtype=int)
        if valid_fraction > 0:
            rest, valid = train_test_split(rest, test_size=valid_fraction / (1 - test_fraction),
                                           random_state=seed, stratify=None if strat is None else strat[rest])
    except ValueError as exc:
        raise UserError(f"cannot split {n} images (test_fraction={test_fraction}, valid_fraction={valid_fraction}): "
                        f"{exc}") from None
    return {"train": sorted(rest.tolist()), "valid": sorted(valid.tolist()), "test": sorted(test.tolist())}


def given_split(tags: list[str | None], test_fraction: float, valid_fraction: float, seed: int,
                stratify: list[int] | None = None) -> dict[str, list[int]]:
    """The data set's own split: index ``i`` stays in split ``tags[i]`` (``train``/``valid``/``test``);
    untagged indices join train. A split no index is tagged with is carved out of train, seeded (and
    stratified when the classes allow), as ``<split>_fraction`` of all images."""
    out = {s: [i for i, t in enumerate(tags) if t == s] for s in SPLITS}
    pool = np.array(out["train"] + [i for i, t in enumerate(tags) if t is None], dtype=int)
    strat = np.asarray(stratify) if stratify is not None else None
    for split, fraction in (("test", test_fraction), ("valid", valid_fraction)):
        n = round(fraction * len(tags))
        if out[split] or n == 0:
            continue
        if n >= len(pool):
            raise UserError(f"the data's own split has no {split} images and its {len(pool)} train images "
                            f"cannot give {n}; add a {split} folder or lower data.{split}_fraction")
        try:
            pool, carved = train_test_split(pool, test_size=n, random_state=seed,
                                            stratify=None if strat is None else strat[pool])
        except ValueError:  # a class too small to stratify: carve at random
            pool, carved = train_test_split(pool, test_size=n, random_state=seed)
        out[split] = sorted(carved.tolist())
        log.info("the data's own split has no %s images: %d carved out of train (seed %d)", split, n, seed)
    out["train"] = sorted(pool.tolist())
    return out


def check_splits(splits: dict[str, list], need_valid: bool = True) -> None:
    for s in SPLITS:
        if not splits.get(s) and (s != "valid" or need_valid):
            raise UserError(f"the {s} split is empty ({', '.join(f'{k}={len(v)}' for k, v in splits.items())}); "
                            "add images or change data.test_fraction / data.valid_fraction")


# ---------------------------------------------------------------- torch datasets
class ImageDataset(Dataset):
    """Records → preset-transformed examples. ``records`` items are ``{"image": path, "label": int}``
    (classification) or ``{"image": path, "mask": path[, "mask_mode": …, "mask_values": …]}``
    (segmentation; as :func:`~vision_app.common.images.read_mask` takes them, ``class_ids`` when absent). Decoded images are kept
    in memory after first use (these data sets are small; set ``cache=False`` for big ones)."""

    def __init__(self, records: list[dict], preset, limits: ImageLimits | None = None, cache: bool = True):
        self.records, self.preset, self.limits, self.cache = records, preset, limits or ImageLimits(), cache
        self._memo: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.records)

    def raw(self, i: int) -> tuple[np.ndarray, object]:
        """The decoded image (``HxWx3`` uint8) and its label or mask, before any transform."""
        if i in self._memo:
            return self._memo[i]
        rec = self.records[i]
        image = np.asarray(read_image(rec["image"], self.limits))
        if "mask" in rec:
            target = read_mask(rec["mask"], limits=self.limits, mode=rec.get("mask_mode", "class_ids"),
                               mask_values=rec.get("mask_values"))
        else:
            target = int(rec["label"])
        if self.cache:
            self._memo[i] = (image, target)
        return image, target

    def __getitem__(self, i: int) -> dict:
        image, target = self.raw(i)
        if isinstance(target, int):
            return {"image": self.preset(image), "label": torch.tensor(target)}
        x, mask = self.preset(image, target)
        return {"image": x, "mask": mask.as_subclass(torch.Tensor)}


def voc_image_sets(folder: Path) -> dict[str, Path] | None:
    """A Pascal VOC ``ImageSets/<Main|Segmentation>`` folder's split lists, split name → file:
    ``train``, ``val``, ``test`` (``trainval`` only when there is no ``train``); ``None`` without any."""
    found = {n: folder / f"{n}.txt" for n in ("train", "trainval", "val", "test") if (folder / f"{n}.txt").is_file()}
    if "train" in found:
        found.pop("trainval", None)
    if not found:
        return None
    log.info("using the VOC split lists %s", ", ".join(str(f) for f in found.values()))
    return found
