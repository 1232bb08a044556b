"""Split a matrix product whose constant weight matrix is larger than one storage binding may be.

WebGPU binds a buffer range of at most ``max-storage-buffer-binding-size`` bytes (128 MiB on
lavapipe and many GPUs). The first fully connected layer of VGG or AlexNet has a larger weight
matrix (25088 x 4096 floats is 392 MiB), so its columns are split into slices that each fit (whole
panels of 32 columns, as the register-tiled kernels store them, padded: nn._panels): one
matmul per slice (same input, its columns of the weights and bias, the same activation), and a
concat along the last axis that writes the original output. Device-dependent, so it runs at
compile time, not among the device-independent passes. A product whose weights stay packed
(weight-only quantization, ``ops.quant.BlockWeights``) is split only where the packed words do not
fit: a 4-bit matrix binds an eighth of its f32 bytes.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from ..ops.quant import block_weights


def split_wide_matmuls(graph: Graph, max_binding_bytes: int) -> int:
    """Split every such matmul in ``graph``; returns how many were split."""
    split = 0
    new_nodes: list[Node] = []
    for node in graph.nodes:
        pieces = _split(node, max_binding_bytes) if node.op == "matmul" else None
        if pieces is None:
            new_nodes.append(node)
            continue
        new_nodes.extend(pieces)
        split += 1
    graph.nodes = new_nodes
    return split


def _split(node: Node, max_bytes: int) -> list[Node] | None:
    a, b = node.inputs[0], node.inputs[1]
    extra = node.inputs[2:] + [None] * (6 - len(node.inputs))
    bias, residual, slope, factor = extra[:4]
    # (columns in whole panels of 32, as the register-tiled kernels store them: nn._panels)
    if not b.is_constant or b.rank != 2 or b.shape[0] * -(-b.shape[1] // 32) * 32 * b.value.itemsize <= max_bytes:
        return None
    packed = block_weights(node)
    if packed is not None and max(packed.words.nbytes, 2 * packed.scales.nbytes) <= max_bytes:
        return None  # the product reads its weights packed (matmul_nbits), and those fit
    if residual is not None or (slope is not None and slope.size > 1) or (bias is not None and not bias.is_constant):
        return None  # left whole: the scheduler's size check names the node
    k, cols = b.shape
    itemsize = b.value.dtype.itemsize
    fit = max_bytes // (k * itemsize)  # columns per slice: whole panels of 32 (else of 4, vec4s)
    per_slice = fit // 32 * 32 if fit >= 32 else max(4, fit // 4 * 4)
    out = node.outputs[0]
    parts: list[Operand] = []
    nodes: list[Node] = []
    for start in range(0, cols, per_slice):
        stop = min(cols, start + per_slice)
        tag = f"{node.name}/cols{start}"
        w = np.ascontiguousarray(b.value[:, start:stop])
        inputs = [a, Operand(fresh_name(tag + "_w"), w.shape, b.dtype, value=w)]
        if bias is not None:
            columns = np.ascontiguousarray(np.broadcast_to(bias.value.reshape(-1), (cols,))[start:stop])
            inputs.append(Operand(fresh_name(tag + "_bias"), columns.shape, bias.dtype, value=columns))
        if slope is not None or factor is not None:  # (each slice's epilogue as the whole product's)
            inputs += [None] * (4 - len(inputs)) + [slope] + ([factor] if factor is not None else [])
        part = Operand(fresh_name(tag), out.shape[:-1] + (stop - start,), out.dtype)
        piece = Node("matmul", inputs, [part], dict(node.attrs), name=tag)
        part.producer = piece
        parts.append(part)
        nodes.append(piece)
    concat = Node("concat", parts, [out], {"axis": out.rank - 1}, name=node.name)
    out.producer = concat
    return nodes + [concat]
