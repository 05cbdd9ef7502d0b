"""Reading images and masks safely, with errors a person can act on.

Used for training files and for uploads alike (the server, classification, segmentation and
detection all go through here)::

    img = decode_image(raw_bytes, name="cat.jpg", limits=ImageLimits(max_bytes=5_000_000))
    img = read_image("data/cats/1.png")           # PIL RGB image, fully decoded
    mask = read_mask("masks/1.png", expected_size=img.size, num_classes=4)   # HxW int64

Every failure is a :class:`BadImage` (a :class:`UserError`) carrying the HTTP status the server
answers with: 413 too many bytes or pixels (the pixel check runs on the header, before decoding,
so a decompression bomb costs nothing), 415 not an image or a format we do not read, 422 a
truncated or corrupt file or a mask that does not fit its image.
"""
from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from shared.errors import UserError

# formats Pillow may try when opening; everything else (PSD, EPS via ghostscript …) is refused
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

# what a copy from macOS, Windows or Jupyter leaves beside the data: never images, never classes
JUNK_NAMES = ("__MACOSX", "Thumbs.db", "desktop.ini")

# a truncated file must fail loudly, never decode half an image as if it were whole
ImageFile.LOAD_TRUNCATED_IMAGES = False


class BadImage(UserError):
    """An image or mask that cannot be used; ``status`` is the HTTP status a server answers with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImageLimits:
    """Caps on one image: encoded bytes and decoded pixels (width × height)."""

    max_bytes: int = 20_000_000
    max_pixels: int = 40_000_000


def _open(fp, name: str, limits: ImageLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check pixels ourselves
            img = Image.open(fp, formats=FORMATS)
    except Image.DecompressionBombError:
        raise BadImage(f"{name}: image has too many pixels (limit {limits.max_pixels:,})", 413) from None
    except (Image.UnidentifiedImageError, ValueError, TypeError):
        raise BadImage(f"{name}: not an image in a supported format ({', '.join(FORMATS)})", 415) from None
    except OSError as exc:
        raise BadImage(f"{name}: cannot read image: {exc}", 422) from None
    w, h = img.size
    if w * h > limits.max_pixels:
        raise BadImage(f"{name}: image is {w}x{h} = {w * h:,} pixels, over the limit of "
                       f"{limits.max_pixels:,}; send a smaller image", 413)
    if w == 0 or h == 0:
        raise BadImage(f"{name}: image has zero width or height", 422)
    try:
        img.load()
    except Image.DecompressionBombError:
        raise BadImage(f"{name}: image has too many pixels (limit {limits.max_pixels:,})", 413) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise BadImage(f"{name}: image is truncated or corrupt ({exc})", 422) from None
    return img


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    img = ImageOps.exif_transpose(img)  # phone photos carry their rotation in EXIF
    if mode and img.mode != mode:
        if img.mode in ("I;16", "I;16B", "I") and mode in ("RGB", "L"):
            arr = np.asarray(img, dtype=np.float64)
            img = Image.fromarray((255 * arr / max(arr.max(), 1)).astype(np.uint8), "L")
        img = img.convert(mode)
    return img


def decode_image(data: bytes, name: str = "image", limits: ImageLimits = ImageLimits(),
                 mode: str = "RGB") -> Image.Image:
    """Decode encoded image bytes into a fully loaded PIL image in ``mode`` (default RGB)."""
    if not data:
        raise BadImage(f"{name}: empty file", 422)
    if len(data) > limits.max_bytes:
        raise BadImage(f"{name}: {len(data):,} bytes is over the per-image limit of {limits.max_bytes:,}", 413)
    return _to_mode(_open(io.BytesIO(data), name, limits), mode)


def read_image(path: str | os.PathLike, limits: ImageLimits = ImageLimits(), mode: str = "RGB") -> Image.Image:
    """Read and fully decode an image file into a PIL image in ``mode``."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BadImage(f"{path}: file not found", 422) from None
    if size > limits.max_bytes:
        raise BadImage(f"{path}: {size:,} bytes is over the per-image limit of {limits.max_bytes:,}", 413)
    if size == 0:
        raise BadImage(f"{path}: empty file", 422)
    with open(path, "rb") as f:
        return _to_mode(_open(f, str(path), limits), mode)


