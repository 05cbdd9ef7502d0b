"""Association rules: basket parsing, rule metrics against hand-computed values, the memory
guard, recommendations, and the rules task end to end (train → evaluate → predict → serve)."""
import json
import math

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.errors import UserError
from tabular_mining.rules.data import (
    baskets_from_long,
    baskets_from_wide,
    encode,
    parse_baskets,
    read_basket_file,
    split_baskets,
)
from tabular_mining.rules.evaluate import load_recommender
from tabular_mining.rules.model import MINERS, make_rules, mine_itemsets, rules_to_records, select_rules
from tabular_mining.rules.recommend import RuleRecommender

# a,b 3/5; a 4/5; b 4/5; c 2/5; d 2/5; {a,c} 2/5; {b,d} 2/5; {a,b,c} 1/5; {a,b,d} 1/5
TINY = [["a", "b", "c"], ["a", "b"], ["a", "c"], ["b", "d"], ["a", "b", "d"]]


def rule(rules: pd.DataFrame, ante: set, cons: set) -> pd.Series:
    hit = rules[(rules["antecedents"] == frozenset(ante)) & (rules["consequents"] == frozenset(cons))]
    assert len(hit) == 1, (ante, cons)
    return hit.iloc[0]


def test_parse_baskets_strips_dedups_and_skips_blank_lines():
    assert parse_baskets([" a , b,,a", "", "  ", "c"], ",") == [["a", "b"], ["c"]]
    assert parse_baskets(["milk;bread"], ";") == [["milk", "bread"]]


def test_read_basket_file_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_basket_file(tmp_path / "missing.txt")
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(UserError, match="no baskets"):
        read_basket_file(tmp_path / "blank.txt")


def test_long_and_wide_formats():
    long = pd.DataFrame({"t": [1, 1, 2, 2, 2], "item": ["x", "y", "x", "x", " z "]})
    assert baskets_from_long(long, "t", "item") == [["x", "y"], ["x", "z"]]
    with pytest.raises(UserError, match="'tx' not found"):
        baskets_from_long(long, "tx", "item")
    wide = pd.DataFrame({"phone": [1, 0, 0], "tv": ["Yes", "No internet service", "no"],
                         "internet": ["DSL", "No", None]})
    assert baskets_from_wide(wide, false_values=["No internet service"]) == [["phone", "tv", "internet=DSL"]]
    assert baskets_from_wide(wide, ["tv"]) == [["tv"], ["tv=No internet service"]]


def test_encode_is_sparse_boolean_with_sorted_items():
    matrix, items = encode([["b", "a"], ["c"], ["a", "a"]])
    assert items == ["a", "b", "c"]
    assert matrix.toarray().tolist() == [[True, True, False], [False, False, True], [True, False, False]]


@pytest.mark.parametrize("algorithm", sorted(MINERS))
def test_itemsets_and_rule_metrics_match_hand_computed_values(algorithm):
    matrix, items = encode(TINY)
    itemsets = mine_itemsets(matrix, items, min_support=0.2, algorithm=algorithm)
    support = {frozenset(s): v for s, v in zip(itemsets["itemsets"], itemsets["support"])}
    assert support[frozenset("ab")] == pytest.approx(0.6)
    assert support[frozenset("abd")] == pytest.approx(0.2)
    assert len(support) == 4 + 5 + 2  # a b c d; ab ac ad bc bd; abc abd
    rules = make_rules(itemsets, len(TINY), min_confidence=0.0)
    a_b = rule(rules, {"a"}, {"b"})
    assert a_b["support"] == pytest.approx(0.6)
    assert a_b["confidence"] == pytest.approx(0.75)        # 0.6 / 0.8
    assert a_b["lift"] == pytest.approx(0.9375)            # 0.75 / 0.8
    assert a_b["leverage"] == pytest.approx(-0.04)         # 0.6 - 0.8 * 0.8
    assert a_b["conviction"] == pytest.approx(0.8)         # (1 - 0.8) / (1 - 0.75)
    d_b = rule(rules, {"d"}, {"b"})
    assert (d_b["confidence"], d_b["lift"]) == (pytest.approx(1.0), pytest.approx(1.25))
    assert d_b["leverage"] == pytest.approx(0.08)
    assert math.isinf(d_b["conviction"])
    ad_b = rule(rules, {"a", "d"}, {"b"})
    assert ad_b["confidence"] == pytest.approx(1.0)        # {a,b,d} 0.2 / {a,d} 0.2
    record = next(r for r in rules_to_records(rules) if r["antecedents"] == ["d"] and r["consequents"] == ["b"])
    assert record["conviction"] is None                    # JSON has no infinity
    json.dumps(rules_to_records(rules), allow_nan=False)


