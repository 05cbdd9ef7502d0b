"""``predict --input`` on the user lists people write: a column named like ``data.user_col`` or
``user``, or a plain list of ids without a header (numbers or strings such as ``user_001``), ids
with leading zeros kept as the training file had them."""
import pandas as pd
import pytest

from recsys_app.recommend.predict import read_users
from recsys_app.tasks import TASKS
from shared.cli import run_app
from shared.runs import runs_root


@pytest.mark.parametrize("text, users", [
    ("uid\n0001\nu02\n0001\n", ["0001", "u02"]),      # data.user_col (uid here), once each
    ("user\n7\n12\n", [7, 12]),
    ("user_001\nuser_002\n\n", ["user_001", "user_002"]),  # no header: not taken for one
    ("1\n2\n5000\n", [1, 2, 5000]),
    ("0001,x\n0002,y\n", ["0001", "0002"]),            # headerless, several columns: the first
    ("name,UID\na,0001\nb,0002\n", ["0001", "0002"]),  # data.user_col spelt in capitals, as text
    ("USER\n0007\n", ["0007"]),
])
def test_read_users_layouts(tmp_path, tiny_cfg, text, users):
    (tmp_path / "users.txt").write_text(text, encoding="utf-8")
    assert read_users(tmp_path / "users.txt", tiny_cfg) == users


def test_predict_knows_users_with_leading_zeros(tmp_path):
    """A run on ids ``0001``…: its users read back as ``0001``, not the unknown user 1 (a fallback)."""
    rows = [(f"{u:04d}", 1 + (u * 3 + k) % 12, 1000 * u + k) for u in range(1, 13) for k in range(5)]
    pd.DataFrame(rows, columns=["userId", "movieId", "timestamp"]).to_csv(tmp_path / "zeros.csv", index=False)
    argv = ["train", "--config", "configs/recsys_app/movielens.yaml", "data.source=file",
            f"data.path={tmp_path / 'zeros.csv'}", "data.rating_col=null", "eval.plot=false", "name=zeros"]
    assert run_app("recsys_app", TASKS, argv=argv) == 0
    (tmp_path / "users.txt").write_text("0001\n0002\n9999\n", encoding="utf-8")
    run = (runs_root() / "recsys_app" / "zeros" / "latest").resolve()
    assert run_app("recsys_app", TASKS, argv=["predict", "--run", str(run), "--input", str(tmp_path / "users.txt"),
                                              "--output", str(tmp_path / "recs.jsonl")]) == 0
    recs = pd.read_json(tmp_path / "recs.jsonl", lines=True, dtype={"user": str})
    assert recs.set_index("user")["fallback"].to_dict() == {"0001": False, "0002": False, "9999": True}