def image_size(path: str | os.PathLike, limits: ImageLimits = ImageLimits()) -> tuple[int, int]:
    """``(width, height)`` of an image file after checking that it decodes completely."""
    return read_image(path, limits, mode="").size


MASK_MODES = ("class_ids", "nonzero_foreground", "instances")
VOID = 255  # a mask pixel to ignore (Pascal VOC's object borders); the loss and the metrics skip it
_ID_MODES = ("P", "L", "I", "I;16", "I;16B", "1")  # single-channel images whose values are ids


def read_mask(path: str | os.PathLike, expected_size: tuple[int, int] | None = None,
              num_classes: int | None = None, limits: ImageLimits = ImageLimits(),
              mode: str = "class_ids", image: str | os.PathLike | None = None,
              mask_values: Mapping[int, int] | None = None) -> np.ndarray:
    """A per-pixel class mask as an ``HxW`` int64 array.

    ``mode`` says what the file's values are: ``class_ids`` (a palette PNG whose indices are the
    class ids, or a single-channel 8/16-bit image of them), ``nonzero_foreground`` (anything not
    black or 0 is the one foreground class: 0/255 masks, colour masks) or ``instances`` (a
    single-channel image with 0 for background and one id per object, e.g. PennFudan's
    ``*_mask.png``: every object becomes the one foreground class). In ``class_ids`` and
    ``instances`` masks :data:`VOID` (255, Pascal VOC's border) stays 255: a pixel to ignore. A JPEG
    mask is refused for ids (compression changes them); as ``nonzero_foreground`` (Kvasir-SEG's
    0/255 JPEGs) a pixel is foreground when a channel is at least 128.
    ``mask_values`` maps a ``class_ids`` file's pixel values to the ids when they are not the ids
    (``data.mask_values``; Oxford-IIIT Pet trimaps: ``{1: 1, 2: 0, 3: 255}``); a value it lacks is an error.
    ``expected_size`` is the ``(width, height)`` of the ``image`` (named in the error);
    ``num_classes`` bounds the ids (0 … num_classes-1, and :data:`VOID`). Each violation is a
    :class:`BadImage` naming the file.
    """
    path, mapping = Path(path), {int(k): int(v) for k, v in (mask_values or {}).items()}
    img = read_image(path, limits, mode="")
    lossy = path.suffix.lower() in (".jpg", ".jpeg")  # compression artefacts: values near 0 and 255
    if lossy and mode != "nonzero_foreground":
        raise BadImage(f"{path}: a JPEG mask: its lossy compression changes pixel values, so they cannot be "
                       "ids; save masks as PNG, or set data.mask_mode=nonzero_foreground for a 0/255 mask", 422)
    if img.mode not in _ID_MODES and mode != "nonzero_foreground":
        hint = "; or set data.mask_mode=nonzero_foreground for a colour mask" if mode == "class_ids" else ""
        raise BadImage(f"{path}: mask has mode {img.mode}; use a palette or single-channel integer PNG "
                       f"whose pixel values are {'object' if mode == 'instances' else 'class'} ids{hint}", 422)
    if expected_size is not None and img.size != tuple(expected_size):
        raise BadImage(f"{path}: mask is {img.size[0]}x{img.size[1]} but its image {image or ''}"
                       f"{' ' if image else ''}is {expected_size[0]}x{expected_size[1]}; masks need their "
                       "image's size", 422)
    values = np.asarray(img)
    if mode == "class_ids":
        mask = values.astype(np.int64) if not mapping else _mapped(values, mapping, path)
    else:  # one foreground class: every object, every non-black pixel (a JPEG's: at least half bright)
        low = 128 if lossy else 1
        mask = ((values[..., :3] >= low).any(-1) if values.ndim == 3 else values >= low).astype(np.int64)
        if mode == "instances":
            mask[values == VOID] = VOID
    if num_classes is not None:
        ids = mask[mask != VOID] if num_classes <= VOID else mask
        if ids.size and (int(ids.max()) >= num_classes or int(ids.min()) < 0):
            bad = sorted(set(np.unique(ids).tolist()) - set(range(num_classes)))
            hint = ("; values that are not class ids map to them with data.mask_values={value: id}"
                    if mode == "class_ids" and not mapping else "")
            raise BadImage(f"{path}: mask holds class id(s) {bad[:10]} outside the class list "
                           f"(0..{num_classes - 1}, and {VOID} for pixels to ignore){hint}", 422)
    return mask


