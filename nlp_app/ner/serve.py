"""``POST /predict`` for NER: texts in, entities (type, text, character offsets) out::

    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
         -d '{"instances": [{"text": "江泽民在北京会见了新华社记者。"}]}'
    → {"predictions": [{"entities": [{"type": "PER", "text": "江泽民", "start": 0, "end": 3}, …]}]}

``start``/``end`` index the text as sent (``end`` exclusive). Texts longer than the model's window
are tagged in chunks. Limits: ``serve.max_texts`` per request (413), ``serve.max_chars`` per
text (422, naming the instance).
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from nlp_app.ner.config import NERConfig
from nlp_app.ner.export import runner_for
from nlp_app.ner.model import entities, predict_tags
from shared.runs import load_metrics
from shared.serving import HTTPError, Predictor


class TextInstance(BaseModel):
    text: str = Field(min_length=1, description="one text to tag")


class NERRequest(BaseModel):
    instances: list[TextInstance] = Field(min_length=1)


class NERPredictor(Predictor):
    request_model = NERRequest
    page = "ner"  # the demo page: the text with entities highlighted by type

    def __init__(self, run: Path, cfg: NERConfig, runner, tokenizer, labels: list[str]):
        self.run, self.cfg, self.runner, self.tokenizer, self.labels = run, cfg, runner, tokenizer, labels
        self.serve_cfg = cfg.serve

    def items(self, body: NERRequest) -> list[str]:
        limit = self.serve_cfg.max_texts
        if len(body.instances) > limit:
            raise HTTPError(413, f"{len(body.instances)} texts in one request; the limit is {limit} (serve.max_texts)")
        for i, inst in enumerate(body.instances):
            if len(inst.text) > self.serve_cfg.max_chars:
                raise HTTPError(422, f"instances[{i}].text has {len(inst.text)} characters; the limit is "
                                     f"{self.serve_cfg.max_chars} (serve.max_chars): split the text")
            if not inst.text.strip():
                raise HTTPError(422, f"instances[{i}].text is blank")
        return [inst.text for inst in body.instances]

    def predict_batch(self, texts: list[str]) -> list[dict]:
        tags = predict_tags(self.runner, self.tokenizer, [list(t) for t in texts], self.labels,
                                self.cfg.model.max_length, self.cfg.eval.batch_size)
        return [{"entities": entities(t, tg)} for t, tg in zip(texts, tags)]

    def metadata(self) -> dict:
        return {"task": "ner", "run": self.run.name, "recipe": self.cfg.name, "labels": self.labels,
                "backend": self.serve_cfg.backend, "max_texts": self.serve_cfg.max_texts,
                "max_chars": self.serve_cfg.max_chars, "metrics": load_metrics(self.run)}

    def example(self) -> dict:
        return {"instances": [{"text": "江泽民在北京会见了新华社记者。"}, {"text": "李鹏到上海考察。"}]}


def predictor(cfg: NERConfig, run: Path) -> NERPredictor:
    """What ``serve`` runs: the run's model on ``serve.backend`` (loaded in the app's lifespan)."""
    return NERPredictor(run, cfg, *runner_for(cfg, run))
