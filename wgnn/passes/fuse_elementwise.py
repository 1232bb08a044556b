"""Run chains of float element-wise ops as one pass: one ``fused_elementwise`` node per chain.

What other rewrites leave of element-wise arithmetic (a normalization written out op by op, a
detector's box decoding, a gate's scale and shift) is one dispatch per op, each reading its
operands from memory and writing its result back. A chain (any DAG) of them whose inner results
nothing else reads becomes one node: the compute kernel (``fused.wgsl``) reads each outside
operand once per output element, keeps the inner results in registers and writes the last one.

Element-wise ops broadcast as numpy does, and broadcasting composes: evaluating the chain at each
output element with every outside operand broadcast straight to the output's shape gives what
the ops gave one after another. So a chain may mix shapes: a normalization's statistics over one
axis, then scaled by per-row weights over the whole tensor (an inner result of the smaller shape
is then computed again for each output element it reaches: a few operations each).

Members: ``binary`` (the float arithmetic kinds of ``FUSED_BINARY``), standalone ``activation``
and ``muladd`` without a run-time factor, all float32 with any fused activation. An inner result
must be read by members alone and be no graph output; the last op's result is the node's. One
that members of several chains read, made from tensors from outside any chain (a detector's corner
coordinates, which its box centre and size both read), is computed again in each: its dispatch and
its trip through memory saved, for reads of its operands instead. Numbers (constants of one
element) go into the kernel's uniforms, not its bindings, so one pipeline serves every chain of the
same form. Limits keep a chain within a kernel's bindings: at most ``MAX_INPUTS`` tensors from
outside, ``MAX_CONSTANTS`` numbers, ``MAX_STEPS`` ops.

It runs last of the compute backend's rewrites (``ComputeBackend.prepare``, after the kernel
policy's): every fusion into a product's epilogue or another kernel has taken its ops by then.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand
from ..ops.elementwise import FUSED_BINARY

MAX_INPUTS = 6  # the kernel's storage bindings: these and the output (WebGPU's default allows 8)
MAX_CONSTANTS = 16  # numbers in the uniform (four vec4s)
MAX_STEPS = 16


def _member(node: Node) -> bool:
    """Whether ``node`` is an element-wise op a fused program can hold."""
    if node.op == "binary":
        ok = node.attrs["kind"] in FUSED_BINARY
    elif node.op == "activation":
        ok = len(node.inputs) == 1 and node.attrs["activation"].kind != "prelu"
    elif node.op == "muladd":
        ok = len(node.inputs) == 3
    else:
        return False
    return ok and all(t is not None and t.dtype == "float32" for t in node.inputs + node.outputs)


def _number(t: Operand) -> bool:
    return t.is_constant and t.size == 1


class _Chain:
    """A growing group of members: the last one (``root``) and those it reads, in graph order."""

    def __init__(self, root: Node):
        self.nodes = [root]
        self.ids = {id(root)}

    def outside(self, extra: Node | None = None) -> tuple[list[Operand], int, int]:
        """(the tensors read from outside, the numbers, the steps) with ``extra`` added."""
        nodes = self.nodes + ([extra] if extra is not None else [])
        made = {id(n.outputs[0]) for n in nodes}
        tensors: dict[int, Operand] = {}
        numbers = steps = 0
        for n in nodes:
            for t in n.inputs:
                if id(t) in made:
                    continue
                if _number(t):
                    numbers += 1
                else:
                    tensors.setdefault(id(t), t)
            scaled = n.op == "muladd" and n.attrs.get("scale") is not None  # (its scale: a number, a step)
            numbers += (2 if n.attrs.get("activation") is not None else 0) + scaled
            steps += 1 + scaled
        return list(tensors.values()), numbers, steps

    def fits(self, extra: Node) -> bool:
        tensors, numbers, steps = self.outside(extra)
        return len(tensors) <= MAX_INPUTS and numbers <= MAX_CONSTANTS and steps <= MAX_STEPS


def _program(chain: _Chain, order: dict[int, int]) -> tuple[list[Operand], list, list[float]]:
    """(inputs, steps, constants) of the fused node that runs ``chain``."""
    nodes = sorted(chain.nodes, key=lambda n: order[id(n)])
    inputs, _, _ = chain.outside()
    slot = {id(t): k for k, t in enumerate(inputs)}
    constants: list[float] = []
    steps: list[tuple] = []
    result: dict[int, int] = {}

    def number(value) -> tuple[str, int]:
        constants.append(float(np.float32(value)))
        return ("constant", len(constants) - 1)

    def arg(t: Operand):
        if id(t) in result:
            return -(result[id(t)] + 1)
        if _number(t):
            return number(np.asarray(t.value).reshape(()))
        return slot[id(t)]

    for n in nodes:
        act = n.attrs.get("activation")
        if act is not None:  # its parameters as two numbers: the kernel reads them from the uniform
            act = (act.kind, number(act.alpha), number(act.beta))
        if n.op == "binary":
            steps.append((n.attrs["kind"], (arg(n.inputs[0]), arg(n.inputs[1])), act))
        elif n.op == "activation":
            steps.append(("activation", (arg(n.inputs[0]),), act))
        else:
            a, b, c = (arg(t) for t in n.inputs)
            if n.attrs.get("scale") is not None:  # a * (b * scale) + c, as the muladd kernel computes it
                steps.append(("mul", (b, number(n.attrs["scale"])), None))
                b = -len(steps)
            steps.append(("muladd", (a, b, c), act))
        result[id(n.outputs[0])] = len(steps) - 1
    return inputs, steps, constants


def fuse_elementwise(graph: Graph) -> int:
    users = graph.consumers()
    outputs = graph.output_ids()
    order = {id(n): k for k, n in enumerate(graph.nodes)}
    taken: set[int] = set()  # members of one chain alone
    shared: dict[int, Node] = {}  # members computed again in each chain that reads them

    def reads_outside(p: Node) -> bool:  # an op of tensors from outside any chain: cheap to compute again
        return all(t.producer is None or not _member(t.producer) for t in p.inputs)

    chains: list[_Chain] = []
    for root in reversed(graph.nodes):
        if id(root) in taken or id(root) in shared or not _member(root):
            continue
        chain = _Chain(root)
        grown = True
        while grown:  # add members whose results only the chain reads, until none is left to add
            grown = False
            for n in list(chain.nodes):
                for t in n.inputs:
                    p = t.producer
                    if (p is None or id(p) in chain.ids or id(p) in taken or not _member(p) or id(t) in outputs
                            or not chain.fits(p)):
                        continue
                    readers = users.get(id(t), [])
                    if any(id(u) not in chain.ids for u in readers):
                        # read by other members too: computed again here where it reads only outside tensors
                        if not (reads_outside(p) and all(_member(u) for u in readers)):
                            continue
                        shared[id(p)] = p
                    chain.nodes.append(p)
                    chain.ids.add(id(p))
                    grown = True
        if len(chain.nodes) > 1:
            taken |= chain.ids - set(shared)
            chains.append(chain)
    for chain in chains:
        root = chain.nodes[0]
        inputs, steps, constants = _program(chain, order)
        fused = Node("fused_elementwise", inputs, list(root.outputs), {"steps": tuple(steps), "constants": constants},
                     name=root.name)
        for out in fused.outputs:
            out.producer = fused
        graph.nodes[order[id(root)]] = fused
    if chains:
        gone = {id(n) for c in chains for n in c.nodes[1:]} - set(shared)
        graph.nodes = [n for n in graph.nodes if id(n) not in gone]
        still_read = {id(t) for n in graph.nodes for t in n.inputs if t is not None}
        graph.nodes = [n for n in graph.nodes if id(n) not in shared or id(n.outputs[0]) in still_read]
    return len(chains)
