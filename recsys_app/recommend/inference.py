"""A trained run, loaded to score with the recipe's ``serve.backend``: what ``evaluate``,
``predict`` and ``serve`` all use, so the three score the same way."""
from __future__ import annotations

from pathlib import Path

from recsys_app.recommend.base import Recommender
from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.dataset import Interactions
from recsys_app.recommend.export import export
from recsys_app.recommend.model import load_trained
from shared.errors import UserError


def load_for_inference(cfg: RecsysConfig, run: Path) -> tuple[Interactions, Recommender]:
    """The run's data and model; SASRec scores through ``serve.backend`` (``onnx``: the run's
    ``model.onnx``, exported on first use), the other models with NumPy."""
    ds, model = load_trained(cfg, run)
    backend = cfg.serve.backend
    if backend != "torch":
        if not hasattr(model, "use_backend"):
            raise UserError(f"serve.backend={backend} is for SASRec; {model.name} scores with NumPy from its "
                            "model.safetensors (drop serve.backend)")
        model.use_backend(run, backend, lambda: export(cfg, run))
    return ds, model
