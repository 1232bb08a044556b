"""Build a small network with the WebNN-style GraphBuilder, run it on the GPU, check it in numpy,
then chain two sessions without reading the intermediate result back to the host.

    python demos/quickstart.py
"""

from __future__ import annotations

import numpy as np

import wgnn
from wgnn.reference import run_reference


def main() -> None:
    rng = np.random.default_rng(0)
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 3, 64, 64), "float32")
    w1 = b.constant(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32))
    y = b.conv2d(x, w1, bias=b.constant(np.zeros(16, np.float32)), strides=(2, 2), padding=(1, 1, 1, 1),
                 activation="relu6")
    w2 = b.constant(rng.normal(0, 0.3, (16, 1, 3, 3)).astype(np.float32))
    y = b.conv2d(y, w2, padding=(1, 1, 1, 1), groups=16, activation="relu")  # depthwise
    features = b.average_pool2d(y)  # global average pooling
    graph = b.build_graph({"features": features})
    backbone = wgnn.InferenceSession(graph)

    h = wgnn.GraphBuilder()
    f = h.input("features", (1, 16, 1, 1))
    logits = h.gemm(h.flatten(f), h.constant(rng.normal(0, 0.3, (16, 10)).astype(np.float32)))
    head = h.build({"probs": h.softmax(logits)})

    image = rng.random((1, 3, 64, 64), dtype=np.float32)
    on_gpu = backbone.run_on_gpu({"x": image})["features"]  # stays on the GPU
    probs = head.compute({"features": on_gpu})["probs"]

    expected = run_reference(graph, {"x": image})["features"]
    error = np.abs(on_gpu.numpy() - expected).max()
    print(f"adapter: {backbone.adapter_name}")
    print(f"backbone: {backbone.dispatch_count} dispatches, passes {dict(backbone.pass_log)}")
    print(f"features max abs error against numpy: {error:.2e}")
    print(f"class probabilities: {np.round(probs[0], 3)} (sum {probs.sum():.4f})")
    assert error < 1e-4


if __name__ == "__main__":
    main()
