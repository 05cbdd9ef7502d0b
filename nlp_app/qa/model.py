"""The QA model's pieces around the BERT span head: features for the data loader, the training
loop's task (loss, validation EM/F1 over whole examples), and answering questions with a runner
(:mod:`nlp_app.common.runners`: torch or ONNX Runtime). Windows and decoding are pure functions in
:mod:`nlp_app.qa.features`."""
from __future__ import annotations

from collections.abc import Sequence

from nlp_app.common import token_tasks
from nlp_app.common.runners import run_batches
from nlp_app.qa.config import QAConfig
from nlp_app.qa.data import QAExample
from nlp_app.qa.features import QAFeatures, Span, best_spans, prepare_features
from shared import metrics

HEAD = "question_answering"


def feature_items(feats: QAFeatures) -> list[dict]:
    """Rows for the data loader (targets included when the features have them)."""
    items = []
    for i in range(len(feats)):
        item = {"input_ids": feats.input_ids[i], "attention_mask": feats.attention_mask[i],
                "token_type_ids": feats.token_type_ids[i]}
        if feats.start_positions is not None:
            item["start_positions"], item["end_positions"] = feats.start_positions[i], feats.end_positions[i]
        items.append(item)
    return items


def features(examples: Sequence[QAExample], tokenizer, cfg: QAConfig, with_labels: bool = False) -> QAFeatures:
    f = cfg.features
    return prepare_features(examples, tokenizer, cfg.model.max_length, f.doc_stride, f.max_query_length, with_labels)


def score(examples: Sequence[QAExample], spans: Sequence[Span]) -> dict[str, float]:
    return metrics.span_em_f1([s.text for s in spans], [e.answer_texts for e in examples])


class QATask:
    """The loss, and validation EM/F1 over whole examples (windows decoded back into answers)."""

    def __init__(self, examples: Sequence[QAExample], features: QAFeatures, cfg: QAConfig):
        self.examples, self.features, self.cfg = list(examples), features, cfg

    def loss(self, model, batch):
        return model(**batch).loss

    def evaluate(self, model, loader) -> dict[str, float]:
        starts, ends = [], []
        for batch in loader:
            out = model(**batch)
            mask = batch["attention_mask"].bool().cpu().numpy()
            for s, e, m in zip(out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy(), mask):
                starts.append(s[m])
                ends.append(e[m])
        starts, ends = token_tasks.gather(starts), token_tasks.gather(ends)
        f = self.cfg.features
        spans = best_spans(self.examples, self.features, starts, ends, f.n_best, f.max_answer_length)
        return score(self.examples, spans)


def answer(runner, tokenizer, examples: Sequence[QAExample], cfg: QAConfig, batch_size: int) -> list[Span]:
    """The best span of each example (any number of windows each)."""
    feats = features(examples, tokenizer, cfg)
    outputs = run_batches(runner, feature_items(feats), batch_size)
    f = cfg.features
    return best_spans(examples, feats, [o[0] for o in outputs], [o[1] for o in outputs], f.n_best, f.max_answer_length)
