"""Batch segmentation: a mask for every image of ``--input`` (an image, a folder, or a CSV with a
``path`` column), computed by the backend ``serve:`` names: palette PNGs at each image's own size
(pixel values are class ids) in the ``--output`` folder, plus ``predictions.jsonl`` with each
image's class pixel fractions. :func:`predict_images` is the computation the server runs too."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.inference import Runner
from shared.runs import read_json, write_bytes, write_text
from vision_app.common.backend import run_backend
from vision_app.common.images import encode_png, list_inputs, read_image
from vision_app.common.shapes import mask_palette
from vision_app.segment.data import eval_preset
from vision_app.segment.export import export
from vision_app.segment.model import load_model


def predict_images(runner: Runner, images: list[np.ndarray], cfg, classes: list[str]) -> list[dict]:
    """Decoded ``HxWx3`` images → ``{"mask": HxW uint8 at the image's size, "fractions": {class: share}}``."""
    preset = eval_preset(cfg)
    out = []
    for start in range(0, len(images), 32):
        chunk = images[start:start + 32]
        logits = torch.from_numpy(runner({"image": torch.stack([preset(im) for im in chunk])})[0]).float()
        for im, lg in zip(chunk, logits):
            h, w = im.shape[:2]
            full = F.interpolate(lg[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            mask = full.argmax(0).numpy().astype(np.uint8)
            counts = np.bincount(mask.ravel(), minlength=len(classes))[: len(classes)] / mask.size
            out.append({"mask": mask, "fractions": {c: float(f) for c, f in zip(classes, counts)}})
    return out


def predict(cfg, run: Path, input: Path, output: Path) -> dict:
    """Masks of every image of ``input`` into the folder ``output`` (``<stem>.png`` each) and
    ``output/predictions.jsonl`` (``{"path", "mask", "fractions"}`` per image)."""
    classes = read_json(run / "labels.json")
    runner = run_backend(cfg, run, lambda: load_model(run, cfg), lambda: export(cfg, run))
    out_dir = Path(output)
    rows = []
    for f in list_inputs(input):
        result = predict_images(runner, [np.asarray(read_image(f, cfg.serve.limits()))], cfg, classes)[0]
        mask_file = out_dir / f"{f.stem}.png"
        write_bytes(mask_file, encode_png(result["mask"], palette=mask_palette()))
        rows.append({"path": str(f), "mask": str(mask_file), "fractions": result["fractions"]})
    write_text(out_dir / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return {"images": len(rows), "output": str(out_dir), "backend": cfg.serve.backend}
