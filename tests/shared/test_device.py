import contextlib
import random

import numpy as np
import pytest
import torch

from shared.device import (
    autocast,
    make_grad_scaler,
    resolve_device,
    resolve_precision,
    seed_everything,
    set_threads,
)
from shared.errors import UserError

no_accelerator = pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(), reason="an accelerator is present"
)


@no_accelerator
def test_auto_is_cpu_without_an_accelerator():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


def test_explicit_cpu_is_honoured():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_user_error(name):
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:x"])
def test_unknown_device_is_a_user_error(name):
    with pytest.raises(UserError, match="device"):
        resolve_device(name)


def test_precision_auto_is_fp32_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"


def test_fp16_on_cpu_and_unknown_precision_are_user_errors():
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(UserError, match="unknown precision"):
        resolve_precision("fp8", torch.device("cpu"))


def test_autocast_is_a_no_op_for_fp32_and_real_for_bf16():
    cpu = torch.device("cpu")
    assert isinstance(autocast(cpu, "fp32"), contextlib.nullcontext)
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast(cpu, "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16


def test_grad_scaler_is_disabled_off_fp16():
    scaler = make_grad_scaler(torch.device("cpu"), "fp32")
    assert not scaler.is_enabled()
    loss = torch.tensor(2.0)
    assert scaler.scale(loss) is loss  # a disabled scaler passes values straight through


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first


def test_set_threads():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)
        assert torch.get_num_threads() == 1
        with pytest.raises(UserError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


@pytest.mark.gpu
def test_cuda_precision_policy_and_scaler():
    cuda = resolve_device("auto")
    assert cuda.type == "cuda"
    precision = resolve_precision("auto", cuda)
    major, _ = torch.cuda.get_device_capability(cuda)
    assert precision == ("bf16" if major >= 8 else "fp16")
    assert make_grad_scaler(cuda, "fp16").is_enabled()
    assert not make_grad_scaler(cuda, "bf16").is_enabled()
    a = torch.randn(8, 8, device=cuda)
    with autocast(cuda, precision):
        assert (a @ a).dtype in (torch.bfloat16, torch.float16)
