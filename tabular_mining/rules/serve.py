"""Serving ``task: rules``: ``POST /predict`` with baskets → the rules that fire and the recommended
items, ranked by confidence or lift. Also the ``stream`` stage over the same predictor.

    python -m tabular_mining serve --run runs/tabular_mining/rules/latest
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
      -d '{"instances": [{"items": ["streaming_tv", "internet_service=Fiber optic"]}], "top_k": 3}'

Items the run never saw are reported in ``unknown_items`` and otherwise ignored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest
from tabular_mining.common.stream_stage import stream_stage
from tabular_mining.rules.config import RulesConfig
from tabular_mining.rules.evaluate import load_recommender


def _integral(value: Any) -> Any:
    """JSON has one kind of number, and JSON Schema counts ``5.0`` as the integer 5: accept it as 5
    (anything else still goes through the strict check: ``true`` and ``"5"`` are refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_integral)]


class Basket(StrictRequest):
    items: list[str] = Field(min_length=1, description="the items in the basket (at most serve.max_item_cost)")


class RulesRequest(StrictRequest):
    instances: list[Basket] = Field(min_length=1)
    top_k: WholeNumber = Field(5, ge=1, le=100, description="recommended items per basket")
    rank_by: Literal["confidence", "lift"] = "confidence"
    max_rules: WholeNumber = Field(10, ge=0, le=1000, description="fired rules listed per basket")
    fill_popular: bool = Field(True, description="blend with popularity: each item also competes as the rule "
                                                 "{} → item (confidence = its support, lift = 1)")


class Recommendation(BaseModel):
    item: str
    confidence: float | None = Field(None, description="with rank_by=confidence: the best rule's (null: popular)")
    lift: float | None = Field(None, description="with rank_by=lift: the best rule's (null: popular)")
    because: list[str] | Literal["popular"] = Field(description="the antecedent of the rule that recommends it")


class Rule(BaseModel):
    antecedents: list[str]
    consequents: list[str]
    antecedent_support: float
    consequent_support: float
    support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float | None = Field(description="null when the confidence is 1")


class BasketPrediction(BaseModel):
    recommendations: list[Recommendation]
    rules: list[Rule] = Field(description="the rules that fire, best first (up to max_rules)")
    unknown_items: list[str] = Field(description="items the run never saw (ignored)")


class RulesResponse(BaseModel):
    """What ``POST /predict`` answers: one result per basket, in order."""

    predictions: list[BasketPrediction]

    model_config = ConfigDict(json_schema_extra={"examples": [{"predictions": [{
        "recommendations": [{"item": "streaming_movies", "lift": 1.93,
                             "because": ["internet_service=Fiber optic", "streaming_tv"]}],
        "rules": [], "unknown_items": []}]}]})


class RulesPredictor(Predictor):
    """The run's rules behind the app factory."""

    request_model = RulesRequest
    response_model = RulesResponse
    cost_unit = "items"
    page = "rules"  # the demo page: a basket, then recommendations and fired rules in tables

    def __init__(self, run: Path, cfg: RulesConfig):
        self.path, self.cfg, self.recommender = Path(run), cfg, load_recommender(run)

    def items(self, body: RulesRequest) -> list:
        opts = (body.top_k, body.rank_by, body.max_rules, body.fill_popular)
        return [(b.items, opts) for b in body.instances]

    def cost(self, item) -> float:
        return len(item[0])

    def prepare(self, item) -> tuple[list[str], tuple]:
        items, opts = item
        return list(dict.fromkeys(items)), opts

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
