"""A class-per-folder set as people copy it off their machines, made here: upper-case and mixed
suffixes (``.JPG``, ``.PNG``, ``.jpeg``, ``.webp``, ``.bmp``), grey, RGBA, palette, 16-bit and
CMYK images, an EXIF-rotated photo, a class only ``train/`` has, and the junk macOS, Windows and
editors leave (``.DS_Store``, ``._x.JPG`` AppleDouble files, ``__MACOSX/``, ``Thumbs.db``, notes)."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.config import load_config
from shared.errors import UserError
from vision_app.classify.config import ClassifyConfig
from vision_app.common.images import list_inputs, read_image
from vision_app.common.manifest import load_manifest
from vision_app.tasks import TASKS

RNG = np.random.default_rng(5)
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "


def _rgb(w: int = 48, h: int = 40) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _save(path: Path, img: Image.Image, fmt: str, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt, **kw)


def _junk(folder: Path) -> None:
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "._0.JPG").write_bytes(APPLEDOUBLE)
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "notes.txt").write_text("taken in May")


def odd_images(folder: Path) -> dict[str, str]:
    """One image per odd kind into ``folder``; returns file name → the mode it was saved in."""
    kinds = {"grey.PNG": ("L", "PNG"), "alpha.png": ("RGBA", "PNG"), "palette.png": ("P", "PNG"),
             "photo.jpeg": ("RGB", "JPEG"), "web.WEBP": ("RGB", "WEBP"), "old.bmp": ("RGB", "BMP"),
             "print.jpg": ("CMYK", "JPEG")}
    for name, (mode, fmt) in kinds.items():
        _save(folder / name, _rgb().convert(mode), fmt)
    deep = (np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30)
    Image.fromarray(deep).save(folder / "deep.png")  # 16-bit grey ("I;16")
    photo = _rgb()
    exif = photo.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    _save(folder / "phone.JPG", photo, "JPEG", exif=exif)
    return {**{k: v[0] for k, v in kinds.items()}, "deep.png": "I;16", "phone.JPG": "RGB"}


def _manifest(tmp_path, make, root, **data):
    cfg = load_config(ClassifyConfig, make.classify_recipe(tmp_path, root, **data))
    TASKS["classify"].preprocess(cfg)
    return load_manifest(cfg, TASKS["classify"].preprocess)


def test_odd_images_and_junk_in_a_split_root(tmp_path, make, caplog):
    root = make.split_root(tmp_path / "photos", {"train": 4, "val": 2}, classes=("Cats", "dogs"))
    odd = odd_images(root / "train" / "Cats")
    for c in ("Cats", "dogs"):
        _junk(root / "train" / c)
    for i in range(3):
        _save(root / "train" / "Bird Photos" / f"{i}.JPG", _rgb(), "JPEG")  # a class val/ lacks
    (root / "__MACOSX" / "train" / "Cats").mkdir(parents=True)
    (root / "__MACOSX" / "train" / "Cats" / "._0.jpg").write_bytes(APPLEDOUBLE)
    (root / ".ipynb_checkpoints").mkdir()
    _save(root / "train" / "loose.jpg", _rgb(), "JPEG")  # not read, and said so
    _save(root / "train" / "dogs" / "2019" / "old.jpg", _rgb(), "JPEG")
    m = _manifest(tmp_path, make, root, min_per_class=1, test_fraction=0.2)
    assert m["classes"] == ["Bird Photos", "Cats", "dogs"] and m["split"] == "given"
    assert sum(m["counts"].values()) == 4 * 2 + len(odd) + 3 + 2 * 2
    names = {Path(r["image"]).name for s in m["splits"].values() for r in s}
    assert set(odd) <= names and not {n for n in names if n.startswith(".")} and not {"loose.jpg", "old.jpg"} & names
    assert "1 image(s) directly in it and the images in sub-folders of class folder(s) ['dogs'] are not read" \
        in caplog.text
    assert "have no train images" not in caplog.text
    assert read_image(root / "train" / "Cats" / "phone.JPG").size == (40, 48)  # EXIF rotation applied
    deep = np.asarray(read_image(root / "train" / "Cats" / "deep.png"))
    assert deep.shape == (40, 48, 3) and deep.max() == 255 and deep.min() == 0  # 16 bits scaled, not clipped
    inputs = list_inputs(root)
    assert len(inputs) == sum(m["counts"].values()) + 2 and not any(p.name.startswith("._") for p in inputs)


def test_a_truncated_image_is_named_in_one_line(tmp_path, make):
    root = make.split_root(tmp_path / "photos", {"all": 4})
    good = (root / "all" / "cats" / "0.jpg").read_bytes()
    (root / "all" / "cats" / "0.jpg").write_bytes(good[: len(good) // 2])
    (root / "all" / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(UserError) as err:
        _manifest(tmp_path, make, root / "all")
    message = str(err.value)
    assert "\n" not in message and message.startswith("2 bad file(s)")
    assert "cats/0.jpg: cannot read image" in message and "dogs/broken.png: cannot read image" in message


def test_a_csv_from_windows_with_a_byte_order_mark(tmp_path, make):
    root = make.split_root(tmp_path / "flat", {"all": 4})
    rows = [f"all\\{c}\\{i}.jpg,{c}" for c in ("cats", "dogs") for i in range(4)]  # written on Windows
    (root / "labels.csv").write_bytes(("\ufeffpath,label\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    m = _manifest(tmp_path, make, root / "labels.csv", source="csv")
    assert m["classes"] == ["cats", "dogs"] and sum(m["counts"].values()) == 8
    assert len(list_inputs(root / "labels.csv")) == 8


def test_a_photo_over_the_pixel_limit_names_the_keys_that_raise_it(tmp_path, make):
    root = make.split_root(tmp_path / "photos", {"all": 3})
    _save(root / "all" / "cats" / "big.png", _rgb(64, 48), "PNG")
    with pytest.raises(UserError, match=r"big.png: image is 64x48 = 3,072 pixels.*raise data.max_image_bytes / "
                                        r"data.max_image_pixels"):
        _manifest(tmp_path, make, root / "all", max_image_pixels=3000)
    assert sum(_manifest(tmp_path, make, root / "all", max_image_pixels=4000)["counts"].values()) == 7


def test_a_class_only_val_holds_is_warned_about(tmp_path, make, caplog):
    root = make.split_root(tmp_path / "photos", {"train": 4, "val": 2})
    for i in range(2):
        _save(root / "val" / "owls" / f"{i}.jpg", _rgb(), "JPEG")
    m = _manifest(tmp_path, make, root, test_fraction=0.2)
    assert m["classes"] == ["cats", "dogs", "owls"]
    assert "class(es) ['owls'] have no train images" in caplog.text


def test_a_kaggle_style_csv_of_ids_with_its_own_column_names_and_images_folder(tmp_path, make):
    # Kaggle's train.csv of image ids (no suffix) beside train_images/, HAM10000-like label column
    images = tmp_path / "kaggle/train_images"
    rows = []
    for i in range(12):
        name = f"ISIC_{i:07d}"
        _save(images / (name + (".jpg" if i % 3 else ".JPG")), _rgb(), "JPEG")
        rows.append(f"{name},{'nv' if i % 2 else 'mel'}")
    csv_path = tmp_path / "kaggle/train.csv"
    csv_path.write_text("image_id,dx\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match="data.path_column and data.label_column"):
        _manifest(tmp_path, make, csv_path, source="csv", images_dir=str(images))
    m = _manifest(tmp_path, make, csv_path, source="csv", images_dir=str(images), path_column="image_id",
                  label_column="dx")
    assert m["classes"] == ["mel", "nv"] and sum(m["counts"].values()) == 12
    # predict reads a CSV of the same layout (a test.csv of ids) with the recipe's keys
    listed = list_inputs(csv_path, "image_id", images)
    assert len(listed) == 12 and all(f.exists() for f in listed)
    # an id with no image of that name is named, not guessed
    csv_path.write_text("image_id,dx\n" + "\n".join(rows) + "\nISIC_9999999,nv\n")
    with pytest.raises(UserError, match="ISIC_9999999"):
        _manifest(tmp_path, make, csv_path, source="csv", images_dir=str(images), path_column="image_id",
                  label_column="dx")


def test_evaluate_data_on_a_set_with_its_own_split_scores_its_test_part(tmp_path, make, caplog):
    """``evaluate --data root``: a set shipped with ``test/`` is scored on it alone (as detection and
    segmentation do); one with only ``train/`` + ``val/`` on every image, with a warning."""
    from vision_app.classify.data import labelled_records
    from vision_app.common.images import ImageLimits

    root = make.split_root(tmp_path / "photos", {"train": 3, "val": 2, "test": 1})
    records = labelled_records(root, ["cats", "dogs"], ImageLimits())
    assert sorted(Path(r["image"]).relative_to(root).parts[0] for r in records) == ["test", "test"]
    two = make.split_root(tmp_path / "no-test", {"train": 3, "val": 2})
    assert len(labelled_records(two, ["cats", "dogs"], ImageLimits())) == 10
    assert "its own split but no test part; scoring all 10 images" in caplog.text
