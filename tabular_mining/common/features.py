"""The feature schema and encoding shared by training, evaluation, batch scoring and serving.

A :class:`FeatureSchema` records, for every input column, whether it is numeric or categorical,
the category list seen in training, and the training median; it is saved with the model as
``feature_schema.json``, so the server validates requests against it and encodes them exactly as
training did.

Encoding gives one float matrix for every model: numerics as they are (missing = NaN),
categoricals as the index into the training category list (missing or unseen = NaN). XGBoost
and LightGBM read the codes as native categoricals; the linear model one-hot encodes them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr, create_model

from shared.errors import UserError
from shared.serving.predictor import StrictRequest

NUMERIC, CATEGORICAL = "numeric", "categorical"
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the model matrix is float32
_FLOAT32_RANGE = {"minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
_UNPARSEABLE_SHARE = 0.05  # a text column becomes numeric when at most this share fails to parse


@dataclass
class Feature:
    name: str
    kind: str  # NUMERIC | CATEGORICAL
    categories: list[str] = field(default_factory=list)
    median: float | None = None
    mode: str | None = None  # categoricals: the most frequent training category (the example record's)

    @cached_property
    def index(self) -> dict[str, int]:
        """Category → code, built once per feature rather than on every request."""
        return {c: i for i, c in enumerate(self.categories)}


@dataclass
class FeatureSchema:
    features: list[Feature]
    target: str
    classes: list[str]  # two: [negative, positive]; more: sorted
    id_columns: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical_mask(self) -> list[bool]:
        return [f.kind == CATEGORICAL for f in self.features]

    @cached_property
    def record_plan(self) -> list[tuple[str, dict[str, int] | None]]:
        """Per feature, its name and its category index (None for a numeric): what
        :func:`encode_record` walks, built once rather than on every request."""
        return [(f.name, f.index if f.kind == CATEGORICAL else None) for f in self.features]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSchema:
        return cls(features=[Feature(**f) for f in d["features"]], target=d["target"],
                   classes=list(d["classes"]), id_columns=list(d.get("id_columns", [])))


def coerce_numeric(col: pd.Series, name: str, source: str) -> pd.Series:
    """Parse a column as numbers; blanks are missing, any other unparseable text is an error."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    text = col.astype("string").str.strip()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = parsed.isna() & text.notna() & (text != "")
    if bad.any():
        example = text[bad].iloc[0]
        raise UserError(f"{source}: column {name!r} is numeric but row {int(bad.idxmax())} holds {example!r}, "
                        f"not a number ({int(bad.sum())} such rows); fix them or list the column in data.categorical")
    return parsed.astype(float)


def clean(df: pd.DataFrame, schema: FeatureSchema, source: str) -> pd.DataFrame:
    """Numeric columns parsed as floats (blank = missing), categoricals as strings. Pure."""
    out = df.copy()
    for feat in schema.features:
        if feat.kind == NUMERIC:
            out[feat.name] = coerce_numeric(out[feat.name], feat.name, source)
        else:
            out[feat.name] = out[feat.name].astype("string")
    return out


