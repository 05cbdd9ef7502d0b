"""Batch classification: every image of ``--input`` (an image, a folder, or a CSV with a ``path``
column) labelled by the backend ``serve:`` names, one JSON line per image to ``--output``
(``-``: stdout). :func:`predict_images` is the computation the server runs too."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shared.inference import Runner
from shared.runs import read_json, write_text
from vision_app.classify.data import eval_preset
from vision_app.classify.export import export
from vision_app.classify.model import load_model
from vision_app.common.backend import image_logits, run_backend
from vision_app.common.images import json_lines_output, list_inputs, read_image


def predict_images(runner: Runner, images: list[np.ndarray], cfg, classes: list[str], top_k: int = 3) -> list[dict]:
    """Decoded ``HxWx3`` images → ``{"label", "probability", "top": [...]}`` each (shared with the server)."""
    preset = eval_preset(cfg)
    logits = image_logits(runner, [preset(im) for im in images])
    proba = torch.softmax(torch.from_numpy(logits).float(), 1).numpy()
    out = []
    for p in proba:
        order = np.argsort(-p)[: max(1, min(top_k, len(classes)))]
        out.append({"label": classes[order[0]], "probability": float(p[order[0]]),
                    "top": [{"label": classes[j], "probability": float(p[j])} for j in order]})
    return out


def predict(cfg, run: Path, input: Path, output: Path | str) -> dict:
    """Label every image of ``input``; JSON lines ``{"path", "label", "probability", "top"}`` to ``output``."""
    json_lines_output(output)
    classes = read_json(run / "labels.json")
    runner = run_backend(cfg, run, lambda: load_model(run, cfg), lambda: export(cfg, run))
    files = list_inputs(input, cfg.data.path_column, cfg.data.images_dir)  # a CSV named like the training one
    rows = []
    for start in range(0, len(files), 64):
        chunk = files[start:start + 64]
        images = [np.asarray(read_image(f, cfg.serve.limits())) for f in chunk]
        rows += [{"path": str(f), **r} for f, r in zip(chunk, predict_images(runner, images, cfg, classes))]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if str(output) == "-":
        print(text, end="")
    else:
        write_text(output, text)
    return {"images": len(rows), "output": str(output), "backend": cfg.serve.backend}
