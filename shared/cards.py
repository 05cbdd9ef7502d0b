"""The model card every run gets, in the Hugging Face format: ``README.md`` with YAML metadata
(library, task, tags, the metrics) and the same sections for every task: what was trained, on
what data, how well, the command that made it, and the limits. Written by
:func:`shared.runs.finish_run` only; a task adds its own section through ``result["card"]``.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import yaml

from shared.runs import write_text

# the Hugging Face pipeline tag of each (app, task), where one exists
PIPELINE_TAGS = {
    ("nlp_app", "classify"): "text-classification",
    ("nlp_app", "ner"): "token-classification",
    ("nlp_app", "qa"): "question-answering",
    ("nlp_app", "pretrain"): "fill-mask",
    ("vision_app", "classify"): "image-classification",
    ("vision_app", "detect"): "object-detection",
    ("vision_app", "segment"): "image-segmentation",
    ("tabular_mining", "classify"): "tabular-classification",
}


def _card_data(config: dict, metrics: dict, status: dict):
    from huggingface_hub import EvalResult, ModelCardData

    app, task = status.get("app", ""), config.get("task", "")
    data = config.get("data") or {}
    dataset = str(data.get("path") or data.get("source") or "custom")
    tag = PIPELINE_TAGS.get((app, task))
    results = [EvalResult(task_type=tag or task or "other", dataset_type=dataset, dataset_name=dataset,
                          dataset_split="test", metric_type=k.split("/", 1)[1], metric_value=round(float(v), 6))
               for k, v in sorted(metrics.items()) if k.startswith("test/") and k.count("/") == 1]
    return ModelCardData(library_name="mlref", tags=[t for t in ("mlref", app, task) if t], pipeline_tag=tag,
                         model_name=config.get("name") or "model", eval_results=results or None)


def _metrics_table(metrics: dict) -> str:
    rows = [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())
            if isinstance(v, float) and k.split("/", 1)[0] in ("valid", "test") and k.count("/") == 1]
    return "| metric | value |\n|---|---|\n" + "\n".join(rows) if rows else "(no held-out metrics)"


def render_model_card(config: dict, metrics: dict, status: dict, notes: str = "") -> str:
    """The card's text: YAML front matter, then the same sections for every task."""
    from huggingface_hub import ModelCard

    data = _card_data(config, metrics, status)
    section = lambda key: yaml.safe_dump(config.get(key, {}), sort_keys=False, allow_unicode=True).strip()
    body = f"""
# {config.get("name", "model")} ({status.get("app", "")} · {config.get("task", "")})

## Model
```yaml
{section("model")}
```

## Data
```yaml
{section("data")}
```

## Results
{_metrics_table(metrics)}

## How it was made
`{status.get("command", "")}` (Python {sys.version.split()[0]}, {platform.machine()}; started
{status.get("started", "?")}, resumed {status.get("resumed", 0)} time(s)). The full resolved config is
`config.yaml`; every metric is in `metrics.json`.
{notes}

## Limits
Trained and scored on the data above only; score it on your own data (`evaluate --data FILE`)
before relying on it.
"""
    return str(ModelCard("---\n" + data.to_yaml() + "\n---\n" + body))


def write_model_card(run: Path, config: dict, metrics: dict, status: dict, notes: str = "") -> Path:
    return write_text(Path(run) / "README.md", render_model_card(config, metrics, status, notes))