def _looks_numeric(col: pd.Series) -> bool:
    """Numeric dtype, or text of which nearly all parses as numbers (the rest is then an error
    that :func:`coerce_numeric` names, rather than a silent switch to categorical)."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return True
    text = col.dropna().astype(str).str.strip()
    text = text[text != ""]
    if text.empty:
        return False
    return pd.to_numeric(text, errors="coerce").isna().mean() <= _UNPARSEABLE_SHARE


def infer_schema(train: pd.DataFrame, target: str, classes: list[str], id_columns: Sequence[str] = (),
                 drop: Sequence[str] = (), categorical: Sequence[str] = (), numeric: Sequence[str] = (),
                 source: str = "data") -> FeatureSchema:
    """Decide each column's kind from the training rows (config lists override), record
    categories and medians. Pure: reads ``train`` only."""
    skip = {target, *id_columns, *drop}
    feats = []
    for name in train.columns:
        if name in skip:
            continue
        col = train[name]
        if name in categorical:
            kind = CATEGORICAL
        elif name in numeric or _looks_numeric(col):
            kind = NUMERIC
        else:
            kind = CATEGORICAL
        if kind == NUMERIC:
            values = coerce_numeric(col, name, source)
            median = float(values.median()) if values.notna().any() else 0.0
            feats.append(Feature(name, NUMERIC, median=median))
        else:
            text = col.dropna().astype(str)
            cats = sorted(text.unique().tolist())
            mode = str(text.value_counts().index[0]) if len(text) else None  # ties: the first seen
            feats.append(Feature(name, CATEGORICAL, categories=cats, mode=mode))
    if not feats:
        raise UserError(f"{source}: no feature columns left after removing the target, ids and dropped columns")
    return FeatureSchema(feats, target, classes, list(id_columns))


def encode_columns(columns: Mapping[str, Sequence[Any]], schema: FeatureSchema) -> np.ndarray:
    """Encode column-wise values (a DataFrame or ``{name: list}``) into the model matrix."""
    n = len(next(iter(columns.values()))) if columns else 0
    X = np.empty((n, len(schema.features)), dtype=np.float32)
    for j, feat in enumerate(schema.features):
        values = columns[feat.name]
        if feat.kind == NUMERIC:
            if isinstance(values, pd.Series):
                X[:, j] = coerce_numeric(values, feat.name, "input").to_numpy(dtype=np.float32, na_value=np.nan)
            else:
                X[:, j] = np.array(values, dtype=np.float32)
        else:
            index = feat.index
            X[:, j] = [index.get(None if _missing(v) else str(v), np.nan) for v in values]
    return X


def encode_frame(df: pd.DataFrame, schema: FeatureSchema, source: str = "input") -> np.ndarray:
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        raise UserError(f"{source}: feature column {missing[0]!r} is missing ({len(missing)} missing in all)")
    return encode_columns({n: df[n] for n in schema.names}, schema)


def encode_records(records: Sequence[Mapping[str, Any]], schema: FeatureSchema) -> np.ndarray:
    """Encode validated request records (feature name → value), one :func:`encode_record` each."""
    if not records:
        return np.empty((0, len(schema.features)), dtype=np.float32)
    return np.vstack([encode_record(r, schema) for r in records])


def encode_record(record: Mapping[str, Any], schema: FeatureSchema) -> np.ndarray:
    """One request record as one float32 row of the model matrix (missing or unseen = NaN).

    A number a float32 cannot hold (``1e308``, which would become infinity) is refused with a
    ``ValueError`` naming the field: the model would score it as infinite, or refuse the whole
    batch it was joined into."""
    row = []
    for name, index in schema.record_plan:  # the server's hot path: plain Python, one numpy call
        value = record.get(name)
        if value is None or (type(value) is float and math.isnan(value)):  # missing
            row.append(math.nan)
        elif index is None:
            try:
                number = float(value)
            except OverflowError:  # an integer too large for any float (the Python API has no JSON limit)
                number = math.inf
            if not abs(number) <= FLOAT32_MAX:
                raise ValueError(f"{name}: {value!r} is out of range; numbers must be finite and within "
                                 f"±{FLOAT32_MAX:.4g} (float32)")
            row.append(number)
        else:
            row.append(index.get(str(value), math.nan))
    return np.array(row, dtype=np.float32)


def design_matrix(X: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """The encoded matrix expanded for distance- and linear models: numerics with missing values
    set to the training median, each categorical one-hot over its training categories (missing or
    unseen = all zeros). Column order: features in schema order, categories in list order."""
    cols = []
    for j, feat in enumerate(schema.features):
        x = X[:, j]
        if feat.kind == CATEGORICAL:
            onehot = np.zeros((len(x), len(feat.categories)), dtype=np.float32)
            ok = ~np.isnan(x)
            onehot[np.nonzero(ok)[0], x[ok].astype(np.int64)] = 1.0
            cols.append(onehot)
        else:
            median = feat.median if feat.median is not None else 0.0
            cols.append(np.where(np.isnan(x), median, x).astype(np.float32)[:, None])
    return np.hstack(cols)


def design_columns(schema: FeatureSchema) -> list[str]:
    """Names of :func:`design_matrix`'s columns (``feature`` or ``feature=category``)."""
    return [n for f in schema.features for n in ([f"{f.name}={c}" for c in f.categories]
                                                  if f.kind == CATEGORICAL else [f.name])]


def encode_target(y: pd.Series, schema: FeatureSchema) -> np.ndarray:
    """Two classes: 1 for the positive class (``classes[1]``), else 0; more: the index in ``classes``."""
    if len(schema.classes) == 2:
        return (y.astype(str) == schema.classes[1]).to_numpy(dtype=np.int64)
    return y.astype(str).map({c: i for i, c in enumerate(schema.classes)}).to_numpy(dtype=np.int64)


# --- requests: what the servers of classify and segment accept ------------------------------------

def record_model(schema: FeatureSchema) -> type[BaseModel]:
    """A pydantic model of one record: every feature required (``null`` = missing), numerics as
    JSON numbers (not booleans, not strings), categoricals as strings (the categories
    ``GET /metadata`` lists; an unseen one is treated as missing, as in training); unknown fields
    are refused. The schema documents the float32 range that :func:`encode_record` enforces, one
    instance at a time."""
    fields: dict[str, Any] = {}
    for f in schema.features:
        if f.kind == CATEGORICAL:
            fields[f.name] = (StrictStr | None, ...)
        else:
            fields[f.name] = (StrictFloat | StrictInt | None, Field(..., json_schema_extra=_FLOAT32_RANGE))
    return create_model("Record", __base__=StrictRequest, **fields)


def example_record(schema: FeatureSchema) -> dict:
    """A typical record: the most frequent training category of each categorical (the first
    category for a schema saved before modes were), the median of each numeric."""
    return {f.name: (f.mode or next(iter(f.categories), None)) if f.kind == CATEGORICAL
            else (f.median if f.median is not None else 0.0) for f in schema.features}


def describe_features(schema: FeatureSchema) -> list[dict]:
    """The features as ``GET /metadata`` lists them: name, kind and the training categories."""
    return [{"name": f.name, "kind": f.kind, **({"categories": f.categories} if f.categories else {})}
            for f in schema.features]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
