"""The tasks of tabular_mining: one :class:`shared.tasks.Task` per recipe ``task:`` key.

- ``classify``: classification of a table, two classes (``churn.yaml``) or more (``penguins.yaml``):
  logistic, XGBoost, LightGBM, FT-Transformer; ``distributed: dask`` scales the trees out (two classes or
  more); ``tune`` searches parameters; ``export`` writes the boosted trees as ONNX.
- ``regress``: a numeric target of a table (``house_prices.yaml``): ridge, XGBoost, LightGBM (the trees
  on a Dask cluster too).
- ``segment``: customer segments by clustering the same feature pipeline (``segments.yaml``).
- ``rules``: frequent itemsets and association rules from baskets (``rules.yaml``).

Every task also has ``stream``: JSON lines (a file, stdin or Kafka) scored by its predictor.
"""
from __future__ import annotations

from shared.tasks import Extra, Task
from tabular_mining.classify import data as classify_data
from tabular_mining.classify import evaluate as classify_evaluate
from tabular_mining.classify import export as classify_export
from tabular_mining.classify import predict as classify_predict
from tabular_mining.classify import serve as classify_serve
from tabular_mining.classify import train as classify_train
from tabular_mining.classify import tune as classify_tune
from tabular_mining.classify.config import ClassifyConfig
from tabular_mining.regress import data as regress_data
from tabular_mining.regress import evaluate as regress_evaluate
from tabular_mining.regress import predict as regress_predict
from tabular_mining.regress import serve as regress_serve
from tabular_mining.regress import train as regress_train
from tabular_mining.regress.config import RegressConfig
from tabular_mining.rules import data as rules_data
from tabular_mining.rules import evaluate as rules_evaluate
from tabular_mining.rules import predict as rules_predict
from tabular_mining.rules import serve as rules_serve
from tabular_mining.rules import train as rules_train
from tabular_mining.rules.config import RulesConfig
from tabular_mining.segment import data as segment_data
from tabular_mining.segment import evaluate as segment_evaluate
from tabular_mining.segment import predict as segment_predict
from tabular_mining.segment import serve as segment_serve
from tabular_mining.segment import train as segment_train
from tabular_mining.segment.config import SegmentConfig

STREAM_HELP = "score JSON lines from --input (a file, '-' = stdin, or kafka) into --output, micro-batched"

TASKS = {
    "classify": Task(
        config=ClassifyConfig, help="classification of a table, two or more classes (churn, penguins)",
        preprocess=classify_data.preprocess, train=classify_train.train, evaluate=classify_evaluate.evaluate,
        predict=classify_predict.predict, export=classify_export.export,
        predictor=classify_serve.ClassifyPredictor.from_run,
        resolve_config=classify_tune.apply_tuned,
        extra={"tune": Extra(classify_tune.tune, "Optuna search on inner CV of the training rows; "
                                                 "then train with model.params_from=RUN", on="recipe"),
               "stream": Extra(classify_serve.stream, STREAM_HELP, on="run")}),
    "regress": Task(
        config=RegressConfig, help="regression of a numeric column of a table (house prices)",
        preprocess=regress_data.preprocess, train=regress_train.train, evaluate=regress_evaluate.evaluate,
        predict=regress_predict.predict, predictor=regress_serve.RegressPredictor.from_run,
        extra={"stream": Extra(regress_serve.stream, STREAM_HELP, on="run")}),
    "segment": Task(
        config=SegmentConfig, help="customer segments by clustering (k-means, HDBSCAN)",
        preprocess=segment_data.preprocess, train=segment_train.train, evaluate=segment_evaluate.evaluate,
        predict=segment_predict.predict, predictor=segment_serve.SegmentPredictor.from_run,
        extra={"stream": Extra(segment_serve.stream, STREAM_HELP, on="run")}),
    "rules": Task(
        config=RulesConfig, help="frequent itemsets and association rules from baskets",
        preprocess=rules_data.preprocess, train=rules_train.train, evaluate=rules_evaluate.evaluate,
        predict=rules_predict.predict, predictor=rules_serve.RulesPredictor.from_run,
        extra={"stream": Extra(rules_serve.stream, STREAM_HELP, on="run")}),
}
