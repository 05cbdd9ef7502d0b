"""The typed config of ``task: rules`` (``configs/tabular_mining/rules*.yaml``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config import StrictModel
from shared.serving import ServeConfig
from tabular_mining.common.stream import StreamConfig

# The Telco table's service columns: which services are bought together.
TELCO_SERVICES = [
    "phone_service", "multiple_lines", "internet_service", "online_security", "online_backup",
    "device_protection", "tech_support", "streaming_tv", "streaming_movies",
]


class BasketData(StrictModel):
    """Where the baskets come from (formats: see :mod:`tabular_mining.rules.data`)."""

    format: Literal["telco", "baskets", "long", "wide"] = Field(
        "telco", description="telco = the embedded Telco service columns as baskets")
    path: str | None = Field(None, description="the input file (baskets: text; long/wide: CSV or Parquet); "
                                               "required to train on those formats, not to evaluate a file")
    delimiter: str = Field(",", min_length=1, description="baskets: item separator")
    transaction_col: str = Field("transaction", description="long: the transaction id column")
    item_col: str = Field("item", description="long: the item column")
    columns: list[str] = Field(default_factory=list, description="wide: the item columns (default: all)")
    false_values: list[str] = Field(default_factory=list, description="wide: more values that mean 'not bought'")
    test_size: float = Field(0.2, ge=0, lt=0.9, description="share of baskets held out to check the rules")
    seed: int = 0


class MiningConfig(StrictModel):
    algorithm: Literal["eclat", "apriori", "fpgrowth", "hmine"] = Field(
        "eclat", description="eclat (ours, numpy) or one of mlxtend's; all give the same itemsets, eclat is the "
                             "fastest in bench/tabular_scale")
    min_support: float = Field(0.01, gt=0, le=1)
    max_len: int | None = Field(4, ge=1, description="longest itemset; null = no bound (watch memory)")
    max_itemsets: int = Field(200_000, ge=1, description="refuse (with a clear error) to mine more than this")
    max_matrix_mb: float = Field(2048, gt=0, description="refuse a one-hot matrix larger than this")
    compare_algorithms: bool = Field(False, description="also time every other miner and check they agree")


class RuleFilter(StrictModel):
    min_confidence: float = Field(0.3, ge=0, le=1)
    min_lift: float = Field(1.0, ge=0)
    min_leverage: float | None = None
    max_antecedent_len: int | None = Field(None, ge=1)
    max_consequent_len: int | None = Field(None, ge=1)
    sort_by: Literal["lift", "confidence", "leverage", "conviction", "support"] = "lift"
    top_n: int = Field(20, ge=1, description="rows in the readable table RULES.md")
    max_rules: int | None = Field(None, ge=1, description="keep at most this many rules (after sorting)")


class RulesEval(StrictModel):
    top_k: int = Field(5, ge=1, description="recommendations scored in the held-out hit rate")
    rank_by: Literal["confidence", "lift"] = "confidence"
    fill_popular: bool = Field(True, description="blend with popularity (each item also competes as the rule "
                                                 "{} → item): never below the popularity baseline's kind of list")


class RulesServe(ServeConfig):
    """``serve:`` of a rules recipe: one instance (a basket) costs its item count."""

    max_item_cost: float | None = Field(1000, gt=0, description="items in one basket")


class RulesConfig(StrictModel):
    """``task: rules``: frequent itemsets and association rules from baskets."""

    name: str = "rules"
    task: Literal["rules"] = "rules"
    data: BasketData = Field(default_factory=BasketData)
    mining: MiningConfig = Field(default_factory=MiningConfig)
    rules: RuleFilter = Field(default_factory=RuleFilter)
    eval: RulesEval = Field(default_factory=RulesEval)
    serve: RulesServe = Field(default_factory=RulesServe)
    stream: StreamConfig = Field(default_factory=StreamConfig)