def test_select_rules_filters_and_sorts():
    matrix, items = encode(TINY)
    rules = make_rules(mine_itemsets(matrix, items, 0.2), len(TINY), min_confidence=0.5)
    assert (rules["confidence"] >= 0.5).all()
    kept = select_rules(rules, min_lift=1.01, max_consequent_len=1, sort_by="lift")
    assert (kept["lift"] >= 1.01).all() and (kept["consequents"].map(len) == 1).all()
    assert kept["lift"].is_monotonic_decreasing
    assert len(select_rules(rules, max_rules=2)) == 2
    with pytest.raises(UserError, match="sort_by"):
        select_rules(rules, sort_by="zhangs")


def test_too_low_support_is_a_clear_error_not_a_memory_blowup():
    dense = [[f"i{j}" for j in range(60)] for _ in range(40)]  # every subset of 60 items is frequent
    matrix, items = encode(dense)
    with pytest.raises(UserError, match="raise min_support"):
        mine_itemsets(matrix, items, 0.5, max_len=None, max_itemsets=10_000)
    with pytest.raises(UserError, match="max_matrix_mb"):
        mine_itemsets(matrix, items, 0.5, max_len=1, max_matrix_mb=1e-6)
    assert len(mine_itemsets(matrix, items, 0.5, max_len=1)) == 60  # the length bound keeps it small


def test_recommender_fires_rules_and_ranks_consequents():
    matrix, items = encode(TINY)
    rules = rules_to_records(make_rules(mine_itemsets(matrix, items, 0.2), len(TINY), 0.3))
    rec = RuleRecommender(rules, {"a": 0.8, "b": 0.8, "c": 0.4, "d": 0.4})
    out = rec.recommend([["d"], ["a", "zzz"], ["a", "b", "c", "d"]], top_k=2, rank_by="confidence",
                        fill_popular=False)
    assert [r["item"] for r in out[0]["recommendations"]] == ["b", "a"]  # d→b 1.0, d→a 0.5
    assert out[0]["recommendations"][0]["confidence"] == pytest.approx(1.0)
    assert [r["item"] for r in out[1]["recommendations"]] == ["b", "c"]  # a→b 0.75, a→c 0.5
    assert out[1]["unknown_items"] == ["zzz"]
    assert out[2]["recommendations"] == [] and out[2]["rules"] == []   # nothing left to recommend
    # blended with popularity (the default): {} → a has confidence 0.8, above d→a's 0.5
    blended = rec.recommend([["d"], ["c", "a"]], top_k=3)
    assert [(r["item"], r["because"]) for r in blended[0]["recommendations"]] == \
        [("b", ["d"]), ("a", "popular"), ("c", "popular")]
    assert blended[0]["recommendations"][1]["confidence"] == pytest.approx(0.8)
    assert [r["item"] for r in blended[1]["recommendations"]] == ["b", "d"]  # b: popular 0.8 beats a→b 0.75


def test_lift_is_credited_per_item_of_a_multi_item_consequent():
    rules = [{"antecedents": ["x"], "consequents": ["a", "b"], "antecedent_support": 0.1, "consequent_support": 0.05,
              "support": 0.04, "confidence": 0.4, "lift": 8.0, "leverage": 0.035, "conviction": 1.6},
             {"antecedents": ["x"], "consequents": ["c"], "antecedent_support": 0.1, "consequent_support": 0.1,
              "support": 0.03, "confidence": 0.3, "lift": 3.0, "leverage": 0.02, "conviction": 1.3}]
    rec = RuleRecommender(rules, {"x": 0.1, "a": 0.5, "b": 0.08, "c": 0.1})
    out = rec.recommend([["x"]], top_k=3, rank_by="lift", fill_popular=False)[0]["recommendations"]
    # b: 0.4 / 0.08 = 5.0; c: its own rule's lift 3.0; a: 0.4 / 0.5 = 0.8 (not the pair's 8.0)
    assert [(r["item"], round(r["lift"], 6)) for r in out] == [("b", 5.0), ("c", 3.0), ("a", 0.8)]


