"""Vision benchmarks, side by side in one run on this machine (``make bench-vision``):

1. the CPU's measured matmul peak (fp32 and bf16, one big matmul), the yardstick for the rest;
2. inference images/s at batch 1 and 32 for ResNet-18 (224×224) and the recipe's U-Net:
   torch eager fp32, channels-last fp32, channels-last + bf16 autocast, ONNX Runtime fp32 and int8,
   each with the fraction of the peak it reaches (FLOPs counted by ``torch.utils.flop_counter``;
   ResNet-18 is ≈3.6 GFLOP per 224² image);
3. training images/s (one optimizer step per batch) for both models;
4. accuracy of each served backend against fp32 on the trained runs' test splits (when there are runs);
5. ``POST /predict`` throughput over loopback HTTP at concurrency 1 and 16, micro-batching on vs off.

    python -m bench.vision [--quick] [--duration 5] [--threads N]

Results: bench/results/vision.json and vision.md. Speeds are this machine's, at the time of the run:
on a shared machine, compare rows of one run with each other, not with another run.
"""
from __future__ import annotations

import argparse
import base64
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from bench.loadgen import batching_sweep, python
from shared.config import validate
from shared.inference import OnnxRunner, TorchRunner
from shared.runs import load_run_config, read_json, runs_root, write_json, write_text
from vision_app.classify import data as classify_data
from vision_app.classify import export as classify_export
from vision_app.classify import model as classify_model
from vision_app.classify.config import ClassifyConfig
from vision_app.common.backend import export_image_model
from vision_app.common.data import ImageDataset
from vision_app.common.images import encode_png
from vision_app.common.manifest import manifest_path
from vision_app.segment import data as segment_data
from vision_app.segment import export as segment_export
from vision_app.segment import model as segment_model
from vision_app.segment.config import SegmentConfig, SegmentModel
from vision_app.segment.evaluate import segmentation_metrics
from vision_app.segment.model import build_segmenter

# per task: (config, data module: eval_preset, model module: load_model, export stage)
TASKS = {"classify": (ClassifyConfig, classify_data, classify_model, classify_export.export),
         "segment": (SegmentConfig, segment_data, segment_model, segment_export.export)}


def _engine(runner):
    """A shared.inference runner as a callable from an image batch to its logits."""
    return lambda x: runner({"image": x})[0]


def _rate(fn, n_images: int, min_seconds: float, min_reps: int = 2) -> float:
    fn()  # warm-up
    reps, t0 = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - t0 < min_seconds:
        fn()
        reps += 1
    return reps * n_images / (time.perf_counter() - t0)


def matmul_peak(n: int = 2048) -> dict:
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        rate = _rate(lambda a=a, b=b: a @ b, 1, 1.0, 3)
        out[f"{name}_gflops"] = 2 * n ** 3 * rate / 1e9
    return out


def flops_per_image(model, size: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    return float(counter.get_total_flops())


def inference(name: str, model, size: int, tmp: Path, peak: dict, seconds: float, batches=(1, 32)) -> list[dict]:
    flops = flops_per_image(model, size)
    export_image_model(model, tmp, size, calibration=[torch.randn(4, 3, size, size) for _ in range(2)])
    engines = {
        "torch fp32 eager": _engine(TorchRunner(model, precision="fp32")),
        "torch bf16 autocast + channels_last": _engine(TorchRunner(model, precision="bf16")),
        "onnxruntime fp32": _engine(OnnxRunner(tmp / "model.onnx")),
        "onnxruntime int8 (static QDQ)": _engine(OnnxRunner(tmp / "model.int8.onnx", backend="onnx-int8")),
    }
    cl = model.to(memory_format=torch.channels_last).eval()
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, size, size)
        runs = dict(engines)
        runs["torch fp32 channels_last"] = lambda t: cl(t.contiguous(memory_format=torch.channels_last))
        for backend, engine in runs.items():
            with torch.inference_mode():
                ips = _rate(lambda e=engine, x=x: e(x), batch, seconds)
            ref = peak["bf16_gflops"] if "bf16" in backend else peak["fp32_gflops"]
            rows.append({"model": name, "size": size, "batch": batch, "backend": backend,
                         "images_per_s": ips, "gflop_per_image": flops / 1e9,
                         "fraction_of_peak": ips * flops / 1e9 / ref})
        model.to(memory_format=torch.contiguous_format)
    return rows


