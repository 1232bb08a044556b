"""What the backends share: the fused-epilogue description, strided addressing, uniform packing, and
the run loop of an executable (write inputs, encode, copy outputs, submit once, map once)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import shaders
from ..errors import LoopLimitError
from ..graph import Graph, Node, Operand
from ..layout import logical_strides
from ..runtime import Device, wgpu

F16_MAX = 65504.0
MAX_RANK = 8  # axes the strided kernels (compute elementwise, texture elementwise) address


def fits_f16(array: np.ndarray) -> bool:
    """True when every finite value survives conversion to f16 without becoming infinite."""
    if array.size and -F16_MAX <= array.min() and array.max() <= F16_MAX:  # (most weights: read twice, no
        return True  # copy; a NaN or an infinity fails this and is looked at below)
    return bool(np.all(np.abs(array[np.isfinite(array)]) <= F16_MAX))


def padded(n: int, alignment: int) -> int:
    """``n`` rounded up to a multiple of ``alignment`` (at least one ``alignment``)."""
    return max(alignment, -(-n // alignment) * alignment)


# -- the fused epilogue -------------------------------------------------------------------------

@dataclass
class Epilogue:
    """What a fused conv/matmul epilogue needs, whichever backend lowers it: the per-channel bias
    and PRelu slope (None without PRelu), the residual tensor, a product's run-time factor (None
    without), and the template and uniforms."""

    bias: np.ndarray
    residual: Operand | None
    slope: np.ndarray | None
    template: dict
    params: dict
    factor: Operand | None = None


def factor_of(node: Node):
    """A product's run-time factor (epilogue.wgsl's ``factored``, binding 7, after y): a matmul's
    sixth input, a convolution's seventh (its sixth is its x_scale, which takes binding 7 in the
    matrix kernels: no convolution has both, ``passes.fuse_dequantize_sum_into_conv``); else None."""
    at = {"matmul": 5, "conv2d": 6, "winograd_output": 6}.get(node.op)
    return node.inputs[at] if at is not None and len(node.inputs) > at else None


def fused_epilogue(node: Node, ctx, channels: int) -> Epilogue:
    """The epilogue of a fusable node with inputs [x, w, bias?, residual?, slope?] and a run-time
    factor (``factor_of``). A convolution's with attr ``offset_bias`` (a dynamically quantized one's,
    ``passes.fuse_dequantize_sum_into_conv``) adds its bias to the integer sums before the factor, as
    ternary.wgsl's dequantize_sum does: "floor" where the bias is a float to take in the factor's
    units (bias_scaled), "exact" where it is integers already."""
    act = node.attrs.get("activation")
    ins = node.inputs + [None] * (6 - len(node.inputs))
    bias, residual, slope = ins[2], ins[3], ins[4]
    factor = factor_of(node)
    for t, what in ((bias, "bias"), (slope, "PRelu slope")):
        if t is not None and not t.is_constant:
            raise ctx.unsupported(node, f"a {what} computed at run time")
    bias_v = np.zeros(channels, np.float32) if bias is None else bias.value.astype(np.float32).reshape(-1)
    slope_v = None
    if act is not None and act.kind == "prelu":
        slope_v = np.broadcast_to(slope.value.astype(np.float32).reshape(-1), (channels,))
    post = node.attrs.get("affine_after")  # (scale, shift) after the activation (passes.fuse_affine)
    template = {"act": act.kind if act else "none", "residual": residual is not None,
                "residual_after": bool(node.attrs.get("residual_after")), "affine": post is not None}
    params = {"alpha": act.alpha if act else 0.0, "beta": act.beta if act else 0.0,
              "post_scale": post[0] if post else 1.0, "post_shift": post[1] if post else 0.0}
    offset = node.attrs.get("offset_bias") if factor is not None else None
    template.update(FACTOR_TEMPLATE[factor is not None] if offset is None else OFFSET_TEMPLATE[offset])
    if factor is not None:
        params["factor_scale"] = float(node.attrs.get("factor_scale", 1.0))
    return Epilogue(bias_v, residual, slope_v, template, params, factor)


# epilogue.wgsl's (and epilogue_scalar.wgsl's) run-time factor: without, with. ``biased``: the sums
# with the bias (b), after the factor.
_FACTOR_BINDING = "@group(0) @binding(7) var<storage, read_write> factor: array<factor_elem>;"
FACTOR_TEMPLATE = {
    False: {"factor_binding": "", "factor_times": "acc", "factor_field": "", "biased": "factored(acc) + b"},
    True: {"factor_binding": _FACTOR_BINDING, "factor_times": "acc * (f32(factor[0]) * p.factor_scale)",
           "factor_field": "factor_scale: f32,", "biased": "factored(acc) + b"}}
# The bias added to the integer sums before the factor (fused_epilogue's ``offset_bias``): s the
# factor times p.factor_scale, (i32(sums) + i32(floor(b / s))) * s or (i32(sums) + i32(b)) * s, in
# ternary.wgsl's dequantize_sum's operations (the includer's ``offset_sums``).
_FACTOR_SCALE = "f32(factor[0]) * p.factor_scale"  # (s: the factor times its constant scale)
OFFSET_TEMPLATE = {kind: dict(FACTOR_TEMPLATE[True], biased=f"offset_sums(acc, {offset}, {_FACTOR_SCALE})")
                   for kind, offset in (("floor", f"floor(b / ({_FACTOR_SCALE}))"), ("exact", "b"))}


# -- strided addressing -------------------------------------------------------------------------

def broadcast_strides(operand: Operand, out_shape: tuple[int, ...], perm: tuple[int, ...] | None,
                      own: list[int] | None = None) -> list[int]:
    """Strides of ``operand`` (stored in ``perm``, or addressed by its own strides ``own`` per
    logical axis) per *logical* axis of ``out_shape`` (0 = broadcast)."""
    own = logical_strides(operand.shape, perm) if own is None else own
    lead = len(out_shape) - operand.rank
    return [0] * lead + [0 if operand.shape[k] == 1 else own[k] for k in range(operand.rank)]


def merge_dims(shape: list[int], stride_sets: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 axes and merge neighbours that every operand walks contiguously."""
    keep = [k for k, d in enumerate(shape) if d != 1] or [len(shape) - 1] if shape else []
    shape = [shape[k] for k in keep] if shape else [1]
    sets = [[s[k] for k in keep] if keep else [0] for s in stride_sets]
    k = len(shape) - 2
    while k >= 0:
        if all(s[k] == s[k + 1] * shape[k + 1] for s in sets):
            shape[k] *= shape[k + 1]
            del shape[k + 1]
            for s in sets:
                s[k] = s[k + 1]
                del s[k + 1]
        k -= 1
    return shape, sets


