"""Frequent itemsets and association rules.

:func:`mine_itemsets` takes the sparse basket × item matrix from :mod:`tabular_mining.rules.data`,
drops items below ``min_support`` (they cannot be in a frequent itemset), refuses inputs that
would exhaust memory with a :class:`UserError` that says what to change, densifies only the
frequent columns and runs a miner: :func:`eclat` (ours, numpy; the default and the fastest here)
or one of mlxtend's (apriori, fpgrowth, hmine), all finding the same itemsets.
:func:`make_rules` derives the rules and their support, confidence, lift, leverage and conviction
(mlxtend's ``association_rules``); :func:`select_rules` filters and sorts them as configured. All
are pure functions of their arguments.

The memory guard: every subset of a frequent itemset is frequent, so each frequent k-itemset is
a k-clique of the graph whose edges are the frequent pairs. The pairs and the triangles of that
graph (an upper bound on the frequent triples) are counted with two sparse matrix products before
mining; where they already exceed ``max_itemsets`` the mining would too, and it stops there.
``max_len`` bounds the itemset length, and the count is checked again after mining.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth, hmine
from scipy import sparse

from shared.errors import UserError

log = logging.getLogger(__name__)

RULE_METRICS = ("antecedent_support", "consequent_support", "support", "confidence", "lift", "leverage", "conviction")


def _apriori(X: np.ndarray, names: list[str], min_support: float, max_len: int | None) -> pd.DataFrame:
    # low_memory: candidates are counted one combination at a time instead of as a 3-D array
    return apriori(pd.DataFrame(X, columns=names), min_support=min_support, use_colnames=True, max_len=max_len,
                   low_memory=True)


def _fpgrowth(X: np.ndarray, names: list[str], min_support: float, max_len: int | None) -> pd.DataFrame:
    return fpgrowth(pd.DataFrame(X, columns=names), min_support=min_support, use_colnames=True, max_len=max_len)


def _hmine(X: np.ndarray, names: list[str], min_support: float, max_len: int | None) -> pd.DataFrame:
    return hmine(pd.DataFrame(X, columns=names), min_support=min_support, use_colnames=True, max_len=max_len)


def eclat(X: np.ndarray, names: list[str], min_support: float, max_len: int | None) -> pd.DataFrame:
    """Frequent itemsets by depth-first search over basket sets (Eclat) on the dense boolean matrix:
    pairs from one sparse co-occurrence product, then each itemset's extensions counted on the
    baskets that hold it, which shrink fast. The same itemsets and supports as mlxtend's miners,
    in the same order (by length, then by column)."""
    n, max_len = X.shape[0], max_len or X.shape[1]
    min_count = math.ceil(min_support * n - 1e-9)
    rows_major, cols_major = np.ascontiguousarray(X), np.asfortranarray(X)
    found: list[tuple[tuple[int, ...], int]] = []

    def grow(prefix: tuple[int, ...], rows: np.ndarray, items: np.ndarray, item_counts: np.ndarray) -> None:
        for a, (j, c) in enumerate(zip(items.tolist(), item_counts.tolist())):
            itemset = (*prefix, j)
            found.append((itemset, c))
            later = items[a + 1:]
            if len(later) and len(itemset) < max_len:
                sub = rows[rows_major[rows, j]] if len(prefix) else np.flatnonzero(cols_major[:, j])
                if len(prefix) == 0:  # the pairs: read off the co-occurrence counts
                    later_counts = pairs[j, later]
                else:
                    later_counts = np.count_nonzero(rows_major[sub][:, later], axis=0)
                keep = later_counts >= min_count
                if keep.any():
                    grow(itemset, sub, later[keep], later_counts[keep])

    ones = sparse.csr_matrix(X, dtype=np.int32)
    pairs = (ones.T @ ones).toarray()
    totals = np.diag(pairs).copy()
    frequent = np.flatnonzero(totals >= min_count)
    grow((), np.arange(n), frequent, totals[frequent])
    found.sort(key=lambda f: (len(f[0]), f[0]))
    return pd.DataFrame({"support": [c / n for _, c in found],
                         "itemsets": [frozenset(names[i] for i in s) for s, _ in found]})


MINERS: dict[str, Callable[[np.ndarray, list[str], float, int | None], pd.DataFrame]] = {
    "eclat": eclat,
    "fpgrowth": _fpgrowth,
    "apriori": _apriori,
    "hmine": _hmine,
}


def candidate_bound(matrix: sparse.csr_matrix, min_count: int, max_len: int) -> int:
    """An upper bound on frequent itemsets of length ≤ min(max_len, 3): items + pairs + triangles."""
    n_items = matrix.shape[1]
    if n_items == 0:
        return 0
    x = matrix.astype(np.int32)
    co = (x.T @ x).tocsr()
    co.setdiag(0)
    co.data = (co.data >= min_count).astype(np.int32)
    co.eliminate_zeros()
    pairs = co.nnz // 2
    bound = n_items + (pairs if max_len >= 2 else 0)
    if max_len >= 3 and pairs:
        triangles = int((co @ co).multiply(co).sum()) // 6
        bound += triangles
    return bound


def mine_itemsets(
    matrix: sparse.csr_matrix,
    items: list[str],
    min_support: float,
    algorithm: str = "eclat",
    max_len: int | None = 4,
    max_itemsets: int = 200_000,
    max_matrix_mb: float = 2048,
) -> pd.DataFrame:
    """Frequent itemsets as a DataFrame with ``support`` and ``itemsets`` (frozensets of names)."""
    if algorithm not in MINERS:
        raise UserError(f"unknown mining algorithm {algorithm!r}: use one of {', '.join(MINERS)}")
    if not 0 < min_support <= 1:
        raise UserError(f"min_support must be in (0, 1], got {min_support}")
    n_baskets = matrix.shape[0]
    min_count = math.ceil(min_support * n_baskets - 1e-9)
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    keep = np.flatnonzero(counts >= min_count)
    frequent = matrix[:, keep]
    bound = candidate_bound(frequent, min_count, max_len or len(keep))
    if bound > max_itemsets:
        raise UserError(
            f"min_support={min_support} would give more than {max_itemsets:,} frequent itemsets (at least "
            f"{bound:,} candidates of length ≤3 from {len(keep):,} frequent items): raise min_support, "
            f"lower max_len, or raise mining.max_itemsets if you have the memory"
        )
    dense_mb = n_baskets * len(keep) / 2**20
    if dense_mb > max_matrix_mb:
        raise UserError(
            f"{n_baskets:,} baskets × {len(keep):,} frequent items need {dense_mb:,.0f} MB as a one-hot matrix, "
            f"over mining.max_matrix_mb={max_matrix_mb:g}: raise min_support, sample the baskets, or raise the limit"
        )
    if len(keep) == 0:
        return pd.DataFrame({"support": pd.Series(dtype=float), "itemsets": pd.Series(dtype=object)})
    found = MINERS[algorithm](frequent.toarray(), [items[i] for i in keep], min_support, max_len)
    if len(found) > max_itemsets:
        raise UserError(
            f"mining found {len(found):,} frequent itemsets, over mining.max_itemsets={max_itemsets:,}: "
            f"raise min_support or lower max_len"
        )
    return found.reset_index(drop=True)


def make_rules(itemsets: pd.DataFrame, n_baskets: int, min_confidence: float) -> pd.DataFrame:
    """Rules ``antecedents → consequents`` with confidence ≥ ``min_confidence`` and their metrics."""
    columns = ["antecedents", "consequents", *RULE_METRICS]
    if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
        return pd.DataFrame(columns=columns)
    rules = association_rules(
        # a hair under the threshold: a rule at exactly min_confidence (e.g. 3/10 at 0.3) must not be
        # lost to floating-point division
        itemsets, num_itemsets=n_baskets, metric="confidence", min_threshold=min_confidence - 1e-9,
        return_metrics=["antecedent support", "consequent support", "support", "confidence", "lift",
                        "leverage", "conviction"],
    )
    rules = rules.rename(columns={"antecedent support": "antecedent_support", "consequent support": "consequent_support"})
    return rules[columns].reset_index(drop=True)


def select_rules(
    rules: pd.DataFrame,
    min_lift: float = 0.0,
    min_leverage: float | None = None,
    max_antecedent_len: int | None = None,
    max_consequent_len: int | None = None,
    sort_by: str = "lift",
    max_rules: int | None = None,
) -> pd.DataFrame:
    """Filter rules by lift/leverage and side lengths, sort by ``sort_by`` (desc, ties by confidence)."""
    if sort_by not in RULE_METRICS:
        raise UserError(f"rules.sort_by must be one of {', '.join(RULE_METRICS)}, got {sort_by!r}")
    keep = rules["lift"] >= min_lift
    if min_leverage is not None:
        keep &= rules["leverage"] >= min_leverage
    if max_antecedent_len is not None:
        keep &= rules["antecedents"].map(len) <= max_antecedent_len
    if max_consequent_len is not None:
        keep &= rules["consequents"].map(len) <= max_consequent_len
    out = rules[keep]
    # a stable text key last, so equal metrics always come out in the same order
    key = out["antecedents"].map(_itemset_text) + " -> " + out["consequents"].map(_itemset_text)
    tiebreak = "support" if sort_by == "confidence" else "confidence"
    out = out.assign(_key=key).sort_values([sort_by, tiebreak, "_key"], ascending=[False, False, True], kind="stable")
    out = out.drop(columns="_key").reset_index(drop=True)
    return out.head(max_rules) if max_rules else out


def _itemset_text(items: frozenset) -> str:
    return ", ".join(sorted(items))


def rules_table(rules: pd.DataFrame) -> pd.DataFrame:
    """Rules with itemsets as sorted ``a, b`` text (for CSV and the top-N table)."""
    out = rules.copy()
    out["antecedents"] = out["antecedents"].map(_itemset_text)
    out["consequents"] = out["consequents"].map(_itemset_text)
    return out


def rules_to_records(rules: pd.DataFrame) -> list[dict]:
    """Rules as JSON-able dicts (sorted item lists; infinite conviction, from confidence 1, as null)."""
    records = []
    for row in rules.itertuples(index=False):
        rec = {"antecedents": sorted(row.antecedents), "consequents": sorted(row.consequents)}
        for m in RULE_METRICS:
            v = float(getattr(row, m))
            rec[m] = v if math.isfinite(v) else None
        records.append(rec)
    return records

