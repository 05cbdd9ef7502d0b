"""Serving ``task: rules``: ``POST /predict`` with baskets → the rules that fire and the recommended
items, ranked by confidence or lift. Also the ``stream`` stage over the same predictor.

    python -m tabular_mining serve --run runs/tabular_mining/rules/latest
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
      -d '{"instances": [{"items": ["streaming_tv", "internet_service=Fiber optic"]}], "top_k": 3}'

Items the run never saw are reported in ``unknown_items`` and otherwise ignored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest
from tabular_mining.common.stream_stage import stream_stage
from tabular_mining.rules.config import RulesConfig
from tabular_mining.rules.evaluate import load_recommender


class Basket(StrictRequest):
    items: list[str] = Field(min_length=1, max_length=1000, description="the items in the basket")


class RulesRequest(StrictRequest):
    instances: list[Basket] = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=100, description="recommended items per basket")
    rank_by: Literal["confidence", "lift"] = "confidence"
    max_rules: int = Field(10, ge=0, le=1000, description="fired rules listed per basket")
    fill_popular: bool = Field(False, description="top up short lists with the most frequent items")


class RulesPredictor(Predictor):
    """The run's rules behind the app factory."""

    request_model = RulesRequest
    page = "rules"  # the demo page: a basket, then recommendations and fired rules in tables

    def __init__(self, run: Path, cfg: RulesConfig):
        self.path, self.cfg, self.recommender = Path(run), cfg, load_recommender(run)

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

    @classmethod
    def from_run(cls, cfg: RulesConfig, run: Path) -> RulesPredictor:
        """What ``serve`` runs: the run's rules."""
        return cls(run, cfg)


def stream(cfg: RulesConfig, run: Path, input: Path | str | None, output: Path | str | None) -> dict | None:
    """The stream stage: baskets (``{"items": [...]}`` per line) from ``input`` (a file, ``-``/stdin or
    ``kafka``) into recommendations in ``output``, in micro-batches (``stream:`` section)."""
    return stream_stage(RulesPredictor.from_run(cfg, run), cfg.stream, input, output)