def _mapped(values: np.ndarray, mapping: dict[int, int], path: Path) -> np.ndarray:
    """``values`` through ``mapping`` (pixel value -> class id); a value it lacks is a :class:`BadImage`."""
    found = np.unique(values)
    unmapped = sorted(set(found.tolist()) - set(mapping))
    if unmapped:
        raise BadImage(f"{path}: mask value(s) {unmapped[:10]} are not in data.mask_values "
                       f"({dict(sorted(mapping.items()))}); add what each is (255: ignore)", 422)
    return np.asarray([mapping[int(v)] for v in found], dtype=np.int64)[np.searchsorted(found, values)]


def encode_png(img: Image.Image | np.ndarray, palette: list[int] | None = None) -> bytes:
    """PNG bytes of a PIL image or a uint8 array (with ``palette``, an ``HxW`` array becomes a
    palette PNG, so class masks open in colour in any viewer and read back as class ids)."""
    if isinstance(img, np.ndarray):
        arr = img.astype(np.uint8)
        img = Image.fromarray(arr, "P" if palette is not None and arr.ndim == 2 else None)
        if palette is not None and img.mode == "P":
            img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def is_junk(path: Path) -> bool:
    """A hidden file or folder (``.DS_Store``, ``._cat.jpg`` AppleDouble, ``.ipynb_checkpoints``) or
    one of :data:`JUNK_NAMES`."""
    return path.name.startswith(".") or path.name in JUNK_NAMES


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (by suffix, any case), junk left out, sorted."""
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not is_junk(f) and f.is_file())


def data_files(folder: Path, pattern: str) -> list[Path]:
    """The files directly in ``folder`` matching ``pattern`` (``*.xml``), junk left out, sorted;
    none when ``folder`` is not a folder."""
    return sorted(f for f in folder.glob(pattern) if not is_junk(f)) if folder.is_dir() else []


def data_dirs(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` that can hold data (hidden and ``__MACOSX`` left out), sorted."""
    return sorted(d for d in folder.iterdir() if d.is_dir() and not is_junk(d))


def with_image_suffix(path: Path) -> Path:
    """``path``, or for a name without its image suffix (Kaggle CSVs list ids) the image file of that
    name, any suffix case; left as given when there is none (reading it then names it as missing)."""
    if path.suffix.lower() in IMAGE_SUFFIXES or path.exists():
        return path
    for suffix in IMAGE_SUFFIXES:
        for candidate in (path.with_name(path.name + suffix), path.with_name(path.name + suffix.upper())):
            if candidate.exists():
                return candidate
    return path


def list_inputs(input_path: str | os.PathLike | None, path_column: str = "path",
                images_dir: str | os.PathLike | None = None) -> list[Path]:
    """The image files a ``predict`` reads: one image, a folder (recursively) or a CSV with a
    ``path_column`` (paths relative to ``images_dir``, else to the CSV's folder; names without an
    image suffix found as by :func:`with_image_suffix`)."""
    if not input_path:
        raise UserError("predict needs --input: an image, a folder of images, or a CSV with a path column")
    p = Path(input_path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                       and not any(is_junk(Path(part)) for part in f.relative_to(p).parts))
    elif p.suffix.lower() == ".csv":
        base = Path(images_dir) if images_dir else p.parent
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or path_column not in reader.fieldnames:
                raise UserError(f"{p}: needs a {path_column!r} column (found {reader.fieldnames})")
            listed = [Path(r[path_column].strip().replace("\\", "/")) for r in reader]  # Windows separators too
            files = [with_image_suffix(f if f.is_absolute() else base / f) for f in listed]
    elif p.exists():
        files = [p]
    else:
        raise UserError(f"--input {p} not found")
    if not files:
        raise UserError(f"no images found in {p}")
    return files


TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".xlsx")


def json_lines_output(output: str | os.PathLike) -> None:
    """``predict --output`` of classify and detect is JSON lines (``-``: stdout): a file named as a
    table (``preds.csv``) would get JSON where the reader expects a table, so it is refused before any work."""
    if Path(output).suffix.lower() in TABLE_SUFFIXES:
        raise UserError(f"--output {output}: predict writes JSON lines (one object per image), not a "
                        f"{Path(output).suffix.lower().lstrip('.')} table; name it .jsonl "
                        "(pandas.read_json(path, lines=True) reads it as a table)")

