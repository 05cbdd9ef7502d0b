"""Extractive QA as pure functions: examples → model features (windows over long contexts) and
model logits → answer spans.

A context longer than the model's window is cut into overlapping windows: each feature is
``[CLS] question [SEP] context window [SEP]``, consecutive windows share ``doc_stride`` tokens
(the tokenizer's ``stride``, i.e. the *overlap*, as in the Hugging Face examples). Each token of a
window keeps its character span in the context (the tokenizer's offset mapping), which is how
a predicted token span goes back to text. For training, a window that does not contain the
whole answer is labelled "no answer" (start = end = the ``[CLS]`` position, 0).

Post-processing scores every (start, end) pair among the ``n_best`` top starts and ends of every
window of an example, keeps spans inside the context with ``end >= start`` and at most
``max_answer_length`` tokens, and returns the best one with its character offsets and a
probability (softmax over the kept candidates of that example).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nlp_app.common.normalize import to_half_width
from nlp_app.qa.data import QAExample
from shared.errors import UserError


@dataclass
class QAFeatures:
    """Model inputs for a list of examples: one row per window.

    ``example_index[i]`` is the example window ``i`` came from; ``offsets[i][t]`` is the
    ``(start, end)`` character span of token ``t`` in the context, or ``None`` for question,
    special and padding tokens; ``start_positions`` / ``end_positions`` are the training targets
    (token indices; 0 = no answer in this window), present when labels were asked for.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    attention_mask: list[list[int]]
    example_index: list[int]
    offsets: list[list[tuple[int, int] | None]]
    start_positions: list[int] | None = None
    end_positions: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def check_window(max_length: int, doc_stride: int, max_query_length: int) -> None:
    """Refuse settings that leave no room for the context (the tokenizer would panic)."""
    room = max_length - max_query_length - 3  # [CLS] q [SEP] ctx [SEP]
    if room < 8:
        raise UserError(f"max_length={max_length} leaves {room} context tokens after a {max_query_length}-token "
                        "question; raise max_length or lower max_query_length")
    if not 0 <= doc_stride < room:
        raise UserError(f"doc_stride={doc_stride} must be between 0 and {room - 1} (the context room of a window: "
                        "max_length - max_query_length - 3)")


def truncate_questions(questions: Sequence[str], tokenizer, max_query_length: int) -> list[str]:
    """Cut each question after its first ``max_query_length`` tokens (at a character boundary)."""
    enc = tokenizer(list(questions), add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, offs in zip(questions, enc["offset_mapping"]):
        out.append(q if len(offs) <= max_query_length else q[: offs[max_query_length - 1][1]])
    return out


def prepare_features(
    examples: Sequence[QAExample], tokenizer, max_length: int = 384, doc_stride: int = 128,
    max_query_length: int = 64, with_labels: bool = False,
) -> QAFeatures:
    """Tokenize question + context into overlapping windows (see the module docstring)."""
    check_window(max_length, doc_stride, max_query_length)
    # half-width forms as in pre-training; a one-to-one character map, so offsets still index the original
    questions = truncate_questions([to_half_width(ex.question) for ex in examples], tokenizer, max_query_length)
    enc = tokenizer(
        questions, [to_half_width(ex.context) for ex in examples], truncation="only_second", max_length=max_length,
        stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding=False,
    )
    example_index = list(enc["overflow_to_sample_mapping"])
    offsets: list[list[tuple[int, int] | None]] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, offs in enumerate(enc["offset_mapping"]):
        seq_ids = enc.sequence_ids(i)
        offsets.append([tuple(o) if s == 1 else None for o, s in zip(offs, seq_ids)])
        if with_labels:
            s, e = label_window(offsets[-1], examples[example_index[i]].span)
            starts.append(s)
            ends.append(e)
    token_type_ids = enc.get("token_type_ids") or [[0 if s != 1 else 1 for s in enc.sequence_ids(i)]
                                                   for i in range(len(enc["input_ids"]))]
    return QAFeatures(
        input_ids=list(enc["input_ids"]), token_type_ids=list(token_type_ids),
        attention_mask=list(enc["attention_mask"]), example_index=example_index, offsets=offsets,
        start_positions=starts if with_labels else None, end_positions=ends if with_labels else None,
    )


def label_window(offsets: Sequence[tuple[int, int] | None], span: tuple[int, int] | None) -> tuple[int, int]:
    """Token ``(start, end)`` (inclusive) of the character span ``[a, b)`` in one window, or
    ``(0, 0)`` when the window does not hold all of it (or there is no span)."""
    if span is None:
        return 0, 0
    a, b = span
    ctx = [t for t, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > a or offsets[ctx[-1]][1] < b:
        return 0, 0
    # the first token that ends after the answer starts, the last token that starts before it ends
    start = next(t for t in ctx if offsets[t][1] > a)
    end = next(t for t in reversed(ctx) if offsets[t][0] < b)
    if end < start:
        return 0, 0
    return start, end


@dataclass(frozen=True)
class Span:
    text: str
    start: int  # character offsets into the context, end exclusive
    end: int
    score: float  # probability among the example's candidate spans
    logit: float  # start logit + end logit


def window_candidates(
    start_logits: np.ndarray, end_logits: np.ndarray, offsets: Sequence[tuple[int, int] | None],
    n_best: int = 20, max_answer_length: int = 30,
) -> list[tuple[float, int, int]]:
    """``(logit, char_start, char_end)`` for valid spans among the top ``n_best`` starts × ends of one window."""
    start_logits = np.asarray(start_logits, dtype=np.float64)[: len(offsets)]
    end_logits = np.asarray(end_logits, dtype=np.float64)[: len(offsets)]
    top_starts = np.argsort(start_logits)[::-1][:n_best]
    top_ends = np.argsort(end_logits)[::-1][:n_best]
    out = []
    for s in top_starts:
        if offsets[s] is None:
            continue
        for e in top_ends:
            if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            out.append((float(start_logits[s] + end_logits[e]), offsets[s][0], offsets[e][1]))
    return out


def best_spans(
    examples: Sequence[QAExample], features: QAFeatures, start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray], n_best: int = 20, max_answer_length: int = 30,
) -> list[Span]:
    """The best answer span of each example across all its windows (one :class:`Span` per example;
    an empty span with score 0 when no window yields a valid span)."""
    per_example: list[list[tuple[float, int, int]]] = [[] for _ in examples]
    for i, ex_i in enumerate(features.example_index):
        per_example[ex_i].extend(window_candidates(start_logits[i], end_logits[i], features.offsets[i],
                                                   n_best, max_answer_length))
    out = []
    for ex, cands in zip(examples, per_example):
        if not cands:
            out.append(Span("", 0, 0, 0.0, float("-inf")))
            continue
        # one candidate per distinct character span (overlapping windows propose the same span twice)
        best: dict[tuple[int, int], float] = {}
        for logit, a, b in cands:
            best[(a, b)] = max(logit, best.get((a, b), float("-inf")))
        ranked = sorted(best.items(), key=lambda kv: -kv[1])[:n_best]
        logits = np.array([v for _, v in ranked])
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        (a, b), logit = ranked[0]
        out.append(Span(ex.context[a:b], a, b, float(probs[0]), float(logit)))
    return out
