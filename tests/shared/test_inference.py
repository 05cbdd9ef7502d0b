"""shared.inference on a tiny MLP: the three backends agree, and the missing/damaged-file policy."""
import logging

import numpy as np
import pytest
import torch

from shared.checkpoint import load_weights, save_weights
from shared.errors import UserError
from shared.inference import BACKENDS, TorchRunner, batched, build_runner
from shared.onnx_export import export_onnx, quantize_int8


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))


class TwoInputs(torch.nn.Module):
    """Named inputs, two outputs: the shape of a BERT-style head (ids + mask → start, end)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask):
        h = self.head(self.embed(input_ids)) * attention_mask.unsqueeze(-1)
        return h[..., 0], h[..., 1]


class Task:
    """A run directory as an app's stages see it: weights on disk, an export stage, call counts."""

    def __init__(self, run, int8=True):
        self.run, self.int8, self.exports = run, int8, 0
        save_weights(make_model(), run / "model.safetensors")

    def load_model(self):
        return load_weights(make_model(seed=1), self.run / "model.safetensors")

    def export(self):
        self.exports += 1
        path = export_onnx(self.load_model(), (torch.zeros(1, 8),), self.run / "model.onnx",
                           input_names=["x"], output_names=["logits"],
                           dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
        if self.int8:
            quantize_int8(path, self.run / "model.int8.onnx")
        return {"onnx": str(path)}

    def runner(self, backend, export=True, **kw):
        export_stage = self.export if export else None
        return build_runner(self.run, backend, self.load_model, export_stage, threads=1, **kw)


@pytest.fixture
def task(tmp_path):
    return Task(tmp_path)


def inputs(n=40):
    return {"x": np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)}


def test_the_three_backends_agree_and_missing_files_are_exported_once(task, caplog):
    caplog.set_level(logging.INFO, logger="shared.inference")
    out = {backend: task.runner(backend)(inputs()) for backend in BACKENDS}
    # the onnx backend's export wrote both files; onnx-int8 found its file there
    assert task.exports == 1 and "exporting it now" in caplog.text
    (ref,) = out["torch"]
    assert ref.shape == (40, 3) and ref.dtype == np.float32
    np.testing.assert_allclose(out["onnx"][0], ref, rtol=1e-4, atol=1e-5)
    int8 = out["onnx-int8"][0]
    assert np.abs(int8 - ref).max() < 0.05 * np.abs(ref).max()  # int8 rounding, not a different model
    assert (int8.argmax(1) == ref.argmax(1)).mean() >= 0.9
    task.runner("onnx")(inputs())
    assert task.exports == 1  # a file that exists is used as it is


def test_bf16_torch_runner_is_close_to_fp32(task):
    (ref,) = task.runner("torch")(inputs())
    (low,) = task.runner("torch", precision="bf16")(inputs())
    assert low.dtype == np.float32
    np.testing.assert_allclose(low, ref, atol=0.05 * np.abs(ref).max())


def test_batched_concatenates_each_output_in_order():
    model = TwoInputs()
    runner = TorchRunner(model)  # several inputs go in by name
    ids = np.random.default_rng(0).integers(0, 20, (10, 5))
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    start, end = batched(runner, feed, batch_size=3)
    whole_start, whole_end = runner(feed)
    np.testing.assert_allclose(start, whole_start, rtol=1e-6)
    np.testing.assert_allclose(end, whole_end, rtol=1e-6)
    assert batched(runner, {"input_ids": ids[:0], "attention_mask": ids[:0]}) == []


def test_a_missing_file_without_an_export_stage_names_the_command(task):
    with pytest.raises(UserError, match="model.onnx not found: run `python -m app export --run R` first"):
        task.runner("onnx", export=False, export_command="python -m app export --run R")
    with pytest.raises(UserError, match="no export stage; or use backend=torch"):
        task.runner("onnx-int8", export=False)
    with pytest.raises(UserError, match="unknown backend 'tensorrt'"):
        task.runner("tensorrt")


def test_an_export_that_skips_int8_is_a_user_error(tmp_path):
    task = Task(tmp_path, int8=False)
    with pytest.raises(UserError, match="did not write model.int8.onnx"):
        task.runner("onnx-int8")


@pytest.mark.parametrize("backend, name", [("torch", "model.safetensors"), ("onnx", "model.onnx")])
def test_a_truncated_file_is_a_one_line_user_error_naming_it(task, backend, name):
    task.export()
    path = task.run / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError) as err:
        task.runner(backend)
    message = str(err.value)
    assert str(path) in message and "damaged" in message and "\n" not in message