def training(name: str, model, size: int, n_classes: int, batch: int, seconds: float, dense: bool) -> dict:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, n_classes, (batch, size, size) if dense else (batch,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return {"model": name, "size": size, "batch": batch, "images_per_s": _rate(step, batch, seconds)}


def backend_accuracy(kind: str, run: Path, limit: int) -> list[dict]:
    """Each backend's test score on a trained run (and how often it agrees with fp32)."""
    model_cls, data, models, export = TASKS[kind]
    cfg = validate(model_cls, load_run_config(run))
    manifest = read_json(manifest_path(cfg))
    ds = ImageDataset(manifest["splits"]["test"][:limit], data.eval_preset(cfg), cfg.data.limits(), cache=False)
    xs = torch.stack([ds[i]["image"] for i in range(len(ds))])
    truth = torch.stack([ds[i]["label" if kind == "classify" else "mask"] for i in range(len(ds))])
    model = models.load_model(run, cfg)
    if not (run / "model.int8.onnx").exists():
        export(cfg, run)
    engines = {"torch fp32": _engine(TorchRunner(model, precision="fp32")),
               "torch bf16 + channels_last": _engine(TorchRunner(model, precision="bf16")),
               "onnxruntime fp32": _engine(OnnxRunner(run / "model.onnx")),
               "onnxruntime int8": _engine(OnnxRunner(run / "model.int8.onnx", backend="onnx-int8"))}
    rows, ref = [], None
    for backend, engine in engines.items():
        pred = torch.from_numpy(np.concatenate([engine(xs[i:i + 64]) for i in range(0, len(xs), 64)])).argmax(1)
        ref = pred if ref is None else ref
        if kind == "classify":
            score = {"accuracy": (pred == truth).float().mean().item()}
        else:
            m = segmentation_metrics(pred, truth, manifest["classes"])
            score = {"mean_iou": m["mean_iou"]}
        rows.append({"task": kind, "backend": backend, "images": len(xs), **score,
                     "agreement_with_fp32": (pred == ref).float().mean().item()})
    return rows


def http(kind: str, run: Path, image: bytes, duration: float) -> list[dict]:
    body = {"instances": [{"image_base64": base64.b64encode(image).decode()}]}
    rows = batching_sweep([python(), "-m", "vision_app", "serve", "--run", str(run)], body, (1, 16), duration)
    return [{"task": kind, **r} for r in rows]


def _table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller inputs and shorter timings (a smoke run)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per HTTP load point")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seconds = 0.5 if args.quick else 3.0
    rsize = 64 if args.quick else 224
    res: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                             "threads": torch.get_num_threads()}}
    res["peak"] = matmul_peak(1024 if args.quick else 2048)
    seg_cfg = SegmentConfig()
    unet_model_cfg = SegmentModel(depth=3, width=16)
    with tempfile.TemporaryDirectory() as tmp:
        resnet = torchvision.models.resnet18(weights=None)
        unet = build_segmenter(unet_model_cfg, 4)
        res["inference"] = (inference("resnet18", resnet, rsize, Path(tmp) / "r", res["peak"], seconds)
                            + inference("unet", unet, seg_cfg.augment.size, Path(tmp) / "u", res["peak"], seconds))
    res["training"] = [training("resnet18", torchvision.models.resnet18(weights=None), rsize, 1000, 16, seconds, False),
                       training("unet", build_segmenter(unet_model_cfg, 4), 64, 4, 16, seconds, True)]
    res["accuracy"], res["http"] = [], []
    for kind, name in (("classify", "classify"), ("segment", "segment")):
        run = runs_root() / "vision_app" / name / "latest"
        if not (run / "model.safetensors").exists():
            continue
        res["accuracy"] += backend_accuracy(kind, run.resolve(), 64 if args.quick else 10_000)
        sample = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
        res["http"] += http(kind, run.resolve(), encode_png(sample), 1.0 if args.quick else args.duration)
    out = Path("bench/results")
    write_json(out / "vision.json", res)
    md = [(f"# Vision benchmarks\n\n{res['machine']}; matmul peak fp32 {res['peak']['fp32_gflops']:.1f} GFLOP/s, "
           f"bf16 {res['peak']['bf16_gflops']:.1f} GFLOP/s\n"),
          ("## Inference\n\nfraction_of_peak: achieved GFLOP/s over the measured fp32 matmul peak (bf16 rows: the "
           "bf16 peak); int8 rows can exceed 1, as int8 math is faster than the fp32 yardstick.\n"),
          _table(res["inference"], ["model", "size", "batch", "backend", "images_per_s",
                                                      "gflop_per_image", "fraction_of_peak"]),
          "\n## Training (one optimizer step per batch)\n", _table(res["training"], ["model", "size", "batch",
                                                                                     "images_per_s"]),
          "\n## Served backends vs fp32 on the test split\n",
          _table(res["accuracy"], ["task", "backend", "images", "accuracy", "mean_iou", "agreement_with_fp32"]),
          "\n## POST /predict (one image per request)\n",
          _table(res["http"], ["task", "batching", "concurrency", "throughput_rps", "p50_ms", "p99_ms", "statuses"])]
    write_text(out / "vision.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
