"""``POST /predict`` for extractive QA: {question, context} pairs in, answers out::

    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
         -d '{"instances": [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。他是一名工程师。"}]}'
    → {"predictions": [{"answer": "北京", "start": 5, "end": 7, "score": 0.93}]}

``start``/``end`` index the context as sent (``end`` exclusive); ``score`` is the answer's
probability among the candidate spans. Contexts longer than the model's window are read in
overlapping windows. Limits (enforced by :mod:`shared.serving`, a 413 naming the key):
``serve.max_instances`` questions per request, ``serve.max_item_cost`` characters per context;
a question over ``serve.max_question_chars`` characters (``prepare``), a blank question or context,
or one that is not valid Unicode (validation), is a 422 naming its index (that request alone fails).
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from nlp_app.common.requests import Text
from nlp_app.qa.config import QAConfig
from nlp_app.qa.data import QAExample
from nlp_app.qa.export import runner_for
from nlp_app.qa.model import answer
from shared.runs import load_metrics
from shared.serving import HTTPError, Predictor
from shared.serving.predictor import StrictRequest


class QAInstance(StrictRequest):
    question: Text = Field(description="the question (serve.max_question_chars characters at most)")
    context: Text = Field(description="the text the answer is a span of (serve.max_item_cost characters at most)")


class QARequest(StrictRequest):
    instances: list[QAInstance] = Field(min_length=1)

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"instances": [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。他在1998年加入了华为公司。"}]}]})


class QAAnswer(BaseModel):
    answer: str = Field(description="the answer span's text")
    start: int = Field(description="character offset in the context as sent")
    end: int = Field(description="exclusive")
    score: float = Field(description="the span's probability among the candidates")


class QAResponse(BaseModel):
    predictions: list[QAAnswer] = Field(description="one per question, in order")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"predictions": [{"answer": "北京", "start": 5, "end": 7, "score": 0.93}]}]})


class QAPredictor(Predictor):
    request_model = QARequest
    page = "qa"  # the demo page: the context with the answer span marked
    response_model = QAResponse
    cost_unit = "characters"

    def __init__(self, run: Path, cfg: QAConfig, runner, tokenizer):
        self.run, self.cfg, self.runner, self.tokenizer = run, cfg, runner, tokenizer

    @classmethod
    def from_run(cls, cfg: QAConfig, run: Path) -> QAPredictor:
        """What ``serve`` runs: the run's model on ``serve.backend`` (loaded in the app's lifespan)."""
        return cls(run, cfg, *runner_for(cfg, run))

    def cost(self, inst: QAInstance) -> float:
        return len(inst.context)

    def prepare(self, inst: QAInstance) -> QAExample:
        limit = self.cfg.serve.max_question_chars
        if len(inst.question) > limit:
            raise HTTPError(422, f"question has {len(inst.question)} characters; the limit is {limit} "
                                 "(serve.max_question_chars)")
        return QAExample("0", inst.question.strip(), inst.context)

    def predict_batch(self, examples: list[QAExample]) -> list[dict]:
        spans = answer(self.runner, self.tokenizer, examples, self.cfg, self.cfg.eval.batch_size)
        return [{"answer": s.text, "start": s.start, "end": s.end, "score": round(s.score, 6)} for s in spans]

    def metadata(self) -> dict:
        s = self.cfg.serve
        return {"task": "qa", "run": self.run.name, "recipe": self.cfg.name, "backend": s.backend,
                "max_length": self.cfg.model.max_length, "doc_stride": self.cfg.features.doc_stride,
                "limits": {"max_instances": s.max_instances, "max_context_characters": s.max_item_cost,
                           "max_question_chars": s.max_question_chars},
                "metrics": load_metrics(self.run)}

    def example(self) -> dict:
        return {"instances": [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。他在1998年加入了华为公司。"}]}
