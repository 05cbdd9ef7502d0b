"""The ``export`` stage: a run's model in a form that scores without this project.

``<run>/export/`` gets ``items.json`` (catalogue ids and titles in score order: column j of every
score row is ``item_ids[j]``) and the model: SASRec as ONNX (``model.onnx``: input ``items``,
int64 ``(batch, max_len)`` left-padded tokens, catalogue index + 1, 0 = padding; output
``scores``, ``(batch, n_items)``; also written to ``<run>/model.onnx``, where ``serve.backend=onnx``
reads it), the others as ``model.safetensors`` with the scoring rule in its metadata (EASE: the
item-item matrix ``B``, scores = x·B for a binary history row x; ALS: the item factors, the user
vector is a least-squares fold-in; ItemKNN: ``B`` as CSR parts; popularity: ``counts``).

    python -m recsys_app export --run runs/recsys_app/movielens/latest
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import safetensors.numpy

from recsys_app.recommend.config import RecsysConfig
from recsys_app.recommend.model import load_trained
from shared.errors import UserError
from shared.runs import atomic_path, write_json

log = logging.getLogger(__name__)

SCORING = {
    "popularity": "scores = counts for every history",
    "itemknn": "B = csr_matrix((data, indices, indptr), (n_items, n_items)); scores = x @ B, x the binary history row",
    "ease": "scores = x @ B, x the binary history row (B has a zero diagonal)",
    "als": ("Y = item_factors; x = solve(Y.T@Y + regularization*I + (alpha-1)*Y[S].T@Y[S], alpha*Y[S].sum(0)) "
            "for the history's item set S; scores = Y @ x"),
}


def export(cfg: RecsysConfig, run: Path) -> dict:
    """The ``export`` stage: write ``<run>/export/`` (see the module docstring); returns the paths."""
    ds, model = load_trained(cfg, run)
    out = Path(run) / "export"
    out.mkdir(exist_ok=True)
    files = [write_json(out / "items.json", {"item_ids": ds.item_ids, "titles": ds.titles})]
    if model.name == "sasrec":
        files.append(_export_sasrec(model, run, out, ds))
    else:
        meta = {"model": model.name, "n_items": str(ds.n_items), "scoring": SCORING[model.name],
                "config": json.dumps(getattr(cfg.model, model.name, None).model_dump() if model.name != "popularity"
                                     else {})}
        with atomic_path(out / "model.safetensors") as tmp:
            safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in model.tensors().items()}, str(tmp),
                                        metadata=meta)
        files.append(out / "model.safetensors")
    log.info("exported %s to %s", model.name, out)
    return {"export": str(out), "model": model.name, "files": [str(f) for f in files]}


def _export_sasrec(model, run: Path, out: Path, ds) -> Path:
    """``model.onnx`` in the run and in ``export/``, checked against torch on a few histories."""
    import torch

    from recsys_app.recommend.sasrec import NextItemScorer
    from shared.onnx_export import OnnxSession, export_onnx

    # a few real histories, an empty one and a long one: the check covers padding and truncation
    histories = ds.sequences(("train", "valid", "test"))[:6] + [np.zeros(0, np.int64), np.arange(ds.n_items)]
    tokens = model.tokens(histories)
    scorer = NextItemScorer(model.net).eval().cpu()
    # torch's fused inference kernel for transformer layers has no ONNX form: trace the plain ops
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        path = export_onnx(scorer, (torch.as_tensor(tokens),), Path(run) / "model.onnx", input_names=["items"],
                           output_names=["scores"], dynamic_axes={"items": {0: "batch"}, "scores": {0: "batch"}})
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    with torch.no_grad():
        expected = scorer(torch.as_tensor(tokens)).numpy()
    got = OnnxSession(path).run({"items": tokens})[0]
    if not np.allclose(got, expected, atol=1e-3, rtol=1e-3):
        path.unlink()
        raise UserError(f"the ONNX graph of {run} does not reproduce the torch scores "
                        f"(max difference {np.abs(got - expected).max():.3g}); serve with backend=torch")
    shutil.copyfile(path, out / "model.onnx")
    return out / "model.onnx"
