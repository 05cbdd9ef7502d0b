"""The shared training loop on tiny MLPs and synthetic data (each test runs in about a second)."""
import json
import math
import os
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from shared.batching import LengthGroupedBatchSampler, default_batch_size, move_to_device
from shared.checkpoint import load_checkpoint, load_weights, save_weights, unwrap_model
from shared.config import validate
from shared.distributed import ShardSampler, all_gather_object, gather_cat, gather_list
from shared.errors import UserError
from shared.optim import lr_factor
from shared.training import LoopConfig, NonFiniteLossError, fit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models run fastest on one thread, and far faster when other test runs share the cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_data(n, seed, dim=8):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen)
    w = torch.linspace(-1.0, 1.0, dim)
    y = (x @ w > 0).long()
    return TensorDataset(x, y)


def make_model(seed=0, dim=8):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(dim, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


class Classify:
    """The task protocol, as an app would write it."""

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    def evaluate(self, model, loader):
        preds, labels = [], []
        for x, y in loader:
            preds.append(model(x).float().argmax(-1))
            labels.append(y)
        preds, labels = gather_cat(torch.cat(preds)), gather_cat(torch.cat(labels))
        return {"accuracy": (preds == labels).float().mean().item(), "n": float(len(labels))}


def cfg(**kw):
    base = {"device": "cpu", "epochs": 1, "batch_size": 16, "lr": 1e-2, "progress": False, "log_every_steps": 1}
    return LoopConfig(**{**base, **kw})


def history(out):
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def test_fit_learns_a_separable_problem(tmp_path):
    model = make_model()
    before = Classify().evaluate(model.eval(), [tuple(make_data(256, 1).tensors)])["accuracy"]
    result = fit(model, Classify(), make_data(512, 0), make_data(256, 1), cfg(epochs=4, monitor="accuracy"), tmp_path)
    assert result.steps == 4 * 32 and result.epochs_completed == 4 and not result.stopped_early
    assert result.best_metric > 0.9 > before + 0.2
    assert result.best_metrics["n"] == 256
    losses = [r["train/loss"] for r in history(tmp_path) if "train/loss" in r]
    assert sum(losses[-8:]) / 8 < 0.5 * sum(losses[:8]) / 8
    assert [r["step"] for r in history(tmp_path) if "valid/accuracy" in r] == [32, 64, 96, 128]
    assert result.samples_per_second > 0 and result.weights_path.exists()


def test_fit_draws_training_curves_from_the_history(tmp_path):
    from PIL import Image

    fit(make_model(), Classify(), make_data(64, 0), make_data(32, 1), cfg(epochs=2, monitor="accuracy"), tmp_path)
    with Image.open(tmp_path / "curves.png") as image:
        width, height = image.size
    assert width > 2 * height  # three panels side by side: train loss, learning rate, valid accuracy


def test_log_lines_do_not_glue_onto_the_progress_bar(tmp_path, capsys):
    import logging
    import sys

    handler = logging.StreamHandler(sys.stderr)  # a console handler, as the CLI installs one
    logging.getLogger().addHandler(handler)
    try:
        fit(make_model(), NaNAt({2}), make_data(64, 0), None, cfg(progress=True), tmp_path)
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [line for line in capsys.readouterr().err.split("\n") if "non-finite loss" in line]
    assert lines
    # The bar is drawn after a carriage return; a log line written over it would follow the bar's text.
    assert all(line.split("\r")[-1].startswith("step 2: non-finite loss") for line in lines), lines


def test_gradient_accumulation_matches_a_bigger_batch(tmp_path):
    # 8 x accumulate 2 sees the same examples per update as 16 x 1 (same seeded shuffle), so SGD
    # must end at the same weights; a wrong loss scale or a missed zero_grad would not.
    data = make_data(160, 0)
    big, small = make_model(), make_model()
    common = {"optimizer": "sgd", "momentum": 0.0, "lr": 0.1, "schedule": "constant", "epochs": 2}
    r1 = fit(big, Classify(), data, None, cfg(batch_size=16, **common), tmp_path / "a")
    r2 = fit(small, Classify(), data, None, cfg(batch_size=8, grad_accum_steps=2, **common), tmp_path / "b")
    assert r1.steps == r2.steps == 20
    for a, b in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_accumulation_counts_a_short_last_group(tmp_path):
    # 10 batches per epoch with groups of 3: updates of 3, 3, 3 and 1 micro-batches.
    result = fit(make_model(), Classify(), make_data(160, 0), None, cfg(grad_accum_steps=3, epochs=2), tmp_path)
    assert result.steps == 8
    assert all(math.isfinite(r["train/loss"]) for r in history(tmp_path))


class Stalled(Classify):
    def evaluate(self, model, loader):
        return {"accuracy": 0.5}


def test_early_stopping_stops_when_the_metric_stalls(tmp_path):
    c = cfg(epochs=20, monitor="accuracy", early_stopping_patience=2)
    result = fit(make_model(), Stalled(), make_data(64, 0), make_data(32, 1), c, tmp_path)
    assert result.stopped_early
    assert result.epochs_completed == 3 and result.steps == 12  # best at epoch 1, two more without gain
    assert result.best_step == 4 and result.best_metric == 0.5


class StopAt(Classify):
    """A task whose ``after_update`` ends training after update ``n`` (a time budget would)."""

    def __init__(self, n):
        self.n, self.seen = n, []

    def after_update(self, model, step):
        self.seen.append(step)
        return step >= self.n


def test_a_task_can_end_training_after_an_update(tmp_path):
    task = StopAt(5)
    result = fit(make_model(), task, make_data(128, 0), make_data(32, 1), cfg(epochs=10, monitor="accuracy"), tmp_path)
    assert task.seen == [1, 2, 3, 4, 5] and result.steps == 5 and not result.stopped_early
    # ended as a planned end is: validated at that step, checkpointed, curves drawn
    assert [r["step"] for r in history(tmp_path) if "valid/accuracy" in r] == [5]
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")["loop"]["step"] == 5
    assert (tmp_path / "curves.png").exists()
    # the same command again finds the run finished: no more updates
    again = StopAt(5)
    assert fit(make_model(), again, make_data(128, 0), make_data(32, 1), cfg(epochs=10, monitor="accuracy"),
               tmp_path).steps == 5
    assert again.seen == []


def test_monitoring_an_unknown_metric_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="f1"):
        fit(make_model(), Classify(), make_data(32, 0), make_data(16, 1), cfg(monitor="f1"), tmp_path)


