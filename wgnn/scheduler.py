"""The compile core: from an optimized graph to a backend's executable, once for every backend.

``compile_graph`` takes a graph that the passes (``wgnn.passes``) have already rewritten and:

1. gives every graph output storage of its own (a copy where it would alias an input or constant);
2. lets the backend make its device-dependent rewrites (``Backend.prepare``: the compute backend
   asks its kernel policy about Winograd and wide-matmul splitting, then fuses what is left of
   element-wise chains);
3. assigns physical layouts (``wgnn.layout``), folding a relayout into the pad, slice or
   element-wise op before it;
4. resolves each tensor's storage type once (``storage_types``: f32, f16 or i32);
5. walks the nodes in order, handing each to the backend's lowering, and measures every stored
   tensor's lifetime (the step that writes it, the last step that reads it);
6. hands the lifetimes to the backend (``Backend.build``), which plans storage (``wgnn.memory``
   for the compute arena, texture pooling for the texture path) and creates every GPU object.

Views (reshape, transpose; for the texture path the reshapes that keep every texel in place) have
no storage: they alias their source, whose lifetime they extend. A backend may also write a tensor
inside another one (the compute backend writes a concat's parts where they lie in its result): it
records that in ``roots`` while lowering the producer, and the tensor's lifetime becomes its root's.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from . import backends, ops
from .errors import GraphError
from .graph import STORAGE, Graph, Node, Operand, is_integer
from .layout import assign_layouts, fold_relayouts
from .ops.activation import WIDE_KINDS
from .runtime import Device


def storage_root(operand: Operand) -> Operand:
    """Follow views back to the tensor that owns the bytes."""
    while operand.producer is not None and ops.has_trait(operand.producer, "view"):
        operand = operand.producer.inputs[0]
    return operand


def give_outputs_own_storage(graph: Graph) -> None:
    """A graph output must own a buffer: copy where it is a view of an input, a constant or another output."""
    claimed: set[int] = set()
    for name, out in list(graph.outputs.items()):
        root = storage_root(out)
        if root.is_input or root.is_constant or id(root) in claimed:
            copy = Operand(out.name, out.shape, out.dtype)
            out.name = out.name + "_view"
            node = Node("identity", [out], [copy], name=copy.name)
            copy.producer = node
            graph.nodes.append(node)
            graph.outputs[name] = copy
            root = copy
        claimed.add(id(root))


def _keeps_f32(node: Node) -> bool:
    """Ops whose results can exceed f16's range (65504) from ordinary inputs: stored in f32 in fp16
    mode, so that a square of 300, a sum of 1e5 ones or exp(12) is not an infinity; also a cast of
    32- or 64-bit integers to a float (MatMulInteger's and ConvInteger's int32 sums, dequantized by
    the products after the cast: ddddocr's quantized recognizer overflowed there)."""
    if node.op == "cast" and node.inputs[0].dtype in ("int32", "int64", "uint32", "uint64"):
        return True
    act = node.attrs.get("activation")
    if (act is not None and act.kind in WIDE_KINDS) or (node.attrs.get("exact") and not node.attrs.get("requantize")
                                                         and node.attrs.get("factor_scale") is None):
        return True  # (exact: a quantized conv's integer sums, which f16 would round; not once requantized
        # or scaled, passes.fuse_product_factor)
    if node.op == "binary":
        return _grows(node.attrs["kind"], node.inputs[0] is node.inputs[1])
    if node.op == "fused_elementwise":  # as its last step would be alone
        kind, args, act = node.attrs["steps"][-1]
        return (act is not None and act[0] in WIDE_KINDS) or _grows(kind, len(args) == 2 and args[0] == args[1])
    return ops.has_trait(node, "wide_output")


def _grows(kind: str, same: bool) -> bool:
    """Whether a binary ``kind`` (of one operand twice: ``same``) can outgrow f16 from ordinary
    inputs: a power, a square."""
    return kind == "pow" or (kind == "mul" and same)


def _dequantized(node: Node) -> bool:
    """Whether ``node`` writes dequantized values: a dequantize, or a requantize (standalone or fused
    into a convolution's epilogue) that writes ``(q - zero) * scale``."""
    if node.op == "dequantize_linear":
        return not is_integer(node.outputs[0].dtype)
    if node.op == "requantize":
        return node.attrs.get("scale") is not None
    fused = node.attrs.get("requantize")
    return fused is not None and fused.scale is not None and fused.quantize is None


# Ops whose results are values of their first input (moved, not computed): a dequantized value
# moved by one is still one (the compile's own relayouts included), and keeps f32 as it does.
MOVES = frozenset(("reshape", "transpose", "identity", "depth_to_space", "relayout", "concat", "slice", "pad",
                   "gather", "gather_elements", "gather_nd"))


def _moves_dequantized(node: Node, dequantized: set[int]) -> bool:
    """Whether ``node`` moves dequantized values only (``dequantized``: ids of tensors holding
    them): a data movement of one (a concat of such parts alone), or a max pool of one."""
    if node.op == "concat":
        return all(id(x) in dequantized for x in node.inputs)
    moves = node.op in MOVES or (node.op == "pool2d" and node.attrs.get("mode") == "max")
    return moves and bool(node.inputs) and id(node.inputs[0]) in dequantized


def _moved_from(operand: Operand) -> list[Operand]:
    """``operand`` and the tensors whose values it holds moved (``MOVES``: through a relayout, a
    transpose, a concat's parts, ...), back to where they were computed."""
    found, todo = [], [operand]
    while todo:
        x = todo.pop()
        found.append(x)
        node = x.producer
        if node is not None and node.op in MOVES and node.outputs[0] is x:
            todo += [i for i in (node.inputs if node.op == "concat" else node.inputs[:1])
                     if i is not None and i.producer is not None and not is_integer(i.dtype)]
    return found


def storage_types(graph: Graph, precision: str) -> dict[int, str]:
    """The element type each tensor is stored in (keyed by id of the tensor that owns the bytes).

    Graph inputs and outputs keep their own dtype (the host sees no conversion); in fp16 mode every
    other floating-point tensor is f16, except the outputs of ``_keeps_f32`` ops, softmax and
    quantize inputs and dequantized values (each also where moved: ``MOVES``, a relayout the
    compile put between, a transpose, a concat's parts). Integer and bool tensors are i32
    (``graph.STORAGE``).
    """
    inner = "f16" if precision == "fp16" else "f32"
    types: dict[int, str] = {}
    for node in graph.nodes:
        for out in node.outputs:
            if is_integer(out.dtype):
                types[id(out)] = "i32"
            else:
                types[id(out)] = "f32" if inner == "f16" and _keeps_f32(node) else inner
    if inner == "f16":
        # Softmax is shift-invariant: what matters is its input's absolute error, which f16 makes
        # large for large logits (a spacing of 8 near 1e4). Its input is kept in f32.
        dequantized: set[int] = set()
        for node in graph.nodes:
            if node.op == "softmax" and node.inputs[0].producer is not None:
                for x in _moved_from(node.inputs[0]):  # (and where its values were computed, if moved)
                    types[id(storage_root(x))] = "f32"
                cut = node.inputs[0].producer
                if (cut.op == "slice" and not any(cut.attrs["starts"]) and cut.inputs[0].producer is not None
                        and cut.inputs[0].shape[:-1] == cut.outputs[0].shape[:-1]):
                    # (the leading columns of a product padded to whole vec4s: that product's result,
                    # which the softmax then reads in place, as it would have read the unpadded one)
                    types[id(storage_root(cut.inputs[0]))] = "f32"
            # Quantizing rounds to a step: an f16 input would move values at rounding ties. A
            # bitcast of a float32 tensor reads all its bits: f16 would change them.
            if node.op in ("quantize_linear", "dynamic_quantize") and node.inputs[0].producer is not None or (
                    node.op == "bitcast" and node.inputs[0].dtype == "float32" and node.inputs[0].producer is not None):
                for x in _moved_from(node.inputs[0]):
                    types[id(storage_root(x))] = "f32"
            # A dequantized value, (q - zero) * scale, is exact in f32; f16's 11 bits would round it
            # before the adds and pools between quantized layers (and so their quantize).
            # (And moved: a relayout of one before an average pool, a concat of them.)
            if _dequantized(node) or _moves_dequantized(node, dequantized):
                dequantized.add(id(node.outputs[0]))
                types[id(storage_root(node.outputs[0]))] = "f32"
    for operand in list(graph.inputs.values()) + [storage_root(o) for o in graph.outputs.values()]:
        types[id(operand)] = STORAGE[operand.dtype]
    return types


@dataclass(frozen=True)
class Lifetime:
    """A stored tensor (not a graph input or output) and the steps it lives between."""

    operand: Operand
    first: int
    last: int


@dataclass
class CompileState:
    """What the core knows of a graph on its way to a backend; the backend's ``build`` reads it."""

    graph: Graph
    device: Device
    precision: str
    opset: int | None
    policy: object | None  # the backend's kernel policy, if it has one
    perms: dict[int, tuple[int, ...]] = field(default_factory=dict)
    # id(storage root) -> f32 | f16 | i32 (| i8x4: the compute backend's packed quantized results)
    storage: dict[int, str] = field(default_factory=dict)
    roots: dict[int, Operand] = field(default_factory=dict)  # id(alias) -> the operand owning its bytes
    # id(alias) -> where its bytes start inside its root's, where not at the first (a run of the
    # root's elements: a contiguous slice, a concat's part); the backend binds it from there
    placed: dict[int, int] = field(default_factory=dict)
    # ids of tensors placed inside another that their own node still writes (a concat's part)
    written: set[int] = field(default_factory=set)
    lifetimes: list[Lifetime] = field(default_factory=list)
    rewrites: Counter = field(default_factory=Counter)
    # the GPU buffers the backend shares with earlier compiles (one session's plans, a plan per input
    # shape: the weights it uploads, the intermediates' arena); None: this compile's own
    shared: object | None = None
    defer_pipelines: bool = False  # (``compile_graph``'s)

    def root(self, operand: Operand) -> Operand:
        return self.roots.get(id(operand), operand)

    @property
    def output_roots(self) -> dict[int, str]:
        """id(storage root) -> name of every graph output."""
        return {id(self.root(o)): n for n, o in self.graph.outputs.items()}


def compile_graph(graph: Graph, device: Device, *, backend: str = "compute", precision: str = "fp32",
                  opset: int | None = None, kernels: dict | None = None, optimize: bool = True,
                  shared: object | None = None, defer_pipelines: bool = False):
    """Compile ``graph`` (which this modifies in place) for ``backend`` on ``device``.

    Arguments:
        graph: an optimized graph (``wgnn.passes.optimize``).
        device: the ``wgnn.Device`` to run on.
        backend: "compute" or "texture" (``wgnn.backends.BACKENDS``).
        precision: "fp32" or "fp16" (already resolved against the adapter's features).
        opset: the model's ONNX opset, for error messages.
        kernels: kernel-policy overrides (compute backend): {op or node name: variant}.
        optimize: whether the backend's own last fusions run too (``Backend.prepare``; a session
            made with ``optimize=False`` skips them with the passes).
        shared: the backend's buffers to share with other compiles (compute:
            ``backends.compute.context.SharedBuffers``, one per session, shared by its plans: the
            weights and the intermediates' arena).
        defer_pipelines: (compute backend) make the pipelines at the executable's first run, not
            now: for a plan that may never run (a session's plan at the placeholder sizes of its
            symbolic dimensions, which its first run at other sizes replaces).

    Returns the backend's executable; its ``compile_seconds`` says how long this took.
    """
    start = time.perf_counter()
    impl = backends.get(backend)
    policy = impl.policy(device, kernels, precision)
    give_outputs_own_storage(graph)
    state = CompileState(graph, device, precision, opset, policy, shared=shared, defer_pipelines=defer_pipelines)
    state.rewrites = impl.prepare(graph, policy, optimize=optimize)
    state.perms = assign_layouts(graph, ops.layout_requirements, impl.same_layout)
    fold_relayouts(graph, state.perms, impl.writes_any_order)
    state.storage = storage_types(graph, precision)
    if "f16" in state.storage.values() and "shader-f16" not in device.features:
        raise GraphError(f"float16 tensors need the adapter feature shader-f16, which {device.name} lacks")
    for node in graph.nodes:
        if impl.aliases(node, state.perms):
            state.roots[id(node.outputs[0])] = state.root(node.inputs[0])
    ctx = impl.context(state)

    # Lower node by node; remember which step each stored tensor is written and last read at.
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    owners: dict[int, Operand] = {}
    for step, node in enumerate(graph.nodes):
        for operand in node.inputs:
            if operand is not None and not operand.is_constant:
                last[id(state.root(operand))] = step
        if id(node.outputs[0]) in state.roots and id(node.outputs[0]) not in state.written:
            continue  # (a view: no kernel)
        impl.lower(node, ctx)
        for out in node.outputs:  # (written where the backend put it: a slice of a later tensor, say)
            root = state.root(out)
            owners[id(root)] = root
            first.setdefault(id(root), step)  # (steps only grow: an earlier part's step stays first)
            last[id(root)] = step
    boundary = {id(o) for o in graph.inputs.values()} | set(state.output_roots)
    state.lifetimes = [Lifetime(owners[key], first[key], max(last[key], first[key]))
                       for key in first if key not in boundary]
    exe = impl.build(state, ctx)
    exe.compile_seconds = time.perf_counter() - start
    exe.rewrites = +state.rewrites
    return exe
