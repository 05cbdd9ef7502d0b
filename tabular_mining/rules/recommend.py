"""Applying mined rules to baskets: which rules fire, and which items they recommend.

A rule fires for a basket when its antecedent is inside the basket and its consequent is not
entirely inside already. Each item of a fired rule's consequent that the basket lacks is a
recommendation, scored by the best ``rank_by`` metric (confidence or lift) among the rules that
recommend it. Matching is two sparse matrix products, so scoring many baskets at once is cheap.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

RANKABLE = ("confidence", "lift", "leverage", "conviction", "support")


class RuleRecommender:
    def __init__(self, rules: Sequence[dict], item_support: dict[str, float]):
        """``rules``: records as :func:`tabular_mining.rules.model.rules_to_records` writes them;
        ``item_support``: every item seen in mining with its support (the popularity fallback)."""
        self.rules = list(rules)
        self.items = sorted(item_support)
        self.index = {item: i for i, item in enumerate(self.items)}
        self.popularity = sorted(self.items, key=lambda i: (-item_support[i], i))
        self.antecedents = self._matrix([r["antecedents"] for r in self.rules])
        self.consequents = self._matrix([r["consequents"] for r in self.rules])
        self.ante_len = np.asarray(self.antecedents.sum(axis=1)).ravel()
        self.cons_len = np.asarray(self.consequents.sum(axis=1)).ravel()

    def _matrix(self, itemsets: Sequence[Sequence[str]]) -> sparse.csr_matrix:
        rows = [r for r, s in enumerate(itemsets) for item in s if item in self.index]
        cols = [self.index[item] for s in itemsets for item in s if item in self.index]
        return sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(itemsets), len(self.items)))

    def fired(self, baskets: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """For each basket, the indices of the rules that fire (in rule order)."""
        if not self.rules or not baskets:
            return [np.empty(0, dtype=np.int64) for _ in baskets]
        b = self._matrix(baskets)
        ante_hit = (b @ self.antecedents.T).toarray() == self.ante_len
        cons_in = (b @ self.consequents.T).toarray() == self.cons_len
        return [np.flatnonzero(row) for row in ante_hit & ~cons_in]

    def recommend(
        self, baskets: Sequence[Sequence[str]], top_k: int = 5, rank_by: str = "confidence",
        max_rules: int = 10, fill_popular: bool = False,
    ) -> list[dict]:
        """Per basket: ``recommendations`` (item, score, the rule that gave it) best first, the
        ``rules`` that fired (up to ``max_rules``, by ``rank_by``), and ``unknown_items``.
        ``fill_popular`` tops a short list up with the most frequent items (score null)."""
        if rank_by not in RANKABLE:
            raise ValueError(f"rank_by must be one of {RANKABLE}")
        out = []
        for basket, fired in zip(baskets, self.fired(baskets)):
            have = set(basket)
            ranked = sorted(fired, key=lambda r: (-_score(self.rules[r], rank_by), r))
            best: dict[str, tuple[float, int]] = {}
            for r in ranked:
                for item in self.rules[r]["consequents"]:
                    if item not in have and item not in best:
                        best[item] = (_score(self.rules[r], rank_by), int(r))
            recs = [{"item": item, rank_by: score, "because": self.rules[r]["antecedents"]}
                    for item, (score, r) in list(best.items())[:top_k]]
            if fill_popular and len(recs) < top_k:
                for item in self.popularity:
                    if len(recs) >= top_k:
                        break
                    if item not in have and item not in best:
                        recs.append({"item": item, rank_by: None, "because": "popular"})
            out.append({
                "recommendations": recs,
                "rules": [self.rules[r] for r in ranked[:max_rules]],
                "unknown_items": [i for i in basket if i not in self.index],
            })
        return out


def _score(rule: dict, metric: str) -> float:
    v = rule.get(metric)
    return float("inf") if v is None else float(v)  # null conviction means confidence 1: the strongest
