"""Helpers shared by the test modules."""

from __future__ import annotations

import numpy as np

import wgnn
from wgnn.reference import run_reference


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom else float(np.abs(a).max())


def run_both(builder: wgnn.GraphBuilder, outputs: dict, feeds: dict, **options):
    """(session, GPU results, numpy results of the graph before any pass)."""
    graph = builder.build_graph(outputs)
    reference = run_reference(graph.copy(), feeds)
    session = wgnn.InferenceSession(graph, **options)
    return session, session.compute(feeds), reference


def kernels_used(session: wgnn.InferenceSession) -> list[str]:
    return [d.kernel for d in session._exe.dispatches]


def tol(precision: str) -> float:
    """Relative L2 error allowed against the f32 numpy reference on ordinary data."""
    return {"fp32": 1e-5, "fp16": 5e-3}[precision]