class NaNAt(Classify):
    """A loss that is NaN on the given calls (counted from 1)."""

    def __init__(self, bad_calls):
        self.bad_calls, self.calls = set(bad_calls), 0

    def loss(self, model, batch):
        self.calls += 1
        loss = super().loss(model, batch)
        return loss * float("nan") if self.calls in self.bad_calls else loss


def test_a_nan_batch_is_skipped_and_training_continues(tmp_path, caplog):
    model = make_model()
    result = fit(model, NaNAt({3}), make_data(128, 0), make_data(64, 1), cfg(epochs=2, monitor="accuracy"), tmp_path)
    assert result.steps == 16 and result.skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert result.best_metric > 0.7
    assert "non-finite loss" in caplog.text


def test_too_many_nan_steps_in_a_row_raise(tmp_path):
    with pytest.raises(NonFiniteLossError, match="3 steps in a row"):
        fit(make_model(), NaNAt(range(1, 100)), make_data(128, 0), None, cfg(max_nonfinite_steps=3), tmp_path)


def test_lr_factor_warmup_then_linear_and_cosine():
    linear = lr_factor("linear", warmup_steps=2, total_steps=6)
    assert [round(linear(s), 4) for s in range(7)] == [0.3333, 0.6667, 1.0, 0.75, 0.5, 0.25, 0.0]
    cosine = lr_factor("cosine", warmup_steps=0, total_steps=4)
    assert [round(cosine(s), 4) for s in range(5)] == [1.0, 0.8536, 0.5, 0.1464, 0.0]
    assert lr_factor("constant", 1, 10)(5) == 1.0


def test_fit_follows_the_warmup_linear_schedule(tmp_path):
    fit(make_model(), Classify(), make_data(96, 0), None, cfg(lr=0.1, warmup_steps=2), tmp_path)
    lrs = [r["lr"] for r in history(tmp_path)]
    assert lrs == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.075, 0.05, 0.025])


def test_warmup_and_patience_settings_are_validated():
    with pytest.raises(UserError, match="warmup_steps or warmup_ratio"):
        validate(LoopConfig, {"warmup_steps": 10, "warmup_ratio": 0.1})
    with pytest.raises(UserError, match="needs monitor"):
        validate(LoopConfig, {"early_stopping_patience": 3})
    with pytest.raises(UserError, match="batch_sise: unknown key"):
        validate(LoopConfig, {"batch_sise": 3})


