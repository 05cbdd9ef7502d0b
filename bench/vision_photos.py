"""The photo recipes on real photos (``python -m bench.vision_photos``): a two-class photo set cut
from a Pascal VOC detection set (each box, with a margin, is the object class; the largest strip of
the same photo clear of every box is ``background``), written in the ImageFolder layout with the
set's own split (``train/`` and ``test/`` folders; ``valid`` is carved out of train), then
``classify_photos[-quick].yaml`` trained on it through the command line.

    python -m bench.vision_photos --voc /work/shared/data/raccoon [--quick] [key=value ...]

The split comes from ``<voc>/data/{train,test}_labels.csv`` (a ``filename`` column) when present,
else every photo goes to train. Results: bench/results/vision_photos.json and .md (the run's test
accuracy, wall time, images per split).
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from PIL import Image

from shared.cli import run_app
from shared.runs import data_root, latest_run, read_json, write_json, write_text
from vision_app.detect.formats import read_voc
from vision_app.tasks import TASKS

MIN_SIDE = 48  # a background strip narrower than this is not a photo of anything


def _split_of(voc: Path) -> dict[str, str]:
    out = {}
    for split in ("train", "test"):
        path = voc / "data" / f"{split}_labels.csv"
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                out.update({row["filename"]: split for row in csv.DictReader(f)})
    return out


def _background(width: int, height: int, boxes: list[list[float]]) -> tuple[int, int, int, int] | None:
    """The largest of the four strips (left, right, above, below every box) of the photo."""
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    strips = [(0, 0, int(x1), height), (int(x2) + 1, 0, width, height), (0, 0, width, int(y1)),
              (0, int(y2) + 1, width, height)]
    strips = [s for s in strips if s[2] - s[0] >= MIN_SIDE and s[3] - s[1] >= MIN_SIDE]
    return max(strips, key=lambda s: (s[2] - s[0]) * (s[3] - s[1]), default=None)


def build_set(voc: Path, out: Path) -> dict[str, int]:
    """Write ``out/<split>/<class>/<photo>.jpg`` crops; returns the images per split and class."""
    ds = read_voc(voc / "annotations", voc / "images")
    split_of, counts = _split_of(voc), {}
    for rec in ds.images:
        split = split_of.get(rec.file, "train")
        with Image.open(Path(ds.images_dir) / rec.file) as im:
            photo = im.convert("RGB")
        for k, (box, label) in enumerate(zip(rec.boxes, rec.labels)):
            mx, my = 0.1 * (box[2] - box[0]), 0.1 * (box[3] - box[1])
            crop = (max(0, box[0] - mx), max(0, box[1] - my), min(rec.width, box[2] + mx), min(rec.height, box[3] + my))
            _save(photo.crop(crop), out / split / ds.classes[label] / f"{Path(rec.file).stem}-{k}.jpg", counts)
        strip = _background(rec.width, rec.height, rec.boxes) if rec.boxes else (0, 0, rec.width, rec.height)
        if strip is not None:
            _save(photo.crop(strip), out / split / "background" / f"{Path(rec.file).stem}.jpg", counts)
    return counts


def _save(image: Image.Image, path: Path, counts: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95)
    key = f"{path.parent.parent.name}/{path.parent.name}"
    counts[key] = counts.get(key, 0) + 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voc", type=Path, default=Path("/work/shared/data/raccoon"))
    parser.add_argument("--out", type=Path, default=None, help="default: data/generated/photos-from-<voc name>")
    parser.add_argument("--quick", action="store_true", help="classify_photos-quick.yaml")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. augment.size=224")
    args = parser.parse_args(argv)
    args.out = args.out or data_root() / "generated" / f"photos-from-{args.voc.name}"
    counts = build_set(args.voc, args.out)
    recipe = f"configs/vision_app/classify_photos{'-quick' if args.quick else ''}.yaml"
    t0 = time.perf_counter()
    code = run_app("vision_app", TASKS, argv=["train", "--config", recipe, f"data.path={args.out}",
                                              "train.progress=false", *args.overrides])
    if code:
        raise SystemExit(code)
    run = latest_run("vision_app", "classify_photos")
    metrics = read_json(run / "metrics.json")
    result = {"recipe": recipe, "overrides": args.overrides, "set": str(args.voc), "images": counts,
              "run": str(run), "wall_seconds": time.perf_counter() - t0,
              **{k: v for k, v in metrics.items() if k.count("/") == 1}}
    out = Path("bench/results")
    write_json(out / "vision_photos.json", result)
    write_text(out / "vision_photos.md", "| recipe | overrides | test accuracy | valid accuracy | epochs run | wall |\n"
               "|---|---|---|---|---|---|\n"
               f"| `{recipe}` | {' '.join(args.overrides) or '-'} | {metrics.get('test/accuracy', float('nan')):.3f} | "
               f"{metrics.get('valid/accuracy', float('nan')):.3f} | {metrics.get('train/steps', 0):.0f} steps | "
               f"{result['wall_seconds'] / 60:.1f} min |\n")
    print(f"test accuracy {metrics.get('test/accuracy'):.3f} in {result['wall_seconds'] / 60:.1f} min ({run})")


if __name__ == "__main__":
    main()
