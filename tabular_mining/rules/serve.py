"""Serving a rules run: ``POST /predict`` with baskets → the rules that fire and the recommended
items, ranked by confidence or lift.

    python -m tabular_mining serve --config configs/tabular_mining/rules.yaml [--run DIR]
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
      -d '{"instances": [{"items": ["streaming_tv", "internet_service=Fiber optic"]}], "top_k": 3}'

Items the run never saw are reported in ``unknown_items`` and otherwise ignored.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.runs import load_metrics
from shared.serving import Predictor
from tabular_mining.rules_task import load_rules_run

MAX_INSTANCES = 10_000


class Basket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[str] = Field(min_length=1, max_length=1000, description="the items in the basket")


class RulesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: list[Basket] = Field(min_length=1, max_length=MAX_INSTANCES)
    top_k: int = Field(5, ge=1, le=100, description="recommended items per basket")
    rank_by: Literal["confidence", "lift"] = "confidence"
    max_rules: int = Field(10, ge=0, le=1000, description="fired rules listed per basket")
    fill_popular: bool = Field(False, description="top up short lists with the most frequent items")


class RulesPredictor(Predictor):
    request_model = RulesRequest

    def __init__(self, run):
        self.path, self.cfg, self.recommender = load_rules_run(run)

    def items(self, body: RulesRequest) -> list:
        opts = (body.top_k, body.rank_by, body.max_rules, body.fill_popular)
        return [(list(dict.fromkeys(b.items)), opts) for b in body.instances]

    def predict_batch(self, items: list) -> list:
        out: list = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for i, (_, opts) in enumerate(items):
            groups.setdefault(opts, []).append(i)
        for (top_k, rank_by, max_rules, fill), idx in groups.items():
            recs = self.recommender.recommend([items[i][0] for i in idx], top_k=top_k, rank_by=rank_by,
                                              max_rules=max_rules, fill_popular=fill)
            for i, r in zip(idx, recs):
                out[i] = r
        return out

    def metadata(self) -> dict:
        return {"run_id": self.path.name, "task": "rules", "rules": len(self.recommender.rules),
                "items": self.recommender.items, "algorithm": self.cfg.mining.algorithm,
                "min_support": self.cfg.mining.min_support, "metrics": load_metrics(self.path)}

    def example(self) -> dict:
        rule = self.recommender.rules[0] if self.recommender.rules else None
        items = rule["antecedents"] if rule else self.recommender.popularity[:1]
        return {"instances": [{"items": items or ["item"]}], "top_k": 3}


def load_predictor(run) -> RulesPredictor:
    return RulesPredictor(run)