class CrashAt(Classify):
    def __init__(self, call):
        self.call, self.calls = call, 0

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.call:
            raise KeyboardInterrupt("simulated crash")
        return super().loss(model, batch)


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path):
    data, valid = make_data(128, 0), make_data(32, 1)
    c = cfg(epochs=2, checkpoint_every_steps=3, monitor="accuracy", eval_every_steps=5)
    reference = make_model()
    fit(reference, Classify(), data, valid, c, tmp_path / "ref")

    crashed = make_model()
    with pytest.raises(KeyboardInterrupt):
        fit(crashed, CrashAt(11), data, valid, c, tmp_path / "run")  # dies during step 11
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["loop"]["step"] == 10

    resumed = make_model(seed=123)  # a fresh process would rebuild the model from scratch
    result = fit(resumed, Classify(), data, valid, c, tmp_path / "run")
    assert result.steps == 16 and result.epochs_completed == 2
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert all(int(s["step"]) == 16 for s in ckpt["optimizer"]["state"].values())  # Adam moments carried over
    ref_ckpt = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    for key, value in ref_ckpt["model"].items():
        torch.testing.assert_close(ckpt["model"][key], value)
    steps = [r["step"] for r in history(tmp_path / "run") if "train/loss" in r]
    assert steps == list(range(1, 17))  # records past the checkpoint were dropped, not duplicated
    assert all(math.isfinite(r["train/loss"]) for r in history(tmp_path / "run") if "train/loss" in r)


def test_raising_max_steps_continues_the_same_run(tmp_path):
    data = make_data(128, 0)
    c = cfg(epochs=10, schedule="constant")
    reference = make_model()
    fit(reference, Classify(), data, None, c.model_copy(update={"max_steps": 13}), tmp_path / "ref")
    model = make_model()
    assert fit(model, Classify(), data, None, c.model_copy(update={"max_steps": 5}), tmp_path / "run").steps == 5
    assert fit(model, Classify(), data, None, c.model_copy(update={"max_steps": 13}), tmp_path / "run").steps == 13
    for a, b in zip(reference.parameters(), model.parameters()):
        torch.testing.assert_close(a, b)


def test_resume_false_starts_over(tmp_path):
    fit(make_model(), Classify(), make_data(64, 0), None, cfg(max_steps=3), tmp_path)
    result = fit(make_model(), Classify(), make_data(64, 0), None, cfg(max_steps=2), tmp_path, resume=False)
    assert result.steps == 2
    assert [r["step"] for r in history(tmp_path)] == [1, 2]


def test_resuming_with_a_different_model_is_a_user_error(tmp_path):
    fit(make_model(), Classify(), make_data(64, 0), None, cfg(max_steps=2), tmp_path)
    with pytest.raises(UserError, match="does not match"):
        fit(make_model(dim=4), Classify(), make_data(64, 0, dim=4), None, cfg(max_steps=4), tmp_path)


def test_checkpoints_hold_unwrapped_keys_and_weights_reload(tmp_path, monkeypatch):
    # compile=True wraps the model in an OptimizedModule ("_orig_mod."); the eager backend keeps it fast.
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real_compile(model, backend="eager"))
    model = make_model()
    c = cfg(epochs=3, monitor="accuracy", compile=True)
    result = fit(model, Classify(), make_data(64, 0), make_data(32, 1), c, tmp_path, extra_state={"labels": ["a", "b"]})
    expected_keys = set(make_model().state_dict())
    for path in (result.last_checkpoint, result.best_checkpoint):
        ckpt = load_checkpoint(path)
        assert set(ckpt["model"]) == expected_keys
        assert ckpt["extra"] == {"labels": ["a", "b"]} and ckpt["config"]["monitor"] == "accuracy"
    assert load_checkpoint(result.best_checkpoint)["loop"]["step"] == result.best_step

    fresh = load_weights(make_model(seed=99), tmp_path / "model.safetensors")
    x = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), unwrap_model(model)(x), rtol=0, atol=0)


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 10, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids):
        return self.out(self.embed(ids))


def test_tied_weights_round_trip_through_safetensors(tmp_path):
    torch.manual_seed(0)
    model = Tied()
    save_weights(model, tmp_path / "model.safetensors")
    torch.manual_seed(1)
    fresh = load_weights(Tied(), tmp_path / "model.safetensors")
    assert fresh.out.weight is fresh.embed.weight
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(fresh(ids), model(ids))
    with pytest.raises(UserError, match="does not fit"):
        load_weights(make_model(), tmp_path / "model.safetensors")