def pack_dims(values: list[int], fill: int) -> list[list[int]]:
    """Up to MAX_RANK values as the two vec4s of a uniform's ``array<vec4<u32>, 2>``."""
    values = list(values) + [fill] * (MAX_RANK - len(values))
    return [values[0:4], values[4:8]]


def check_loops(device: Device, node: Node, kernel: str, loops: int) -> None:
    """Refuse a kernel whose invocations would run more loop iterations than ``device`` runs (its
    ``loop_limit``: llvmpipe's 65,535) rather than give results cut short without a word."""
    limit = device.loop_limit
    if limit is not None and loops > limit:
        raise LoopLimitError(f"{node.op} node {node.name!r}: kernel {kernel!r} would run {loops} loop iterations in "
                             f"one invocation, and {device.name} ends an invocation's loops after {limit} (Mesa's "
                             "llvmpipe), which would cut its result short. No variant of this kernel stays within "
                             "that here; a hardware adapter has no such limit", loops, limit)


# -- uniforms -----------------------------------------------------------------------------------

def pack_uniforms(device: Device, items: list[tuple[list[tuple[str, str]], dict, str]]):
    """All parameters of a run in one uniform buffer: ``items`` are (the shader's Params fields, the
    values, what to name in an error). Returns the buffer and each item's (offset, size) slot."""
    align = device.uniform_alignment
    data, slots = bytearray(), []
    for fields, values, where in items:
        packed = shaders.pack_params(fields, values, where)
        data += b"\0" * (-len(data) % align)
        slots.append((len(data), len(packed)))
        data += packed
    buffer = device.buffer(len(data), usage=wgpu.BufferUsage.UNIFORM, data=bytes(data), label="params")
    return buffer, slots


# -- running ------------------------------------------------------------------------------------

