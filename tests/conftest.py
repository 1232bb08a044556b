"""Shared fixtures. Tests that need a GPU use ``device``; without any WebGPU adapter they skip."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

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

