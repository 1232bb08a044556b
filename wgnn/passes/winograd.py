"""Rewrite 3x3, stride-1 convolutions into Winograd F(2x2, 3x3) or F(4x4, 3x3) form (see
``ops/winograd.py``).

A convolution qualifies when its filter is a constant 3x3 with stride 1, dilation 1, one group,
and input and output channels divisible by 4 (the kernels move four channels per vec4), and when
its transformed tensors ((m + 2)^2 x tiles x channels: four times the input's or output's size for
m = 2, 2.25 times for m = 4) each fit one storage binding. Its bias, residual and activation move to
the output transform. Runs at compile time on the compute backend, after fusion, so the epilogue is
already known, where the kernel policy (``backends/compute/policy.py``) chooses Winograd for the
convolution (``winograd``: m = 2, ``winograd4``: m = 4).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from ..ops.winograd import B_T, tiles_of, transform_filter


def winograd_convs(graph: Graph, max_binding_bytes: int, *, use: Callable[[Node], int] | None = None) -> int:
    """Rewrite every qualifying convolution in ``graph`` (of those, only where ``use(node)``, the
    compute backend's kernel policy, gives an output tile side, 2 or 4; 0: not this one; no ``use``:
    all, as F(2x2, 3x3)); returns how many were rewritten."""
    count = 0
    new_nodes: list[Node] = []
    for node in graph.nodes:
        m = (use(node) if use is not None else 2) if node.op == "conv2d" and qualifies(node, max_binding_bytes) else 0
        if m and qualifies(node, max_binding_bytes, m):
            new_nodes.extend(_rewrite(graph, node, m))
            count += 1
        else:
            new_nodes.append(node)
    graph.nodes = new_nodes
    return count


def qualifies(node: Node, max_binding_bytes: int, m: int = 2) -> bool:
    """Whether ``node`` can run as F(m x m, 3x3); F(4x4, 3x3) takes no quantized convolution (its
    transforms' sixths and 24ths would round the integer sums)."""
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    a = node.attrs
    epilogue = (node.inputs[2:] + [None] * 3)[:3]
    th, tw = tiles_of(*out.shape[2:], m)
    transformed = (m + 2) ** 2 * out.shape[0] * th * tw * max(x.shape[1], out.shape[1]) * 4  # bytes, in f32
    return (transformed <= max_binding_bytes and w.is_constant and w.shape[2:] == (3, 3)
            and (not a.get("exact") or (m == 2 and exact_in_f32(node))) and a.get("x_zero") is None
            and tuple(a["strides"]) == (1, 1) and tuple(a["dilations"]) == (1, 1) and a["groups"] == 1
            and x.shape[1] % 4 == 0 and w.shape[0] % 4 == 0
            and all(t is None or t.is_constant for t in (epilogue[0], epilogue[2]))
            # finite weights whose transform stays finite in f32 (inf - inf in it would be NaN
            # where the direct convolution gives an infinity)
            and float(np.abs(w.value).max(initial=0)) < 1e37)  # (NaN: false)


def exact_in_f32(node: Node) -> bool:
    """Whether a quantized convolution's integer sums (``exact``: weights ``w_q - w_zero``, inputs
    ``x_q - x_zero`` within attr ``x_range``; ``passes/integer_conv.py``) come out of Winograd exactly
    as the direct kernels give them: the transformed inputs are integers (B has entries 0 and +-1),
    the transformed filter multiples of 1/4 (G's halves; the products read it times 4, integers),
    so every partial sum of the 16 products (4 M) is exact in f32 while 4 * |sum| < 2^24, which this
    bounds from the weights and the inputs' range; the output transform then runs on i32
    (``winograd_output.wgsl``, acc4) and its result, the convolution's sum, is exact where it is
    below 2^24 as the direct kernels' sums are."""
    low, high = node.attrs.get("x_range", (None, None))
    w = node.inputs[1].value
    if low is None or np.any(w != np.round(w)):
        return False
    taps = np.einsum("pa,qb->pqab", B_T, B_T).reshape(16, 16)  # v[position] = taps @ d (the 4x4 patch)
    up, down = np.clip(taps, 0, None), np.clip(taps, None, 0)
    most = np.maximum((up * high + down * low).sum(axis=1), -(up * low + down * high).sum(axis=1))  # max |v|
    quarters = np.abs(4 * transform_filter(w)).sum(axis=1)  # [16, Cout]: sum over Cin of |4u|
    direct = max(abs(low), abs(high)) * np.abs(w).sum(axis=(1, 2, 3))
    return float((most[:, None] * quarters).max()) < 2**24 and float(direct.max(initial=0)) < 2**24


def _filter_u(w: np.ndarray, side: int) -> np.ndarray:
    return transform_filter(w, side).astype(np.float32)


def _filter_4u(w: np.ndarray, side: int) -> np.ndarray:
    """An exact (quantized) convolution's transformed filter times 4: G's halves made integers, so
    that the products read it as integer words (``nn._weight_words``: int16 pairs, half the loads of
    f32 on a software adapter) and their sums are the integers 4 M."""
    return (4 * transform_filter(w, side)).astype(np.float32)


def _rewrite(graph: Graph, node: Node, side: int) -> list[Node]:
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    n, c = x.shape[:2]
    _, o, oh, ow = out.shape
    th, tw = tiles_of(oh, ow, side)
    positions = (side + 2) ** 2
    pads = tuple(node.attrs["pads"][:2])
    v = Operand(fresh_name(f"{node.name}/winograd_v"), (positions, n * th * tw, c), x.dtype)
    exact = bool(node.attrs.get("exact"))  # (integer sums: the products stay in f32, see exact_in_f32)
    u_value = graph.derive(_filter_4u if exact else _filter_u, w.value, side)  # (exact: 4 U, integers)
    u = Operand(fresh_name(f"{node.name}/winograd_u"), u_value.shape, w.dtype, value=u_value)
    m = Operand(fresh_name(f"{node.name}/winograd_m"), (positions, n * th * tw, o), x.dtype)
    first = Node("winograd_input", [x], [v], {"pads": pads, "tiles": (th, tw), "m": side}, name=f"{node.name}/input")
    product = Node("matmul", [v, u], [m], {"exact": True} if exact else {}, name=f"{node.name}/products")
    attrs = {"out_shape": out.shape, "tiles": (th, tw), "m": side, "activation": node.attrs.get("activation"),
             "residual_after": node.attrs.get("residual_after", False),
             "affine_after": node.attrs.get("affine_after"), "exact": exact}
    if exact:
        attrs["products_scale"] = 4  # (the products are 4 M)
    # a quantized convolution's fused requantize, or its run-time factor's scale and bias (the factor
    # itself the seventh input: passes.fuse_dequantize_sum)
    for key in ("requantize", "kernel_choice", "factor_scale", "offset_bias"):
        if node.attrs.get(key) is not None:
            attrs[key] = node.attrs[key]
    if "onnx_op" in node.attrs:  # errors name the model's op
        attrs["onnx_op"] = node.attrs["onnx_op"]
    last = Node("winograd_output", [m, None] + list(node.inputs[2:]), [out], attrs, name=node.name)
    v.producer, m.producer, out.producer = first, product, last
    return [first, product, last]
