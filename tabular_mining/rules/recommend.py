"""Applying mined rules to baskets: which rules fire, and which items they recommend.

A rule fires for a basket when its antecedent is inside the basket and its consequent is not
entirely inside already. Each item of a fired rule's consequent that the basket lacks is a
candidate, credited per item: with ``rank_by="confidence"`` the rule's confidence (a lower bound
of P(item | antecedent) when the consequent has several items), with ``rank_by="lift"`` that
confidence over the item's own support (the rule's lift for a one-item consequent; for a
multi-item consequent the item's own lift bound, not the lift of the whole consequent). An item
keeps its best credit.

Popularity blend (``fill_popular``, on by default): every item also competes as the rule
"{} → item", whose confidence is the item's support and whose lift is 1, so a rule displaces a
popular item only when it predicts its own item more often than the popular item appears at all;
the list never comes out shorter than ``top_k`` while items remain. On held-out baskets this keeps
the recommender at or above the popularity baseline where weak rules alone would fall below it.
Matching is two sparse matrix products, so scoring many baskets at once is cheap.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

RANKABLE = ("confidence", "lift", "leverage", "conviction", "support")
# the metrics of the rule {} → item (confidence and support are the item's support)
EMPTY_RULE = {"lift": 1.0, "leverage": 0.0, "conviction": 1.0}


class RuleRecommender:
    def __init__(self, rules: Sequence[dict], item_support: dict[str, float]):
        """``rules``: records as :func:`tabular_mining.rules.model.rules_to_records` writes them;
        ``item_support``: every item seen in mining with its support (the popularity fallback)."""
        self.rules = list(rules)
        self.items = sorted(item_support)
        self.index = {item: i for i, item in enumerate(self.items)}
        self.support = dict(item_support)
        self.popularity = sorted(self.items, key=lambda i: (-item_support[i], i))
        self._rank = {item: k for k, item in enumerate(self.popularity)}
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
        max_rules: int = 10, fill_popular: bool = True,
    ) -> list[dict]:
        """Per basket: ``recommendations`` (item, its score under ``rank_by``, the antecedent of the
        rule that gave it or ``"popular"``) best first, the ``rules`` that fired (up to
        ``max_rules``, by ``rank_by``), and ``unknown_items``; see the module doc for the scores."""
        if rank_by not in RANKABLE:
            raise ValueError(f"rank_by must be one of {RANKABLE}")
        out = []
        for basket, fired in zip(baskets, self.fired(baskets)):
            have = set(basket)
            ranked = sorted(fired, key=lambda r: (-_score(self.rules[r], rank_by), r))
            best = self._candidates(ranked, have, rank_by)
            if fill_popular:
                for item in self.popularity:
                    pop = self.support[item] if rank_by in ("confidence", "support") else EMPTY_RULE[rank_by]
                    if item not in have and (item not in best or best[item][0] < pop):
                        best[item] = (pop, "popular")
            order = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1] == "popular", self._rank[kv[0]]))
            recs = [{"item": item, rank_by: score, "because": because} for item, (score, because) in order[:top_k]]
            out.append({
                "recommendations": recs,
                "rules": [self.rules[r] for r in ranked[:max_rules]],
                "unknown_items": [i for i in basket if i not in self.index],
            })
        return out

    def _candidates(self, ranked: Sequence[int], have: set, rank_by: str) -> dict[str, tuple[float, list | str]]:
        """Item → (its best credit among the fired rules, that rule's antecedent)."""
        best: dict[str, tuple[float, list | str]] = {}
        for r in ranked:
            rule = self.rules[r]
            for item in rule["consequents"]:
                if item in have:
                    continue
                credit = _score(rule, "confidence")
                if rank_by != "confidence":
                    credit = _score(rule, rank_by) if len(rule["consequents"]) == 1 or rank_by != "lift" \
                        else credit / max(self.support.get(item, 1.0), 1e-12)
                if item not in best or credit > best[item][0]:
                    best[item] = (credit, rule["antecedents"])
        return best


def _score(rule: dict, metric: str) -> float:
    v = rule.get(metric)
    return float("inf") if v is None else float(v)  # null conviction means confidence 1: the strongest
