"""Serving a run: ``POST /predict`` → top-K items with titles and scores; and batch ``predict``.

Each instance names a known ``user`` (their whole history in the run's data is used) or sends
``items``, a list of recent item ids, oldest first (session-based: no user needed). ``k`` is
bounded by ``serve.max_k`` and ``items`` by ``serve.max_history`` (422 beyond them).
``exclude_seen`` (default true) drops the history's items. An unknown user, or a list with no
known item, gets the most popular items instead, with ``fallback: true`` and the reason;
unknown ids in a list are skipped and echoed in ``unknown_items``.

    python -m recsys_app serve [--run runs/recsys_app/movielens/latest] [--port 8000]
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"instances": [{"user": 1, "k": 5}, {"items": [1, 260, 1196], "k": 5}]}'
    python -m recsys_app predict --input users.csv --output recs.csv   # one row per (user, rank)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from recsys_app.config import RecsysConfig
from recsys_app.data import read_table, require_columns
from recsys_app.dataset import SPLITS, Interactions
from recsys_app.models import Recommender
from recsys_app.ranking import exclude, top_k
from shared.device import set_threads
from shared.errors import UserError
from shared.runs import load_metrics, write_text
from shared.serving import Predictor, create_app
from shared.serving import serve as serve_app

Id = int | str


class _Instance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id | None = None
    items: list[Id] | None = None
    k: int = 10
    exclude_seen: bool = True

    @model_validator(mode="after")
    def _one_of(self) -> _Instance:
        if (self.user is None) == (self.items is None):
            raise ValueError("give either 'user' (a user id) or 'items' (recent item ids), not both or neither")
        return self


def instance_model(cfg: RecsysConfig) -> type[_Instance]:
    """One request instance, with this recipe's bounds on K and on the history length."""
    s = cfg.serve
    return create_model(
        "Instance", __base__=_Instance,
        items=(list[Id] | None, Field(None, min_length=1, max_length=s.max_history,
                                      description="recent item ids, oldest first")),
        k=(int, Field(s.default_k, ge=1, le=s.max_k, description="how many items to return")),
    )


def request_model(cfg: RecsysConfig, instance: type[_Instance]) -> type[BaseModel]:
    """The POST body: a bounded list of instances."""
    return create_model("RecommendRequest", __config__=ConfigDict(extra="forbid"),
                        instances=(list[instance], Field(min_length=1, max_length=cfg.serve.max_instances)))


