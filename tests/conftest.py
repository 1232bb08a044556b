"""Shared fixtures. Tests that need a GPU use ``device``; without any WebGPU adapter they skip."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
# The tests check which kernels the defaults pick: the software adapter's defaults on every adapter
# (tests/test_policy.py forces every variant, the GPU-shaped ones too), and never a user's measured
# choices (each test session starts with an empty kernel-choice cache).
os.environ.setdefault("WGNN_KERNEL_DEFAULTS", "cpu")
os.environ["WGNN_KERNEL_CACHE"] = tempfile.mkdtemp(prefix="wgnn-kernels-")

@pytest.fixture(scope="session")
def device():
    import wgnn

    try:
        return wgnn.default_device()
    except wgnn.NoAdapterError as exc:
        pytest.skip(f"no WebGPU adapter: {exc}")

@pytest.fixture
def rng():
    return np.random.default_rng(1234)



@pytest.fixture(params=["fp32", "fp16"])
def precision(request, device):
    """Run a test in both precisions; fp16 needs the adapter feature shader-f16."""
    if request.param == "fp16" and "shader-f16" not in device.features:
        pytest.skip(f"{device.name} lacks shader-f16")
    return request.param
