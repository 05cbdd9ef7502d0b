"""``POST /predict`` for NER: texts in, entities (type, text, character offsets) out::

    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
         -d '{"instances": [{"text": "江泽民在北京会见了新华社记者。"}]}'
    → {"predictions": [{"entities": [{"type": "PER", "text": "江泽民", "start": 0, "end": 3}, …]}]}

``start``/``end`` index the text as sent (``end`` exclusive). Texts longer than the model's window
are tagged in chunks. Limits (enforced by :mod:`shared.serving`, a 413 naming the key):
``serve.max_instances`` texts per request, ``serve.max_item_cost`` characters per text; a blank
text is a 422 naming its index.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from nlp_app.ner.config import NERConfig
from nlp_app.ner.tagger import Tagger, load_tagger
from shared.runs import load_metrics
from shared.serving import HTTPError, Predictor
from shared.serving.predictor import StrictRequest


class TextInstance(StrictRequest):
    text: str = Field(min_length=1, description="one text to tag")


class NERRequest(StrictRequest):
    instances: list[TextInstance] = Field(min_length=1)


class Entity(BaseModel):
    type: str = Field(description="PER, LOC, ORG … (the run's labels)")
    text: str
    start: int = Field(description="character offset in the text as sent")
    end: int = Field(description="exclusive")


class Entities(BaseModel):
    entities: list[Entity]


class NERResponse(BaseModel):
    predictions: list[Entities] = Field(description="one per text, in order")


class NERPredictor(Predictor):
    request_model = NERRequest
    page = "ner"  # the demo page: the text with entities highlighted by type
    response_model = NERResponse
    cost_unit = "characters"

    def __init__(self, run: Path, cfg: NERConfig, tagger: Tagger):
        self.run, self.cfg, self.tagger = run, cfg, tagger

    @classmethod
    def from_run(cls, cfg: NERConfig, run: Path) -> NERPredictor:
        """What ``serve`` runs: the run's model on ``serve.backend`` (loaded in the app's lifespan)."""
        return cls(run, cfg, load_tagger(cfg, run))

    def items(self, body: NERRequest) -> list[str]:
        return [inst.text for inst in body.instances]

    def cost(self, text: str) -> float:
        return len(text)

    def prepare(self, text: str) -> str:
        if not text.strip():
            raise HTTPError(422, "text is blank")
        return text

    def predict_batch(self, texts: list[str]) -> list[dict]:
        return [{"entities": found} for found in self.tagger.entities(texts)]

    def metadata(self) -> dict:
        s = self.cfg.serve
        return {"task": "ner", "run": self.run.name, "recipe": self.cfg.name, "labels": self.tagger.labels,
                "model": {"encoder": self.cfg.model.encoder, "crf": self.cfg.model.crf},
                "backend": s.backend, "limits": {"max_instances": s.max_instances, "max_item_characters": s.max_item_cost},
                "metrics": load_metrics(self.run)}

    def example(self) -> dict:
        return {"instances": [{"text": "江泽民在北京会见了新华社记者。"}, {"text": "李鹏到上海考察。"}]}