class Executable:
    """A compiled graph on one device, everything already on the GPU. A run writes the inputs,
    encodes the backend's work and the output copies into one command buffer, submits once and
    maps the read-back buffer once. Backends define the four steps below."""

    device: Device
    graph: Graph
    readback: object
    compile_seconds: float = 0.0
    rewrites: dict = {}  # the backend's own rewrites and how often each fired (set by compile_graph)

    @property
    def held_bytes(self) -> int:
        """GPU memory this plan holds on its own: its intermediates, inputs, outputs and read-back,
        and its weights where it does not share them with the session's other plans (the compute
        backend's plans share the weights and the arena of intermediates, ``SharedBuffers``)."""
        raise NotImplementedError

    def write_inputs(self, enc, feeds: dict) -> None:
        raise NotImplementedError

    def encode(self, enc, timestamps=None) -> None:
        raise NotImplementedError

    def copy_outputs(self, enc) -> None:
        raise NotImplementedError

    def decode(self, name: str, raw: memoryview) -> np.ndarray:
        raise NotImplementedError

    def run(self, feeds: dict, *, read_back: bool = True, timestamps=None) -> dict[str, np.ndarray]:
        """Run once. ``timestamps`` (a ``profiler.Timestamps``) makes each step's GPU time measurable.
        ``$WGNN_SUBMIT_CHUNK`` = N (compute backend, without timestamps) submits every N dispatches
        as they are encoded, so that the GPU starts before encoding ends (an experiment for GPUs:
        whether it pays is measured by ``bench/gpu.sh chunks``)."""
        enc = self.device.device.create_command_encoder()
        self.write_inputs(enc, feeds)
        chunk = int(os.environ.get("WGNN_SUBMIT_CHUNK", "0") or 0)
        if chunk > 0 and timestamps is None and hasattr(self, "encode_range"):
            count = len(self.dispatches)
            for start in range(0, count, chunk):
                self.encode_range(enc, start, min(start + chunk, count))
                if start + chunk < count:
                    self.device.queue.submit([enc.finish()])
                    enc = self.device.device.create_command_encoder()
        else:
            self.encode(enc, timestamps)
        if read_back:
            self.copy_outputs(enc)
        if timestamps is not None:
            timestamps.resolve(enc)
        self.device.queue.submit([enc.finish()])
        if not read_back:
            return {}
        raw = self.device.read_mapped(self.readback)
        return {name: self.decode(name, raw) for name in self.graph.outputs}


# -- what both backends' reduce and resize kernels take -------------------------------------------

def reduction_uniforms(node: Node, red_shape: list[int], red_strides: list[int]) -> tuple[dict, dict]:
    """(params, template) of a reduce node's reduced axes (``red_shape`` and ``red_strides``, merged
    by the lowering in its own element indices) and its kind (``reduce_kinds.wgsl``)."""
    from ..ops.reduce import KINDS

    x, axes = node.inputs[0], node.attrs["axes"]
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    init, mapping, combine, finish = KINDS[node.attrs["kind"]]
    params = {"reduce_size": count, "inv_count": 1.0 / max(count, 1),
              "red_shape": pack_dims(red_shape, 1), "red_strides": pack_dims(red_strides, 0)}
    template = {"red_rank": len(red_shape), "init": init, "map": mapping, "combine_kind": combine, "finish": finish,
                "needs_max": node.attrs["kind"] == "log_sum_exp"}
    return params, template


def resize_uniforms(node: Node) -> tuple[np.ndarray, dict, dict]:
    """(source-position table, params, template) of a resize node (``resize_filter.wgsl``): the
    table holds each output row's and column's source position, then whether it lies outside."""
    from ..ops.resize import source_positions

    x, out, a = node.inputs[0], node.outputs[0], node.attrs
    (fh, start_h, taps_h), (fw, start_w, taps_w) = a["filters"]
    (pos_h, out_h), (pos_w, out_w) = (source_positions(a, k, x.shape[2 + k], a["size"][k]) for k in range(2))
    table = np.concatenate([pos_h, pos_w, out_h, out_w]).astype(np.float32)
    params = dict(in_h=x.shape[2], in_w=x.shape[3], c=x.shape[1], out_h=out.shape[2], out_w=out.shape[3],
                  support_h=fh, support_w=fw, start_h=start_h, start_w=start_w, taps_h=taps_h, taps_w=taps_w,
                  cubic_a=a["cubic_a"], exclude_outside=int(a["exclude_outside"]),
                  extrapolate=int(a["extrapolation"] is not None),
                  extrapolation=0.0 if a["extrapolation"] is None else a["extrapolation"])
    template = {"mode": "nearest" if a["mode"] == "nearest" else "filtered",
                "filter": a["mode"] if a["mode"] != "nearest" else "linear", "value": "f32"}
    return table, params, template
