"""Max pools of one tensor with windows that grow by the smallest one's less one (the SPP block of
YOLOv3, YOLOv4 and YOLOX: 5, 9 and 13, stride 1, each padded by its radius) as a chain of the
smallest: a max pool of window a after one of window b is one of window a + b - 1 (stride 1, each
padded by its radius: near an edge both windows are cut to the image, and their union is the
wide window cut to it; padding never holds a maximum). So the 9 is the 5 of the 5 and the 13 the
5 of the 9, as YOLOv5's SPPF computes them: an output reads 25 values instead of 81 or 169. The
results are the same values. ddddocr's YOLOX detector: 6.2 -> 2.5 ms of pooling on lavapipe.
"""

from __future__ import annotations

from ..graph import Graph, Node


def _same_max_pool(node: Node) -> int | None:
    """The window of a max pool of stride 1 over a square, odd window padded by its radius on every
    side (the output as large as the input), else None."""
    a = node.attrs
    if node.op != "pool2d" or a["mode"] != "max" or len(node.outputs) != 1:
        return None
    k = a["kernel"][0]
    r = (k - 1) // 2
    if (k % 2 == 0 or tuple(a["kernel"]) != (k, k) or tuple(a["strides"]) != (1, 1)
            or tuple(a["dilations"]) != (1, 1) or tuple(a["pads"]) != (r, r, r, r)):
        return None
    return k


def chain_spp_pools(graph: Graph) -> int:
    pools: dict[int, list[tuple[int, Node]]] = {}
    for node in graph.nodes:
        k = _same_max_pool(node)
        if k is not None and k > 1:
            pools.setdefault(id(node.inputs[0]), []).append((k, node))
    chained = 0
    for group in pools.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda kn: kn[0])
        k0, first = group[0]
        r0 = (k0 - 1) // 2
        made = {k0: first.outputs[0]}  # window -> the operand pooled with it, in the chain
        rewired = [first]
        for k, node in group[1:]:
            if k - (k0 - 1) not in made or k in made:
                continue
            node.inputs = [made[k - (k0 - 1)]]
            node.attrs = dict(node.attrs, kernel=(k0, k0), pads=(r0, r0, r0, r0))
            made[k] = node.outputs[0]
            rewired.append(node)
            chained += 1
        if len(rewired) > 1:  # in chain order, where the first of them was (all read only their input before)
            at = min(graph.nodes.index(n) for n in rewired)
            graph.nodes = [n for n in graph.nodes if all(n is not r for r in rewired)]
            graph.nodes[at:at] = rewired
    return chained
