"""Pure data helpers on three-row inputs: de-duplication, seeded splits, empty-split errors."""
import pytest

from shared.errors import UserError
from vision_app.common.data import check_splits, dedupe, split_indices


def test_dedupe_keeps_first_and_rejects_conflicting_labels():
    assert dedupe(["h1", "h2", "h1"], [0, 1, 0]) == ([0, 1], 1)
    assert dedupe(["h1", "h2", "h3"]) == ([0, 1, 2], 0)
    with pytest.raises(UserError, match="two labels"):
        dedupe(["h1", "h2", "h1"], [0, 1, 1])


def test_split_is_seeded_stratified_and_disjoint():
    labels = [0, 1] * 10
    a = split_indices(20, 0.2, 0.2, seed=3, stratify=labels)
    assert a == split_indices(20, 0.2, 0.2, seed=3, stratify=labels)
    assert sorted(a["train"] + a["valid"] + a["test"]) == list(range(20))
    assert sorted(labels[i] for i in a["test"]) == [0, 0, 1, 1]


def test_empty_split_is_a_clear_error():
    with pytest.raises(UserError, match="the valid split is empty"):
        check_splits({"train": [0, 1], "valid": [], "test": [2]})
    check_splits({"train": [0, 1], "valid": [], "test": [2]}, need_valid=False)
    with pytest.raises(UserError, match="cannot split 3 images"):
        split_indices(3, 0.2, 0.2, seed=0, stratify=[0, 1, 2])
