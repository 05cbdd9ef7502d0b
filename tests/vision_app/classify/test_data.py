"""Classification data in the layouts people have, made here: an ImageFolder root of ``train/ val/
test/`` folders (the data's own split, used as given), ``train/ val/`` only (test carved out of
train), a CSV with a ``split`` column, and ``data.split=random`` to ignore a given split."""
from pathlib import Path

import pytest

from shared.config import load_config
from shared.errors import UserError
from vision_app.classify.config import ClassifyConfig
from vision_app.common.manifest import load_manifest
from vision_app.tasks import TASKS


def _manifest(tmp_path, make, path, **data):
    cfg = load_config(ClassifyConfig, make.classify_recipe(tmp_path, path, **data))
    TASKS["classify"].preprocess(cfg)
    return load_manifest(cfg, TASKS["classify"].preprocess)


def _folders(records) -> set[str]:
    return {Path(r["image"]).parent.parent.name for r in records}


def test_train_val_test_folders_are_the_split(tmp_path, make):
    root = make.split_root(tmp_path / "photos", {"train": 6, "val": 2, "test": 3})
    m = _manifest(tmp_path, make, root)
    assert m["classes"] == ["cats", "dogs"] and m["split"] == "given"
    assert m["counts"] == {"train": 12, "valid": 4, "test": 6}
    assert {s: _folders(m["splits"][s]) for s in m["splits"]} == {"train": {"train"}, "valid": {"val"},
                                                                  "test": {"test"}}


def test_train_and_val_only_carve_the_test_split_out_of_train(tmp_path, make):
    root = make.split_root(tmp_path / "photos", {"train": 10, "validation": 3})
    m = _manifest(tmp_path, make, root, test_fraction=0.25, valid_fraction=0.1)
    assert m["counts"] == {"train": 20 - 6, "valid": 6, "test": 6}  # 25% of 26 images, from train
    assert _folders(m["splits"]["valid"]) == {"validation"} and _folders(m["splits"]["test"]) == {"train"}
    assert sorted(r["label"] for r in m["splits"]["test"]) == [0, 0, 0, 1, 1, 1]  # stratified


def test_a_csv_split_column(tmp_path, make):
    root = make.split_root(tmp_path / "flat", {"all": 6})
    rows = [f"all/{c}/{i}.jpg,{c},{['train', 'train', 'Val', 'TEST', '', 'train'][i]}"
            for c in ("cats", "dogs") for i in range(6)]
    csv = root / "labels.csv"
    csv.write_text("path,label,split\n" + "\n".join(rows) + "\n")
    m = _manifest(tmp_path, make, csv, source="csv")
    assert m["split"] == "given" and m["counts"] == {"train": 8, "valid": 2, "test": 2}
    assert all(Path(r["image"]).name == "3.jpg" for r in m["splits"]["test"])
    csv.write_text("path,label,split\nall/cats/0.jpg,cats,holdout\n")
    with pytest.raises(UserError, match=r"split value\(s\) \['holdout'\] are not train, val or test"):
        _manifest(tmp_path, make, csv, source="csv")


def test_split_random_ignores_the_given_split(tmp_path, make):
    root = make.split_root(tmp_path / "photos", {"train": 6, "val": 2, "test": 3})
    m = _manifest(tmp_path, make, root, split="random", test_fraction=0.25, valid_fraction=0.2)
    assert m["split"] == "random" and sum(m["counts"].values()) == 22
    assert len(_folders(m["splits"]["test"])) > 1


def test_a_duplicate_across_splits_stays_in_the_earlier_one(tmp_path, make):
    root = make.split_root(tmp_path / "photos", {"train": 4, "val": 2, "test": 2})
    (root / "test" / "cats" / "0.jpg").write_bytes((root / "train" / "cats" / "1.jpg").read_bytes())
    m = _manifest(tmp_path, make, root)
    assert m["duplicates_dropped"] == 1 and m["counts"]["test"] == 3


def test_split_folders_holding_one_folder_too_many_say_how_to_name_them(tmp_path, make):
    root = make.split_root(tmp_path / "photos", {"train": 2, "val": 2, "extra": 2})
    with pytest.raises(UserError, match="hold folders, not images: name the split folders train/, val/"):
        _manifest(tmp_path, make, root)
