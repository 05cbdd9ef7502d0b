"""``POST /predict`` for extractive QA: {question, context} pairs in, answers out::

    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
         -d '{"instances": [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。他是一名工程师。"}]}'
    → {"predictions": [{"answer": "北京", "start": 5, "end": 7, "score": 0.93}]}

``start``/``end`` index the context as sent (``end`` exclusive); ``score`` is the answer's
probability among the candidate spans. Contexts longer than the model's window are read in
overlapping windows. Limits: ``serve.max_texts`` questions per request (413),
``serve.max_chars`` characters per context and ``serve.max_question_chars`` per question (422).
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from nlp_app.qa.config import QAConfig
from nlp_app.qa.data import QAExample
from nlp_app.qa.export import runner_for
from nlp_app.qa.model import answer
from shared.runs import load_metrics
from shared.serving import HTTPError, Predictor


class QAInstance(BaseModel):
    question: str = Field(min_length=1)
    context: str = Field(min_length=1)


class QARequest(BaseModel):
    instances: list[QAInstance] = Field(min_length=1)


class QAPredictor(Predictor):
    request_model = QARequest
    page = "qa"  # the demo page: the context with the answer span marked

    def __init__(self, run: Path, cfg: QAConfig, runner, tokenizer):
        self.run, self.cfg, self.runner, self.tokenizer = run, cfg, runner, tokenizer

    def items(self, body: QARequest) -> list[QAExample]:
        s = self.cfg.serve
        if len(body.instances) > s.max_texts:
            raise HTTPError(413, f"{len(body.instances)} questions in one request; the limit is {s.max_texts} "
                                 "(serve.max_texts)")
        out = []
        for i, inst in enumerate(body.instances):
            if len(inst.context) > s.max_chars:
                raise HTTPError(422, f"instances[{i}].context has {len(inst.context)} characters; the limit is "
                                     f"{s.max_chars} (serve.max_chars): send the relevant passage only")
            if len(inst.question) > s.max_question_chars:
                raise HTTPError(422, f"instances[{i}].question has {len(inst.question)} characters; the limit is "
                                     f"{s.max_question_chars} (serve.max_question_chars)")
            if not inst.question.strip() or not inst.context.strip():
                raise HTTPError(422, f"instances[{i}]: question and context must not be blank")
            out.append(QAExample(str(i), inst.question.strip(), inst.context))
        return out

    def predict_batch(self, examples: list[QAExample]) -> list[dict]:
        spans = answer(self.runner, self.tokenizer, examples, self.cfg, self.cfg.eval.batch_size)
        return [{"answer": s.text, "start": s.start, "end": s.end, "score": round(s.score, 6)} for s in spans]

    def metadata(self) -> dict:
        s = self.cfg.serve
        return {"task": "qa", "run": self.run.name, "recipe": self.cfg.name, "backend": s.backend,
                "max_length": self.cfg.model.max_length, "doc_stride": self.cfg.features.doc_stride,
                "max_texts": s.max_texts, "max_chars": s.max_chars, "max_question_chars": s.max_question_chars,
                "metrics": load_metrics(self.run)}

    def example(self) -> dict:
        return {"instances": [{"question": "张伟出生于哪里？", "context": "张伟出生于北京。他在1998年加入了华为公司。"}]}


def predictor(cfg: QAConfig, run: Path) -> QAPredictor:
    """What ``serve`` runs: the run's model on ``serve.backend`` (loaded in the app's lifespan)."""
    runner, tokenizer = runner_for(cfg, run)
    return QAPredictor(run, cfg, runner, tokenizer)
