"""``wgnn.onnx_backend``: an ``onnx.backend.base.Backend`` on top of ``InferenceSession``, so any
ONNX backend test suite can run against wgnn, and ``conformance`` to run ONNX's own node tests.

wgnn compiles static graphs. Every input runs on the GPU (int64 and bool ones too, stored as i32)
unless the model needs its value at compile time (a Reshape's shape, Slice's starts, Resize's
scales, Clip's bounds): the first compile says so by naming it, and from then on it is folded as a
constant. A prepared model thus compiles on its first run and again only for other folded values.
Where the needed value is computed from the inputs rather than fed, the integer inputs are folded.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

import numpy as np

try:
    import onnx
    from onnx import helper
    from onnx.backend.base import Backend, BackendRep
except ImportError as exc:  # pragma: no cover
    raise ImportError("wgnn.onnx_backend needs the onnx package: pip install onnx") from exc

from .errors import GraphError, UnsupportedOperatorError
from .importers.onnx import SUPPORTED_OPS, all_nodes

# ONNX element types with no storage in WGSL (which has f32, f16, i32, u32 and no 8/64-bit types; the
# 2-, 4-, 8- and 16-bit integers and uint32 live in i32 words, uint64 like int64).
UNSTORABLE = {8: "string", 11: "float64", 14: "complex64", 15: "complex128", 16: "bfloat16",
              17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 23: "float4e2m1",
              24: "float8e8m0"}
FOLDED_INPUT_DTYPES = ("i", "u", "b")  # numpy kinds folded as constants at compile time


def _as_constants(model, values: dict[str, np.ndarray]):
    """A copy of ``model`` whose inputs in ``values`` are initializers instead."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    keep = [i for i in copy.graph.input if i.name not in values]
    del copy.graph.input[:]
    copy.graph.input.extend(keep)
    copy.graph.initializer.extend(onnx.numpy_helper.from_array(np.asarray(v), n) for n, v in values.items())
    return copy