def test_split_is_seeded_and_disjoint():
    baskets = [[str(i)] for i in range(100)]
    train_b, test_b = split_baskets(baskets, 0.2, seed=3)
    assert len(test_b) == 20 and sorted(train_b + test_b) == sorted(baskets)
    assert split_baskets(baskets, 0.2, seed=3) == (train_b, test_b)


def test_training_on_a_file_format_needs_a_path(cli, capsys):
    assert cli("preprocess", "--config", "configs/tabular_mining/rules-quick.yaml", "data.format=baskets") == 2
    assert "data.path is required for format 'baskets'" in capsys.readouterr().err


def test_rules_task_on_telco_services(rules_run):
    run = rules_run
    for name in ["config.yaml", "metrics.json", "README.md", "rules.csv", "rules.json", "items.json", "itemsets.csv",
                 "RULES.md", "item_support.png"]:
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["rules/count"] > 10 and metrics["itemsets/count"] > metrics["items/count"]
    assert metrics["test/coverage"] > 0.5
    table = pd.read_csv(run / "rules.csv")
    assert {"support", "confidence", "lift", "leverage", "conviction"} <= set(table.columns)
    assert (table["confidence"] >= 0.5).all() and table["lift"].is_monotonic_decreasing
    assert "| if the basket has |" in (run / "RULES.md").read_text()
    assert "## Association rules" in (run / "README.md").read_text()


def test_evaluate_predict_and_serve(rules_run, tmp_path, cli_json, served):
    run = rules_run
    held_out = cli_json("evaluate", "--run", run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert held_out["test/hit_rate@3"] == pytest.approx(metrics["test/hit_rate@3"])  # same baskets, same rules
    baskets = tmp_path / "b.txt"
    baskets.write_text("streaming_tv,internet_service=Fiber optic\nnot_an_item\n")
    out = tmp_path / "recs.jsonl"
    cli_json("predict", "--run", run, "--input", baskets, "--output", out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["recommendations"] and lines[1]["unknown_items"] == ["not_an_item"]
    five = tmp_path / "recs5.jsonl"
    cli_json("predict", "--run", run, "--input", baskets, "--output", five, "eval.top_k=1")
    assert len(json.loads(five.read_text().splitlines()[0])["recommendations"]) == 1  # the override is honoured

    with TestClient(served("--run", run)["app"]) as client:
        body = {"instances": [{"items": ["streaming_tv", "internet_service=Fiber optic"]}], "top_k": 2,
                "rank_by": "lift"}
        r = client.post("/predict", json=body)
        assert r.status_code == 200
        pred = r.json()["predictions"][0]
        offline = load_recommender(run).recommend([body["instances"][0]["items"]], top_k=2, rank_by="lift")[0]
        assert pred == offline and 1 <= len(pred["recommendations"]) <= 2   # served == offline
        assert all(set(x["antecedents"]) <= {"streaming_tv", "internet_service=Fiber optic"} for x in pred["rules"])
        lifts = [x["lift"] for x in pred["recommendations"]]
        assert lifts == sorted(lifts, reverse=True)
        assert client.post("/predict", json={"instances": [{"items": []}]}).status_code == 422
        assert client.post("/predict", json={"instances": [{"items": ["a"]}], "rank_by": "x"}).status_code == 422
        assert client.get("/metadata").json()["task"] == "rules"


def test_evaluate_a_long_table_given_by_overrides(rules_run, tmp_path, cli_json):
    long = tmp_path / "orders.csv"
    pd.DataFrame({"order": [1, 1, 2, 2, 2], "product": ["streaming_tv", "streaming_movies", "phone_service",
                                                         "multiple_lines", "tech_support"]}).to_csv(long, index=False)
    out = cli_json("evaluate", "--run", rules_run, "--data", long, "data.format=long", "data.transaction_col=order",
                   "data.item_col=product")
    assert out["data/baskets"] == 2 and "data/hit_rate@3" in out


def test_a_rule_exactly_at_min_confidence_is_kept():
    matrix, items = encode([["a", "b"]] * 3 + [["a"]] * 7)  # a→b: 3/10 = 0.3
    rules = make_rules(mine_itemsets(matrix, items, 0.1), 10, min_confidence=0.3)
    assert rule(rules, {"a"}, {"b"})["confidence"] == pytest.approx(0.3)
