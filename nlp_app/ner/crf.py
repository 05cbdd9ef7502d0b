"""A linear-chain CRF output layer over any encoder's per-token tag scores (emissions).

- Parameters: a score for each tag-to-tag transition, and for starting and ending on each tag.
- Forbidden transitions are masked out of training and decoding alike (:func:`allowed_transitions`:
  ``O → I-PER``, ``B-PER → I-LOC``, a sequence starting with ``I-``; in BIOES also ``B-PER → O`` and
  ending on ``B-``/``I-``), so the model is a distribution over valid tag sequences only, and
  Viterbi decoding returns a valid sequence whatever the scores.
- Training: the negative log-likelihood of the gold tags (:meth:`CRF.nll`, the forward algorithm).
- Decoding: :func:`viterbi` in NumPy, one function for torch and ONNX Runtime emissions alike, over
  :func:`masked_scores` of the parameters a run keeps in ``crf.json`` (:meth:`CRF.to_json` /
  :func:`load_params`)::

      scores = masked_scores(load_params(run / "crf.json"))
      tag_ids = viterbi(emissions, scores)            # emissions: (T, L) of one sentence

Sequences are left-aligned: ``mask[b, :n_b]`` is true for the ``n_b`` scored positions of row ``b``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared import runs

Scores = tuple[np.ndarray, np.ndarray, np.ndarray]
FORBIDDEN = -1.0e4  # added to a masked score in training (finite: no NaN in the gradients)


def _split(tag: str) -> tuple[str, str]:
    prefix, _, etype = tag.partition("-")
    return prefix, etype


def allowed_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(start_ok[L], trans_ok[L, L], end_ok[L])`` for BIO or BIOES tags (BIOES when any ``E-``
    or ``S-`` tag is present); ``trans_ok[i, j]``: tag ``j`` may follow tag ``i``."""
    bioes = any(_split(t)[0] in ("E", "S") for t in labels)
    parts = [_split(t) for t in labels]

    def may_follow(prev: tuple[str, str], nxt: tuple[str, str]) -> bool:
        if nxt[0] in ("I", "E"):  # inside or ending an entity: only after its own B-/I-
            return prev[0] in ("B", "I") and prev[1] == nxt[1]
        return not (bioes and prev[0] in ("B", "I"))  # in BIOES an open entity must be closed first

    start = np.array([p[0] not in ("I", "E") for p in parts])
    trans = np.array([[may_follow(a, b) for b in parts] for a in parts])
    end = np.array([not (bioes and p[0] in ("B", "I")) for p in parts])
    return start, trans, end


def repair_bio(tags: Sequence[str]) -> list[str]:
    """A BIO sequence made valid the way seqeval reads it: an ``I-X`` that does not continue an
    ``X`` entity starts one (``B-X``). Gold tags from users' files may have such slips."""
    out, prev = [], "O"
    for tag in tags:
        prefix, etype = _split(tag)
        if prefix == "I" and (prev == "O" or _split(prev)[1] != etype):
            tag = "B-" + etype
        out.append(tag)
        prev = tag
    return out


class CRF(nn.Module):
    """Transition, start and end scores over ``labels``; forbidden ones are masked (see the module)."""

    def __init__(self, labels: Sequence[str]):
        super().__init__()
        self.labels = list(labels)
        n = len(self.labels)
        self.transitions = nn.Parameter(torch.zeros(n, n))  # [previous tag, next tag]
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        ok = [torch.as_tensor(a) for a in allowed_transitions(self.labels)]
        # not in the state dict: they follow from the labels
        self.register_buffer("start_ok", ok[0], persistent=False)
        self.register_buffer("trans_ok", ok[1], persistent=False)
        self.register_buffer("end_ok", ok[2], persistent=False)

    def masked(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.where(self.start_ok, self.start, FORBIDDEN), torch.where(self.trans_ok, self.transitions, FORBIDDEN),
                torch.where(self.end_ok, self.end, FORBIDDEN))

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``tags`` (B, T) under ``emissions`` (B, T, L), summed over the
        batch and divided by the number of scored positions (a per-token loss, like cross-entropy).
        Rows with no scored position count for nothing."""
        emissions = emissions.float()
        keep = mask[:, 0]
        if not bool(keep.any()):
            return emissions.sum() * 0.0
        emissions, tags, mask = emissions[keep], tags[keep], mask[keep]
        start, trans, end = self.masked()
        return (log_partition(emissions, mask, start, trans, end)
                - gold_score(emissions, tags, mask, start, trans, end)).sum() / mask.sum()

    def params(self) -> dict:
        """The trained scores as plain lists (unmasked: :func:`viterbi` masks by the labels)."""
        return {"labels": self.labels, "transitions": self.transitions.detach().cpu().tolist(),
                "start": self.start.detach().cpu().tolist(), "end": self.end.detach().cpu().tolist()}

    def to_json(self, path: str | Path) -> Path:
        return runs.write_json(path, self.params())

    def decoder(self) -> Scores:
        """The current scores, masked, for :func:`viterbi`."""
        return masked_scores(self.params())


def log_partition(emissions, mask, start, trans, end) -> torch.Tensor:
    """log Σ over every tag sequence of exp(score), per row (the forward algorithm)."""
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.size(1)):
        nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + emissions[:, t]
        alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def gold_score(emissions, tags, mask, start, trans, end) -> torch.Tensor:
    """The score of the given tag sequence, per row."""
    maskf = mask.to(emissions.dtype)
    emit = (emissions.gather(2, tags.unsqueeze(2)).squeeze(2) * maskf).sum(1)
    steps = (trans[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
    last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
    return start[tags[:, 0]] + emit + steps + end[last]


def load_params(path: str | Path) -> dict | None:
    """A run's ``crf.json``, or ``None`` when the run has no CRF layer."""
    path = Path(path)
    return runs.read_json(path) if path.exists() else None


def masked_scores(params: dict) -> Scores:
    """``(start, transitions, end)`` of :meth:`CRF.params` as arrays, forbidden ones ``-inf``."""
    ok = allowed_transitions(params["labels"])
    return tuple(np.where(o, np.asarray(params[k], dtype=np.float64), -np.inf)
                 for o, k in zip(ok, ("start", "transitions", "end")))


def viterbi(emissions: np.ndarray, scores: Scores) -> list[int]:
    """The highest-scoring valid tag sequence (tag ids) for one sequence's ``emissions`` (T, L),
    with ``scores`` from :func:`masked_scores`."""
    emissions = np.asarray(emissions, dtype=np.float64)
    if len(emissions) == 0:
        return []
    start, trans, end = scores
    score = start + emissions[0]
    back = []
    for em in emissions[1:]:
        cand = score[:, None] + trans
        best = cand.argmax(0)
        back.append(best)
        score = cand[best, np.arange(len(best))] + em
    path = [int((score + end).argmax())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    return path[::-1]
