"""Serving a run: ``POST /predict`` → top-K items with titles and scores.

Each instance names a known ``user`` (their whole history in the run's data is used) or sends
``items``, a list of recent item ids, oldest first (session-based: no user needed). ``k`` is
bounded by ``serve.max_k`` and ``items`` by ``serve.max_history`` (422 beyond them; more than
``serve.max_instances`` instances is a 413 from the shared factory); ids are integers or strings,
never coerced (``true`` is not user 1, ``1.5`` not item 1; ``1.0`` is the integer 1, as in JSON
Schema). ``exclude_seen`` (default true) drops the history's items. An unknown user, or a list
with no known item, gets what the model scores highest for the average known user
(:func:`average_scores`: the same score scale as every other answer; for ``popularity``, the most
popular items), with ``fallback: true`` and the reason; unknown ids in a list are skipped and
echoed in ``unknown_items``.

    python -m recsys_app serve [--run runs/recsys_app/movielens/latest] [--port 8000]
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"instances": [{"user": 1, "k": 5}, {"items": [1, 260, 1196], "k": 5}]}'
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from recsys_app.recommend.base import Recommender
from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.dataset import SPLITS, Interactions
from recsys_app.recommend.inference import load_for_inference
from recsys_app.recommend.ranking import exclude, top_k
from shared.device import set_threads
from shared.runs import load_metrics
from shared.serving import Predictor, StrictRequest


def _integral(value: Any) -> Any:
    """JSON has one kind of number, and JSON Schema counts ``5.0`` as the integer 5: take it as 5.
    Anything else still meets the strict check (``true``, ``"5"`` and ``1.5`` are refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Ids are integers or strings, never coerced (a JSON true is not user 1, "1" is not the integer
# 1); integers in the 64-bit range the JSON reader takes (shared.serving.jsonbody), in the schema.
Id = Annotated[Annotated[int, Ge(-(2**63)), Le(2**64 - 1)] | str, BeforeValidator(_integral)]
WholeNumber = Annotated[int, BeforeValidator(_integral)]


def _exactly_one_of_user_or_items(schema: dict) -> None:
    """The instance's JSON schema says what the validator below checks: ``user`` or ``items``,
    exactly one, neither of them null."""
    for key in ("user", "items"):
        schema["properties"][key].pop("default", None)
    schema["oneOf"] = [{"required": ["user"]}, {"required": ["items"]}]


class _Instance(StrictRequest):
    model_config = ConfigDict(json_schema_extra=_exactly_one_of_user_or_items)

    user: Id = Field(None, description="a known user id: their whole history in the run is used")
    items: list[Id] = Field(None, description="recent item ids, oldest first (no user needed)")
    k: WholeNumber = 10
    exclude_seen: bool = True

    @model_validator(mode="after")
    def _one_of(self) -> _Instance:
        if (self.user is None) == (self.items is None):
            raise ValueError("give either 'user' (a user id) or 'items' (recent item ids), not both or neither")
        return self


class RecommendedItem(BaseModel):
    item: Id
    title: str | None
    score: float


class Recommendation(BaseModel):
    user: Id | None = None
    items: list[RecommendedItem]
    fallback: bool = Field(description="true: the most popular items, because of fallback_reason")
    fallback_reason: str | None
    unknown_items: list[Id] | None = None


class RecommendResponse(BaseModel):
    predictions: list[Recommendation]
    model: str


def instance_model(cfg: RecsysConfig) -> type[_Instance]:
    """One request instance, with this recipe's bounds on K and on the history length."""
    s = cfg.serve
    return create_model(
        "Instance", __base__=_Instance,
        items=(list[Id], Field(None, min_length=1, max_length=s.max_history,
                               description="recent item ids, oldest first (no user needed)")),
        k=(WholeNumber, Field(s.default_k, ge=1, le=s.max_k, description="how many items to return")),
    )


def request_model(instance: type[_Instance]) -> type[BaseModel]:
    """The POST body: a non-empty list of instances (``serve.max_instances`` is the factory's)."""
    return create_model("RecommendRequest", __base__=StrictRequest, instances=(list[instance], Field(min_length=1)))


def average_scores(model: Recommender, histories: list[np.ndarray], batch_size: int = 256,
                   max_users: int = 2048) -> np.ndarray:
    """The model's mean score of every item over the known users (up to ``max_users``, evenly
    spread): what a user the model cannot personalise for gets, on the model's own score scale
    (for ``popularity``: the counts, i.e. the most popular items)."""
    known = [h for h in histories if len(h)]
    known = known[::max(1, len(known) // max_users)][:max_users]
    if not known:
        return np.zeros(model.n_items, dtype=np.float32)
    total = np.zeros(model.n_items, dtype=np.float64)
    for start in range(0, len(known), batch_size):
        total += model.score(known[start:start + batch_size]).sum(axis=0)
    return (total / len(known)).astype(np.float32)


@dataclasses.dataclass
class Query:
    """One instance, resolved: its history (item indices), why it falls back (or None), unknown ids."""

    instance: _Instance
    history: np.ndarray
    reason: str | None
    unknown: list


class RecsysPredictor(Predictor):
    response_model = RecommendResponse
    page = "recommend"  # the demo page: the list with titles, and why (history or fallback reason)

    def __init__(self, cfg: RecsysConfig, ds: Interactions, model: Recommender, run: Path | None = None):
        self.cfg, self.ds, self.model, self.run = cfg, ds, model, run
        self.instance_model = instance_model(cfg)
        self.request_model = request_model(self.instance_model)
        self.user_index = {str(u): i for i, u in enumerate(ds.user_ids)}
        self.item_index = {str(i): j for j, i in enumerate(ds.item_ids)}
        self.histories = ds.sequences(SPLITS)
        self.popularity = np.bincount(ds.frame["item"].to_numpy(), minlength=ds.n_items).astype(np.float32)
        self.fallback = average_scores(model, self.histories, cfg.eval.batch_size)

    def prepare(self, inst: _Instance) -> Query:
        """An instance's history from the run's data (a known user) or from its item ids."""
        if inst.items is None:
            u = self.user_index.get(str(inst.user))
            if u is None:
                return Query(inst, np.zeros(0, np.int64), "unknown user", [])
            return Query(inst, self.histories[u], None, [])
        known = [self.item_index.get(str(i)) for i in inst.items]
        unknown = [i for i, j in zip(inst.items, known) if j is None]
        hist = np.array([j for j in known if j is not None], dtype=np.int64)
        return Query(inst, hist, None if len(hist) else "no known item in the history", unknown)

    def predict_batch(self, queries: list[Query]) -> list[dict]:
        scores = np.empty((len(queries), self.ds.n_items), dtype=np.float32)
        personal = [i for i, q in enumerate(queries) if q.reason is None]
        if personal:
            scores[personal] = self.model.score([queries[i].history for i in personal])
        scores[[i for i, q in enumerate(queries) if q.reason is not None]] = self.fallback
        exclude(scores, [q.history if q.instance.exclude_seen else q.history[:0] for q in queries])
        top = top_k(scores, max(q.instance.k for q in queries))
        return [self._answer(q, scores[row], top[row]) for row, q in enumerate(queries)]

    def _answer(self, q: Query, scores: np.ndarray, top: np.ndarray) -> dict:
        picks = [j for j in top[:q.instance.k] if np.isfinite(scores[j])]
        return {
            **({"user": q.instance.user} if q.instance.items is None else {}),
            "items": [{"item": self.ds.item_ids[j], "title": self.ds.titles[j], "score": float(scores[j])}
                      for j in picks],
            "fallback": q.reason is not None, "fallback_reason": q.reason,
            **({"unknown_items": q.unknown} if q.unknown else {}),
        }

    @classmethod
    def from_run(cls, cfg: RecsysConfig, run: Path) -> RecsysPredictor:
        """The ``serve`` stage's predictor factory: the run's data and model (called in the
        server's lifespan, so ``/readyz`` turns 200 once they are loaded and warmed)."""
        set_threads(cfg.serve.torch_threads)
        ds, model = load_for_inference(cfg, run)
        return cls(cfg, ds, model, run)

    def respond(self, body, outputs: list) -> dict:
        return {"predictions": outputs, "model": self.cfg.model.name}

    def metadata(self) -> dict:
        s = self.cfg.serve
        return {"run_id": self.run.name if self.run else None, "task": "recommend", "model": self.cfg.model.name,
                "users": self.ds.n_users, "items": self.ds.n_items,
                "limits": {"max_k": s.max_k, "max_history": s.max_history, "max_instances": s.max_instances},
                "metrics": load_metrics(self.run) if self.run else {}}

    def example(self) -> dict:
        popular = [self.ds.item_ids[j] for j in np.argsort(-self.popularity, kind="stable")[:3]]
        return {"instances": [{"user": self.ds.user_ids[0], "k": 10}, {"items": popular, "k": 5}]}
