"""Whole models: the zoo against onnxruntime CPU, and the onnx package's light models."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import rel_l2

import wgnn
from wgnn import zoo

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_model_matches_onnxruntime(device, name):
    x = zoo.random_input(seed=3)
    for softmax in (False, True):
        model = zoo.build(name, softmax=softmax)
        expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"input": x})[0]
        if not softmax:
            assert expected.std() < 100, "logits should be in a range where softmax is informative"
        (got,) = wgnn.InferenceSession(model).run(None, {"input": x})
        assert got.shape == expected.shape == (1, 1000)
        assert rel_l2(got, expected) < 1e-4, f"{name} softmax={softmax}"
        assert int(got.argmax()) == int(expected.argmax())


LIGHT_MODELS = ["squeezenet", "resnet50", "bvlc_alexnet", "zfnet512", "vgg19", "densenet121", "inception_v1",
                "inception_v2", "shufflenet"]


def test_every_light_model_is_tested():
    found = [f[len("light_"):-len(".onnx")] for f in os.listdir(LIGHT) if f.endswith(".onnx")]
    assert sorted(found) == sorted(LIGHT_MODELS)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_models_load_and_run(device, name):
    """The onnx package's light models against their stored outputs. Old-style files: initializers
    listed as inputs, weights from ConstantOfShape (all 0.02). VGG19's and AlexNet's first fully
    connected weights exceed a 128 MiB storage binding and are split by columns."""
    from onnx import numpy_helper

    session = wgnn.InferenceSession(os.path.join(LIGHT, f"light_{name}.onnx"))
    (inp,) = session.get_inputs()
    assert session.pass_log["fold_constants"] > 0
    x = np.random.default_rng(0).standard_normal(inp.shape).astype(np.float32)
    (got,) = session.run(None, {inp.name: x})
    stored = numpy_helper.to_array(onnx.load_tensor(os.path.join(LIGHT, f"light_{name}_output_0.pb")))
    assert got.shape == stored.shape
    np.testing.assert_allclose(got, stored, rtol=1e-4, atol=1e-7)