def test_move_to_device_recurses_and_leaves_other_values():
    Pair = namedtuple("Pair", "x meta")
    batch = {"ids": torch.ones(2, 3), "nested": [torch.zeros(2), ("text", 3)], "pair": Pair(torch.ones(1), "m")}
    moved = move_to_device(batch, torch.device("cpu"))
    assert moved["nested"][1] == ("text", 3) and isinstance(moved["pair"], Pair) and moved["pair"].meta == "m"
    assert torch.equal(moved["ids"], batch["ids"])
    assert default_batch_size(batch) == 2
    assert default_batch_size(([torch.zeros(3, 8, 8)] * 4, [{"boxes": torch.zeros(1, 4)}] * 4)) == 4


def test_length_grouped_batches_cover_everything_and_group_lengths():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=gen).tolist()
    sampler = LengthGroupedBatchSampler(lengths, 16, seed=3, mega_batch_factor=8)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # the largest batch comes first

    def mean_spread(bs):
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in bs) / len(bs)

    random_batches = torch.randperm(1000, generator=gen).split(16)
    assert mean_spread(batches) < 0.25 * mean_spread([b.tolist() for b in random_batches])

    assert list(sampler) == batches  # same seed and epoch: same batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_length_grouped_batches_shard_evenly_across_ranks():
    lengths = list(range(1, 102))  # 101 examples: 7 batches of 16, which two ranks cannot split evenly
    ranks = [LengthGroupedBatchSampler(lengths, 16, seed=0, num_replicas=2, rank=r) for r in (0, 1)]
    parts = [list(s) for s in ranks]
    assert len(parts[0]) == len(parts[1]) == len(ranks[0]) == 4
    assert {i for part in parts for b in part for i in b} == set(range(101))
    dropped = LengthGroupedBatchSampler(lengths, 16, seed=0, num_replicas=2, rank=1, drop_last=True)
    assert len(list(dropped)) == len(dropped) == 3 and all(len(b) == 16 for b in dropped)


def test_gather_helpers_are_identities_in_one_process():
    t = torch.arange(5)
    assert gather_cat(t) is t
    assert gather_list([1, 2]) == [1, 2] and all_gather_object("x") == ["x"]
    shards = [list(ShardSampler(10, num_replicas=3, rank=r)) for r in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_fit_on_cuda_with_mixed_precision(tmp_path, precision):
    c = cfg(device="cuda", precision=precision, epochs=3, monitor="accuracy", clip_grad_norm=1.0)
    result = fit(make_model(), Classify(), make_data(512, 0), make_data(256, 1), c, tmp_path)
    assert result.best_metric > 0.9 and result.skipped_steps == 0
    scaler_state = load_checkpoint(result.last_checkpoint)["scaler"]
    uses_fp16 = precision == "fp16" or torch.cuda.get_device_capability()[0] < 8
    assert bool(scaler_state) == uses_fp16  # the loss scaler runs (and is saved) only for fp16
    cpu_model = load_weights(make_model(seed=5), tmp_path / "model.safetensors")
    assert Classify().evaluate(cpu_model.eval(), [tuple(make_data(256, 1).tensors)])["accuracy"] > 0.9


DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    sys.path.insert(0, sys.argv[2])
    from test_training import Classify, make_data, make_model
    from shared.training import LoopConfig, fit
    from shared.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    out = sys.argv[1]
    cfg = LoopConfig(device="auto", epochs=2, batch_size=8, lr=1e-2, progress=False, log_every_steps=1,
                     monitor="accuracy", eval_every_steps=3)
    result = fit(make_model(), Classify(), make_data(100, 0), make_data(41, 1), cfg, out)
    rank = int(os.environ["RANK"])
    keys = list(load_checkpoint(os.path.join(out, "checkpoints", "last.pt"))["model"])
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"steps": result.steps, "best": result.best_metric, "n": result.last_metrics["n"],
                   "keys": keys}, f)
    """
)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         str(script), str(out), str(Path(__file__).parent)],
        check=False, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    # 100 examples over 2 ranks in batches of 8: 7 steps per epoch, 2 epochs.
    assert ranks[0]["steps"] == ranks[1]["steps"] == 14
    assert ranks[0]["best"] == ranks[1]["best"]  # both ranks took the same decisions
    assert ranks[0]["n"] == 41  # the gathered validation set counts each example once
    assert not any(k.startswith("module.") for k in ranks[0]["keys"])
    records = history(out)
    steps = [r["step"] for r in records if "train/loss" in r]
    assert steps == list(range(1, 15))  # one writer: each step logged once
    assert [r["step"] for r in records if "valid/accuracy" in r] == [3, 6, 9, 12, 14]
