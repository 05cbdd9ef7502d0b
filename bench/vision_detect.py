"""Detection benchmarks (``python -m bench.vision_detect``), both detectors at their recipe's input size:

1. training images/s (one optimizer step per batch of the recipe's batch size, synthetic boxes);
2. inference images/s at batch 1 and 16: the YOLO-style detector in torch (with and without its
   NMS) and in ONNX Runtime (the exported graph plus the same NMS), Faster R-CNN in torch;
3. with trained runs under ``runs/vision_app/detect*/latest``: test mAP@0.5 of each backend, so a
   faster backend is seen to give the same answers.

    python -m bench.vision_detect [--quick] [--threads N]

Results: bench/results/vision_detect.json and vision_detect.md. Speeds are this machine's at the
time of the run: on a shared machine compare rows of one run with each other, not across runs.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.vision import _rate, _table
from shared.config import load_config, validate
from shared.onnx_export import OnnxSession, export_onnx
from shared.runs import load_run_config, runs_root, write_json, write_text
from vision_app.common.images import read_image
from vision_app.detect.config import DetectConfig
from vision_app.detect.data import load_processed
from vision_app.detect.evaluate import detection_metrics
from vision_app.detect.export import RawYolo
from vision_app.detect.models import build_detector
from vision_app.detect.predict import Detector
from vision_app.detect.yolo import postprocess

RECIPES = {"yolo": "configs/vision_app/detect.yaml", "fasterrcnn": "configs/vision_app/detect_fasterrcnn.yaml"}


def _recipe(path: str) -> DetectConfig:
    return load_config(DetectConfig, path)


def _targets(batch: int, size: int, n_classes: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(batch):
        xy = torch.rand(2, 2, generator=g) * size * 0.6
        wh = 8 + torch.rand(2, 2, generator=g) * size * 0.35
        out.append({"boxes": torch.cat([xy, xy + wh], 1), "labels": torch.randint(0, n_classes, (2,), generator=g)})
    return out


def training(arch: str, cfg: DetectConfig, seconds: float) -> dict:
    model = build_detector(cfg.model, 3).train()
    opt = torch.optim.AdamW(model.parameters(), cfg.train.lr)
    b, s = cfg.train.batch_size, cfg.model.input_size
    x, t = torch.randn(b, 3, s, s), _targets(b, s, 3)

    def step():
        loss = sum(model(x, t).values())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return {"model": arch, "backbone": cfg.model.backbone, "size": s, "batch": b,
            "images_per_s": _rate(step, b, seconds),
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def inference(arch: str, cfg: DetectConfig, tmp: Path, seconds: float, batches=(1, 16)) -> list[dict]:
    model = build_detector(cfg.model, 3).eval()
    s = cfg.model.input_size
    engines = {"torch eager (with NMS)": model}
    if arch == "yolo":
        path = export_onnx(RawYolo(model), (torch.zeros(1, 3, s, s),), tmp / "yolo.onnx", input_names=["image"],
                           output_names=["boxes", "scores"],
                           dynamic_axes={"image": {0: "batch"}, "boxes": {0: "batch"}, "scores": {0: "batch"}})
        session = OnnxSession(path)
        engines["torch eager (graph only, no NMS)"] = model.raw
        engines["onnxruntime (graph only, no NMS)"] = lambda batch: session.run({"image": batch})
        engines["onnxruntime + torchvision NMS"] = lambda batch: postprocess(
            *(torch.from_numpy(a) for a in session.run({"image": batch})), cfg.model.score_thresh, cfg.model.nms_iou)
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, s, s)
        for backend, engine in engines.items():
            with torch.inference_mode():
                ips = _rate(lambda e=engine, b=x: e(b), batch, seconds)
            rows.append({"model": arch, "size": s, "batch": batch, "backend": backend, "images_per_s": ips})
    return rows


def backend_map(arch: str, run: Path, limit: int) -> list[dict]:
    """Test mAP@0.5 of each backend on a trained run (through :class:`Detector`, as served)."""
    cfg = validate(DetectConfig, load_run_config(run))
    test = load_processed(cfg)[1]["test"]
    records = test.images[:limit]
    images = [np.asarray(read_image(Path(test.images_dir) / r.file)) for r in records]
    rows = []
    for backend in ("torch", "onnx") if arch == "yolo" else ("torch",):
        served = cfg.model_copy(update={"serve": cfg.serve.model_copy(update={"backend": backend})})
        preds = Detector.for_run(served, run)(images)
        m, _ = detection_metrics(preds, records, test.classes)
        rows.append({"model": arch, "backend": backend, "images": len(records), "map_50": m["map_50"],
                     "map": m["map"]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter timings (a smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seconds = 0.5 if args.quick else 3.0
    res: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                             "threads": torch.get_num_threads()}, "training": [], "inference": [], "accuracy": []}
    with tempfile.TemporaryDirectory() as tmp:
        for arch, path in RECIPES.items():
            cfg = _recipe(path)
            res["training"].append(training(arch, cfg, seconds))
            res["inference"] += inference(arch, cfg, Path(tmp), seconds)
            run = runs_root() / "vision_app" / cfg.name / "latest"
            if (run / "model.safetensors").exists():
                res["accuracy"] += backend_map(arch, run.resolve(), 16 if args.quick else 10_000)
    out = Path("bench/results")
    write_json(out / "vision_detect.json", res)
    md = [f"# Detection benchmarks\n\n{res['machine']}\n",
          "## Training (one optimizer step per batch)\n",
          _table(res["training"], ["model", "backbone", "size", "batch", "images_per_s", "params_m"]),
          "\n## Inference\n", _table(res["inference"], ["model", "size", "batch", "backend", "images_per_s"]),
          "\n## Backends on the trained runs' test split\n",
          _table(res["accuracy"], ["model", "backend", "images", "map_50", "map"])]
    write_text(out / "vision_detect.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
