"""The row kernels' two variants (softmax, layer norm, a mean reduction; a workgroup per row or an
invocation per row) on every size of a grid of rows x row length, each alone on this machine's
adapter: GPU time by the profiler (timestamp queries), the median of ``--runs``. What the kernel
policy's ``MIN_ROWS`` and ``SHORT_ROWS`` (wgnn/backends/compute/policy.py) are read from.

    python bench/row_kernels.py [--rows 1,4,15,31,63] [--lengths 384,1024,4096,16384] [--runs 9]
"""

from __future__ import annotations

import argparse

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import wgnn
from wgnn.profiler import profile


def model(op: str, rows: int, length: int) -> bytes:
    if op == "layer_norm":
        nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-5)]
        inits = [numpy_helper.from_array(np.ones(length, np.float32), "g"),
                 numpy_helper.from_array(np.zeros(length, np.float32), "b")]
    else:
        nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=-1) if op == "softmax" else
                 helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1], keepdims=1)]
        inits = []
    out = [rows, 1] if op == "reduce" else [rows, length]
    graph = helper.make_graph(nodes, op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, length])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1,4,15,31,63")
    parser.add_argument("--lengths", default="384,1024,4096,16384")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for op in ("layer_norm", "softmax", "reduce"):
        for rows in map(int, args.rows.split(",")):
            for length in map(int, args.lengths.split(",")):
                x = rng.standard_normal((rows, length)).astype(np.float32)
                us = {}
                for variant in ("row", "workgroup"):
                    session = wgnn.InferenceSession(model(op, rows, length), kernels={op: variant})
                    session.run(None, {"x": x})
                    us[variant] = profile(session, {"x": x}, runs=args.runs).gpu_ms * 1e3
                print(f"{op:10s} rows {rows:4d} x {length:6d}: row {us['row']:8.1f} us, workgroup "
                      f"{us['workgroup']:8.1f} us, row / workgroup {us['row'] / us['workgroup']:.2f}", flush=True)
    print(f"adapter: {wgnn.default_device().name}")


if __name__ == "__main__":
    main()