def _without_inputs(model, names: list[str]):
    """A copy of ``model`` without the inputs ``names``: the nodes that read them read "" (no
    input), which is how ONNX writes an empty optional."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    keep = [i for i in copy.graph.input if i.name not in names]
    del copy.graph.input[:]
    copy.graph.input.extend(keep)
    for node in all_nodes(copy.graph):
        for k, name in enumerate(node.input):
            if name in names:
                node.input[k] = ""
    return copy


class WgnnRep(BackendRep):
    """A prepared model: compiled on first run (integer inputs folded), cached per folded values."""

    def __init__(self, model, **options):
        self.model = model
        self.options = options
        self.inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
        self._sessions: dict[bytes, object] = {}
        self._static: set[str] = set()  # float inputs the model needs at compile time

    def run(self, inputs, **kwargs):
        from .session import InferenceSession

        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            feeds = dict(zip(self.inputs, inputs if isinstance(inputs, (list, tuple)) else [inputs]))
        # An empty optional input (None): the model without it, every node reading it given no input
        absent = sorted(k for k, v in feeds.items() if v is None)
        if absent:
            return WgnnRep(_without_inputs(self.model, absent), **self.options).run(
                {k: v for k, v in feeds.items() if v is not None})
        # A sequence input (ONNX seq(tensor)) is a list of arrays; it compiles with its element shapes.
        feeds = {k: [np.asarray(e) for e in v] if isinstance(v, list) else np.asarray(v) for k, v in feeds.items()}
        shapes = {k: [e.shape for e in v] if isinstance(v, list) else v.shape for k, v in feeds.items()}
        while True:
            folded = {k: v for k, v in feeds.items() if k in self._static}
            fed = {k: v for k, v in shapes.items() if k not in folded}
            key = b"".join(k.encode() + v.tobytes() + str(v.shape).encode() for k, v in sorted(folded.items()))
            key += str(sorted(fed.items())).encode()
            session = self._sessions.get(key)
            if session is not None:
                break
            try:
                session = InferenceSession(_as_constants(self.model, folded), input_shapes=fed, **self.options)
            except UnsupportedOperatorError as exc:
                # a Loop's trip count or an If's condition computed from inputs (floats too): fold them
                behind = re.search(r"computed on the GPU from input\(s\) \[([^]]*)\]", str(exc))
                names = set(re.findall(r"'([^']+)'", behind.group(1))) if behind else set()
                if not names or not names <= set(feeds) or names <= self._static:
                    raise
                self._static |= names
                continue
            except GraphError as exc:
                needed = re.search(r"must be known at compile time; '([^']+)' depends on a graph input", str(exc))
                if needed is None:
                    raise
                if needed.group(1) in feeds and needed.group(1) not in self._static:
                    self._static.add(needed.group(1))
                    continue
                # A value computed from inputs: fold the integer inputs it may come from (shapes,
                # axes and indices are), once.
                integers = {k for k, v in feeds.items()
                            if not isinstance(v, list) and v.dtype.kind in FOLDED_INPUT_DTYPES} - self._static
                if not integers:
                    raise
                self._static |= integers
                continue
            self._sessions[key] = session
            break
        outputs = session.run(None, {k: v for k, v in feeds.items() if k not in folded})
        return outputs


class WgnnBackend(Backend):
    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return all(n.op_type in SUPPORTED_OPS and n.domain in ("", "ai.onnx") for n in all_nodes(model.graph))

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> WgnnRep:
        super().prepare(model, device, **kwargs)
        return WgnnRep(model, **kwargs)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device: str = "CPU", outputs_info=None, **kwargs):
        values = {name: np.asarray(v) for name, v in zip(node.input, inputs) if name}
        graph = helper.make_graph(
            [node], "node",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for n, v in values.items()],
            [helper.make_empty_tensor_value_info(o) for o in node.output])
        # A model made here, whose outputs have no declared shapes: prepare's checker would refuse it.
        return WgnnRep(helper.make_model(graph), **kwargs).run(values)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        # ONNX's suites ask for "CPU" by default: wgnn runs on the WebGPU adapter of its default device.
        return device in ("CPU", "WEBGPU")


prepare = WgnnBackend.prepare
run_model = WgnnBackend.run_model
run_node = WgnnBackend.run_node
supports_device = WgnnBackend.supports_device


# -- ONNX's node tests ------------------------------------------------------------------------------

@dataclass
class OpResult:
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _unstorable(model) -> str | None:
    """Why a case cannot run on any WebGPU backend: an input or output, or a value a Cast makes (as
    functions expanded into a case compute in float64), of a type WGSL cannot store."""
    elems = [value.type.tensor_type.elem_type for value in list(model.graph.input) + list(model.graph.output)]
    elems += [a.i for n in all_nodes(model.graph) if n.op_type == "Cast" for a in n.attribute if a.name == "to"]
    for elem in elems:
        if elem in UNSTORABLE:
            return f"dtype {UNSTORABLE[elem]} has no storage in WGSL"
    return None


def _arrays(values) -> list:
    """Some cases store their data as TensorProtos (the float16 and float8 casts): numpy arrays."""
    return [onnx.numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v for v in values]


def _assert_close(got, expected, rtol: float, atol: float) -> None:
    if isinstance(expected, list):  # a sequence
        if not isinstance(got, list) or len(got) != len(expected):
            raise AssertionError(f"got {type(got).__name__}, expected a sequence of {len(expected)}")
        for g, e in zip(got, expected):
            _assert_close(g, e, rtol, atol)
        return
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        raise AssertionError(f"shape {got.shape}, expected {expected.shape}")
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol)


def conformance(ops: set[str] | None = None, progress=None) -> dict[str, OpResult]:
    """Run every node test case of the supported ops (or ``ops``), each with its own rtol/atol."""
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    results: dict[str, OpResult] = collections.defaultdict(OpResult)
    for case in cases:
        nodes = case.model.graph.node
        if not nodes or any(n.op_type not in SUPPORTED_OPS for n in all_nodes(case.model.graph)):
            continue
        op = nodes[-1].op_type
        if ops is not None and op not in ops:
            continue
        if progress:
            progress(case.name)
        reason = _unstorable(case.model)
        if reason:
            results[op].skipped.append((case.name, reason))
            continue
        try:
            rep = WgnnBackend.prepare(case.model)
            for inputs, expected in case.data_sets or []:
                inputs, expected = _arrays(inputs), _arrays(expected)
                got = rep.run(inputs)
                for g, e in zip(got, expected):
                    _assert_close(g, e, case.rtol, case.atol)
            results[op].passed.append(case.name)
        except Exception as exc:  # every case reports its own failure; the run goes on
            cast = re.search(r"cast to ONNX type (\d+)", str(exc))
            if isinstance(exc, UnsupportedOperatorError) and cast and int(cast.group(1)) in UNSTORABLE:
                # (a Cast inside an op's function body, which _unstorable cannot see)
                dtype = UNSTORABLE[int(cast.group(1))]
                results[op].skipped.append((case.name, f"dtype {dtype} has no storage in WGSL"))
                continue
            results[op].failed.append((case.name, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:150]}"))
    return dict(sorted(results.items()))


def format_conformance(results: dict[str, OpResult]) -> str:
    lines = [f"{'op':<20} {'passed':>7} {'failed':>7} {'skipped':>8}"]
    for op, r in results.items():
        lines.append(f"{op:<20} {len(r.passed):>7} {len(r.failed):>7} {len(r.skipped):>8}")
        reasons = collections.Counter(reason for _, reason in r.failed + r.skipped)
        for reason, count in reasons.most_common(3):
            lines.append(f"    {count} x {reason}")
    totals = [sum(len(getattr(r, k)) for r in results.values()) for k in ("passed", "failed", "skipped")]
    lines.append(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return "\n".join(lines)


def conformance_markdown(results: dict[str, OpResult]) -> str:
    """The README's conformance table (``wgnn conformance --markdown``)."""
    lines = ["| op | passed | failed | skipped (dtype without WGSL storage) |", "|---|---|---|---|"]
    for op, r in results.items():
        lines.append(f"| {op} | {len(r.passed)} | {len(r.failed)} | {len(r.skipped)} |")
    totals = [sum(len(getattr(r, k)) for r in results.values()) for k in ("passed", "failed", "skipped")]
    lines.append(f"| **total** | **{totals[0]}** | **{totals[1]}** | **{totals[2]}** |")
    return "\n".join(lines)


def conformance_json(results: dict[str, OpResult]) -> dict:
    return {op: {"passed": r.passed, "failed": [{"case": c, "reason": w} for c, w in r.failed],
                 "skipped": [{"case": c, "reason": w} for c, w in r.skipped]} for op, r in results.items()}