class RecsysPredictor(Predictor):
    def __init__(self, cfg: RecsysConfig, ds: Interactions, model: Recommender, run: Path | None = None):
        self.cfg, self.ds, self.model, self.run = cfg, ds, model, run
        self.instance_model = instance_model(cfg)
        self.request_model = request_model(cfg, self.instance_model)
        self.user_index = {str(u): i for i, u in enumerate(ds.user_ids)}
        self.item_index = {str(i): j for j, i in enumerate(ds.item_ids)}
        self.histories = ds.sequences(SPLITS)
        self.popularity = np.bincount(ds.frame["item"].to_numpy(), minlength=ds.n_items).astype(np.float32)

    def resolve(self, inst) -> tuple[np.ndarray, str | None, list]:
        """An instance's history (item indices), its fallback reason (or None) and unknown ids."""
        if inst.items is None:
            u = self.user_index.get(str(inst.user))
            if u is None:
                return np.zeros(0, np.int64), "unknown user", []
            return self.histories[u], None, []
        known = [self.item_index.get(str(i)) for i in inst.items]
        unknown = [i for i, j in zip(inst.items, known) if j is None]
        hist = np.array([j for j in known if j is not None], dtype=np.int64)
        return hist, (None if len(hist) else "no known item in the history"), unknown

    def predict_batch(self, items: list) -> list:
        resolved = [self.resolve(inst) for inst in items]
        scores = np.empty((len(items), self.ds.n_items), dtype=np.float32)
        personal = [i for i, (_, reason, _) in enumerate(resolved) if reason is None]
        if personal:
            scores[personal] = self.model.score([resolved[i][0] for i in personal])
        fallback = [i for i, (_, reason, _) in enumerate(resolved) if reason is not None]
        scores[fallback] = self.popularity
        seen = [h if inst.exclude_seen else h[:0] for inst, (h, _, _) in zip(items, resolved)]
        exclude(scores, seen)
        top = top_k(scores, max(inst.k for inst in items))
        out = []
        for row, (inst, (_, reason, unknown)) in enumerate(zip(items, resolved)):
            picks = [j for j in top[row, :inst.k] if np.isfinite(scores[row, j])]
            out.append({
                **({"user": inst.user} if inst.items is None else {}),
                "items": [{"item": self.ds.item_ids[j], "title": self.ds.titles[j],
                           "score": float(scores[row, j])} for j in picks],
                "fallback": reason is not None, "fallback_reason": reason,
                **({"unknown_items": unknown} if unknown else {}),
            })
        return out

    def respond(self, body, outputs: list) -> dict:
        return {"predictions": outputs, "model": self.cfg.model.name}

    def metadata(self) -> dict:
        s = self.cfg.serve
        return {"run_id": self.run.name if self.run else None, "task": "topk", "model": self.cfg.model.name,
                "users": self.ds.n_users, "items": self.ds.n_items,
                "limits": {"max_k": s.max_k, "max_history": s.max_history, "max_instances": s.max_instances},
                "metrics": load_metrics(self.run) if self.run else {}}

    def example(self) -> dict:
        popular = [self.ds.item_ids[j] for j in np.argsort(-self.popularity, kind="stable")[:3]]
        return {"instances": [{"user": self.ds.user_ids[0], "k": 10}, {"items": popular, "k": 5}]}


def load_predictor(args) -> RecsysPredictor:
    from recsys_app.train import load_trained

    cfg, ds, model, run = load_trained(args)
    return RecsysPredictor(cfg, ds, model, run)


def serve(args) -> None:
    """The ``serve`` stage: REST on ``--host``/``--port`` (``serve.*`` overrides apply)."""
    from recsys_app.train import load_trained

    cfg, ds, model, run = load_trained(args)
    set_threads(cfg.serve.torch_threads)
    serve_cfg = cfg.serve.model_copy(update={"host": args.host, "port": args.port})
    app = create_app(lambda: RecsysPredictor(cfg, ds, model, run), serve_cfg, title=f"recsys_app · {cfg.name}")
    serve_app(app, serve_cfg.host, serve_cfg.port)


def predict(args) -> dict:
    """The ``predict`` stage: top-K for each user in ``--input`` (a column named like
    ``data.user_col``), written to ``--output`` as CSV (one row per user and rank) or JSON lines."""
    if not args.input:
        raise UserError("predict needs --input FILE with a user column (and --output FILE, default stdout)")
    predictor = load_predictor(args)
    col = predictor.cfg.data.user_col
    frame = read_table(args.input)
    require_columns(frame, {"data.user_col": col}, args.input)
    users = frame[col].drop_duplicates().tolist()
    instance = predictor.instance_model
    outputs = []
    for start in range(0, len(users), predictor.cfg.eval.batch_size):
        batch = [instance(user=u) for u in users[start:start + predictor.cfg.eval.batch_size]]
        outputs.extend(predictor.predict_batch(batch))
    rows = [{"user": o["user"], "rank": r + 1, **it, "fallback": o["fallback"]}
            for o in outputs for r, it in enumerate(o["items"])]
    if args.output and args.output.endswith(".csv"):
        write_text(args.output, pd.DataFrame(rows, columns=["user", "rank", "item", "title", "score", "fallback"])
                   .to_csv(index=False))
    else:
        text = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in outputs)
        if args.output in (None, "-"):
            sys.stdout.write(text)
        else:
            write_text(args.output, text)
    if args.output in (None, "-"):
        return {}  # stdout holds the recommendations; keep it parseable
    return {"users": len(users), "fallback_users": sum(o["fallback"] for o in outputs), "output": args.output}
