"""BatchNormalization: fold into the convolution before it, else turn into a multiply-add.

conv(x, W, b) then BN(mean, var, gamma, beta, eps) is conv(x, W * k, (b - mean) * k + beta) with
k = gamma / sqrt(var + eps) per output channel: one dispatch instead of two, and no extra pass over
the activations. A batch norm that follows anything else becomes x * k + (beta - mean * k).
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name


def _single_reader(graph: Graph, operand: Operand, users) -> bool:
    return len(users.get(id(operand), [])) == 1 and id(operand) not in graph.output_ids()


def _factor(var: np.ndarray, gamma: np.ndarray, epsilon: float) -> np.ndarray:
    """A batch norm's per-channel scale, gamma / sqrt(var + epsilon), in float64 (NaN where var +
    epsilon is negative, as ONNX Runtime computes it, without numpy's warning)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)


def _scaled(w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Convolution weights scaled per output channel by ``k`` (0 * inf: NaN, without a warning)."""
    with np.errstate(invalid="ignore"):
        return (w * k.reshape(-1, 1, 1, 1)).astype(np.float32)  # (w's values widened as they are read)


def fold_batchnorm(graph: Graph, *, into_conv: bool = True) -> int:
    users = graph.consumers()
    rewritten = 0
    new_nodes: list[Node] = []
    for node in graph.nodes:
        if node.op != "batch_normalization" or not all(i.is_constant for i in node.inputs[1:]):
            new_nodes.append(node)
            continue
        x = node.inputs[0]
        mean, beta = (node.inputs[k].value.astype(np.float64) for k in (1, 4))
        # (derived, so that the weights scaled by it are found again by a session's later plans)
        k = graph.derive(_factor, node.inputs[2].value, node.inputs[3].value, node.attrs["epsilon"])
        with np.errstate(invalid="ignore"):  # (mean * k: 0 * inf where var + epsilon is 0, NaN as ORT gives)
            shift = beta - mean * k
        conv = x.producer
        if (into_conv and conv is not None and conv.op == "conv2d" and conv.attrs.get("activation") is None
                and len(conv.inputs) <= 3 and conv.inputs[1].is_constant and _single_reader(graph, x, users)):
            w = conv.inputs[1].value
            b = conv.inputs[2].value.astype(np.float64) if len(conv.inputs) > 2 and conv.inputs[2] is not None \
                else np.zeros(w.shape[0])
            w_new = Operand(conv.inputs[1].name + "_bn", w.shape, "float32",  # (once for a session's plans)
                            value=graph.derive(_scaled, w, k))
            with np.errstate(invalid="ignore"):
                b_new = Operand(fresh_name(conv.name + "_bias"), (w.shape[0],), "float32",
                                value=(b * k + shift).astype(np.float32))
            conv.inputs = [conv.inputs[0], w_new, b_new]
            graph.replace_uses(node.outputs[0], x)
            # the batch norm's readers now read the convolution's result (a second batch norm after
            # it folds only if nothing else reads this one's result too)
            users[id(x)] = users.pop(id(node.outputs[0]), [])
        else:
            shape = (-1,) + (1,) * (x.rank - 2)
            scale = Operand(fresh_name(node.name + "_scale"), (len(k),) + (1,) * (x.rank - 2), "float32",
                            value=k.reshape(shape).astype(np.float32))
            offset = Operand(fresh_name(node.name + "_shift"), scale.shape, "float32",
                             value=shift.reshape(shape).astype(np.float32))
            scaled = Operand(fresh_name(node.name + "_scaled"), x.shape, x.dtype)
            mul = Node("binary", [x, scale], [scaled], {"kind": "mul", "activation": None}, name=scaled.name)
            scaled.producer = mul
            out = node.outputs[0]
            add = Node("binary", [scaled, offset], [out], {"kind": "add", "activation": None}, name=node.name)
            out.producer = add
            new_nodes += [mul, add]
        rewritten += 1
    graph.nodes = new_nodes
    return rewritten


def decompose_batchnorm(graph: Graph) -> int:
    """Every batch norm as a multiply-add (what runs when optimization is off)."""
    return fold_batchnorm(graph, into_conv=False)
