"""From a planned graph to a list of GPU dispatches, and running it.

``compile_graph`` lowers every node (in topological order) to kernel calls through a
``LoweringContext``, plans the intermediates' memory (``wgnn.memory``), and creates, once, every
pipeline, bind group and the single uniform buffer that holds all dispatches' parameters.
``Executable.run`` then only writes the inputs, encodes all dispatches into one compute pass,
copies the outputs into one read-back buffer, submits once and maps once.

Storage: graph inputs and outputs get buffers of their own (so results can stay on the GPU);
weights live in one constant buffer; every other tensor is an offset in one arena buffer. A view
(reshape, transpose) has no storage: it aliases its source, whose lifetime it extends.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import ops, shaders
from .errors import GraphError, UnsupportedOperatorError
from .graph import STORAGE, Graph, Node, Operand, is_integer, storage_numpy, stored_nbytes, to_storage
from .layout import assign_layouts, fold_relayouts_into_pads
from .memory import Block, MemoryReport, Plan, plan_buffers
from .ops.activation import WIDE_KINDS
from .passes.split_wide_matmuls import split_wide_matmuls
from .passes.winograd import winograd_convs
from .runtime import Device, GPUTensor, wgpu

F16_MAX = 65504.0


@dataclass(frozen=True)
class Ref:
    """What a binding points at: a tensor, a slice of the constant buffer, or a placeholder."""

    kind: str  # "tensor" | "const" | "dummy"
    operand: Operand | None = None
    offset: int = 0
    nbytes: int = 0
    dtype: str | None = None  # the WGSL element type stored there: f32, f16, i32, u32 (None: any)


@dataclass
class KernelCall:
    node: Node
    kernel: str
    source: str
    params: dict
    bindings: list[Ref]
    workgroups: tuple[int, int]


def fits_f16(array: np.ndarray) -> bool:
    """True when every finite value survives conversion to f16 without becoming infinite."""
    return bool(np.all(np.abs(array[np.isfinite(array)]) <= F16_MAX))


class ConstantPool:
    """Packs weights (already in the layout their kernel wants) into one buffer's bytes."""

    def __init__(self, alignment: int):
        self.alignment = alignment
        self.chunks: list[bytes] = []
        self.size = 0
        self._seen: dict[bytes, int] = {}

    def add(self, array: np.ndarray, dtype: str) -> Ref:
        data = np.ascontiguousarray(array).tobytes()
        if len(data) % 16:
            data += b"\0" * (16 - len(data) % 16)  # vec4 arrays need whole vec4s
        offset = self._seen.get(data)
        if offset is None:
            offset = self._seen[data] = self.size
            self.chunks.append(data)
            pad = -len(data) % self.alignment
            self.chunks.append(b"\0" * pad)
            self.size += len(data) + pad
        return Ref("const", offset=offset, nbytes=len(data), dtype=dtype)

    def data(self) -> bytes:
        return b"".join(self.chunks) or b"\0" * 16


class LoweringContext:
    """What an op's ``lower`` sees: layouts, tensor and constant references, and ``dispatch``."""

    def __init__(self, device: Device, perms: dict[int, tuple[int, ...]], storage: dict[int, str], *,
                 precision: str = "fp32", opset: int | None = None):
        self.device = device
        self.perms = perms
        self.storage = storage  # id(storage root) -> WGSL element type
        self.constants = ConstantPool(device.storage_alignment)
        self.calls: list[KernelCall] = []
        self.elem = "f16" if precision == "fp16" else "f32"
        self.opset = opset

    def perm(self, operand: Operand) -> tuple[int, ...]:
        return self.perms[id(operand)]

    def tensor(self, operand: Operand) -> Ref:
        if operand.is_constant:
            if is_integer(operand.dtype):
                return self.constants.add(to_storage(operand.value, operand.dtype, f"constant {operand.name!r}"),
                                          "i32")
            return self.const(operand.value)
        return Ref("tensor", operand, dtype=self.storage[id(_storage_root(operand))])

    def const(self, array: np.ndarray) -> Ref:
        """Weights or other constant data. Floats are stored in the session's precision, except
        arrays with values beyond f16's range, which stay f32 rather than turn into infinities."""
        array = np.asarray(array)
        if array.dtype.kind in "iub":
            return self.constants.add(array.astype(np.uint32), "u32")
        if self.elem == "f16" and fits_f16(array):
            return self.constants.add(array.astype(np.float16), "f16")
        return self.constants.add(array.astype(np.float32), "f32")

    @staticmethod
    def dummy() -> Ref:
        return Ref("dummy")

    @staticmethod
    def error(node: Node, message: str) -> GraphError:
        return GraphError(f"{node.op} node {node.name!r}: {message}")

    def unsupported(self, node: Node, message: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(node.attrs.get("onnx_op", node.op), node.name, self.opset, message)

    def dispatch(self, kernel: str, *, node: Node, template: dict, params: dict, bindings: list[Ref],
                 threads: int | None = None, workgroups: int | None = None) -> None:
        """Record one dispatch of ``kernel``: ``threads`` invocations, or ``workgroups`` groups.

        Each binding's element type comes from what is bound there (see ``shaders``)."""
        if (threads if workgroups is None else workgroups) == 0:
            return  # a zero-sized output: nothing to compute
        names = shaders.binding_names(shaders.render(kernel, elem=self.elem, **template))[1:]
        types = {n: ref.dtype for n, ref in zip(names, bindings) if ref.dtype in ("f32", "f16", "i32")}
        source = shaders.render(kernel, elem=self.elem, types=types, **template)
        groups = workgroups if workgroups is not None else -(-max(threads or 0, 1) // shaders.WORKGROUP_SIZE)
        limit = int(self.device.limits.get("max-compute-workgroups-per-dimension", 65535))
        gx = min(groups, limit)
        gy = -(-groups // gx)
        if gy > limit:
            raise self.error(node, f"needs {groups} workgroups, more than this adapter can dispatch")
        self.calls.append(KernelCall(node, kernel, source, params, bindings, (gx, gy)))


def pack_params(fields: list[tuple[str, str]], values: dict, where: str) -> bytes:
    """Pack ``values`` into the uniform layout of the WGSL struct ``fields``."""
    out = bytearray()
    missing = [n for n, _ in fields if n not in values]
    extra = [n for n in values if n not in {f for f, _ in fields}]
    if missing or extra:
        raise GraphError(f"{where}: uniform fields missing {missing}, unexpected {extra}")
    for name, ftype in fields:
        value = values[name]
        if ftype in ("u32", "i32", "f32"):
            out += struct.pack("<" + {"u32": "I", "i32": "i", "f32": "f"}[ftype], value)
            continue
        # vec4<T> or array<vec4<T>, N>
        while len(out) % 16:
            out += b"\0"
        scalar = "u32" if "u32" in ftype else "i32" if "i32" in ftype else "f32"
        code = {"u32": "I", "i32": "i", "f32": "f"}[scalar]
        rows = value if ftype.startswith("array") else [value]
        for row in rows:
            out += struct.pack("<4" + code, *row)
    while len(out) % 16:
        out += b"\0"
    return bytes(out)


def _storage_root(operand: Operand) -> Operand:
    """Follow views back to the tensor that owns the bytes."""
    while operand.producer is not None and ops.has_trait(operand.producer, "view"):
        operand = operand.producer.inputs[0]
    return operand


def give_outputs_own_storage(graph: Graph) -> None:
    """A graph output must own a buffer: copy where it is a view of an input, a constant or another output."""
    claimed: set[int] = set()
    for name, out in list(graph.outputs.items()):
        root = _storage_root(out)
        if root.is_input or root.is_constant or id(root) in claimed:
            copy = Operand(out.name, out.shape, out.dtype)
            out.name = out.name + "_view"
            node = Node("identity", [out], [copy], name=copy.name)
            copy.producer = node
            graph.nodes.append(node)
            graph.outputs[name] = copy
            root = copy
        claimed.add(id(root))


@dataclass
class Dispatch:
    pipeline: object
    bind_group: object
    workgroups: tuple[int, int]
    node: Node
    kernel: str
    flops: int = 0  # arithmetic, as the profiler counts it (ops.cost)
    bytes_moved: int = 0  # bytes of every tensor and weight bound: read or written once each

    def encode(self, cpass) -> None:
        cpass.set_pipeline(self.pipeline)
        cpass.set_bind_group(0, self.bind_group)
        cpass.dispatch_workgroups(self.workgroups[0], self.workgroups[1], 1)


@dataclass
class Executable:
    """A compiled graph on one device: everything needed to run it is already on the GPU."""

    device: Device
    graph: Graph
    dispatches: list[Dispatch]
    plan: Plan
    input_buffers: dict[str, object]
    output_buffers: dict[str, object]
    readback: object
    readback_offsets: dict[str, int]
    pipelines: set[str]
    compile_seconds: float
    constant_bytes: int
    blocks: list[Block] = field(default_factory=list)

    @property
    def report(self) -> MemoryReport:
        return self.plan.report

    def run(self, feeds: dict[str, np.ndarray | GPUTensor], *, read_back: bool = True,
            timestamps=None) -> dict[str, np.ndarray]:
        """Run once. ``timestamps`` (a ``profiler.Timestamps``) makes each dispatch's GPU time measurable."""
        dev = self.device
        enc = dev.device.create_command_encoder()
        for name, value in feeds.items():
            buf = self.input_buffers[name]
            if not isinstance(value, GPUTensor):
                value = to_storage(value, self.graph.inputs[name].dtype, f"input {name!r}")
            if value.nbytes == 0:  # a tensor with a zero-sized dimension: nothing to copy
                continue
            if isinstance(value, GPUTensor):
                enc.copy_buffer_to_buffer(value.buffer, value.offset, buf, 0, -(-value.nbytes // 4) * 4)
            elif value.nbytes % 4:  # WebGPU copies whole 4-byte words (an odd count of float16s is not)
                dev.queue.write_buffer(buf, 0, value.tobytes() + b"\0" * (4 - value.nbytes % 4))
            else:
                dev.queue.write_buffer(buf, 0, value)
        if timestamps is not None:
            timestamps.encode(enc, self.dispatches)
        else:
            cpass = enc.begin_compute_pass()
            for d in self.dispatches:
                d.encode(cpass)
            cpass.end()
        if read_back:
            for name, out in self.graph.outputs.items():
                enc.copy_buffer_to_buffer(self.output_buffers[name], 0, self.readback,
                                          self.readback_offsets[name], _padded(stored_nbytes(out.shape, out.dtype), 4))
        if timestamps is not None:
            timestamps.resolve(enc)
        dev.queue.submit([enc.finish()])
        if not read_back:
            return {}
        raw = dev.read_mapped(self.readback)
        results = {}
        for name, out in self.graph.outputs.items():
            start = self.readback_offsets[name]
            stored = np.frombuffer(raw, storage_numpy(out.dtype), out.size, start)
            results[name] = stored.reshape(out.shape).astype(out.dtype)
        return results


def _padded(n: int, alignment: int) -> int:
    return max(alignment, -(-n // alignment) * alignment)


def _keeps_f32(node: Node) -> bool:
    """Ops whose results can exceed f16's range (65504) from ordinary inputs: stored in f32 in fp16
    mode, so that a square of 300, a sum of 1e5 ones or exp(12) is not an infinity."""
    act = node.attrs.get("activation")
    if act is not None and act.kind in WIDE_KINDS:
        return True
    if node.op == "binary":
        kind = node.attrs["kind"]
        return kind == "pow" or (kind == "mul" and node.inputs[0] is node.inputs[1])
    return "wide_output" in ops.get(node.op).traits


def storage_types(graph: Graph, precision: str) -> dict[int, str]:
    """The element type each tensor is stored in (keyed by id of the tensor that owns the bytes).

    Graph inputs and outputs keep their own dtype (the host sees no conversion); in fp16 mode every
    other floating-point tensor is f16, except the outputs of ``_keeps_f32`` ops. Integer and bool
    tensors are i32 (``graph.STORAGE``).
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
        for node in graph.nodes:
            if node.op == "softmax" and node.inputs[0].producer is not None:
                types[id(_storage_root(node.inputs[0]))] = "f32"
    for operand in list(graph.inputs.values()) + [_storage_root(o) for o in graph.outputs.values()]:
        types[id(operand)] = STORAGE[operand.dtype]
    return types


def compile_graph(graph: Graph, device: Device, *, precision: str = "fp32", opset: int | None = None) -> Executable:
    """Lower, plan and create every GPU object for ``graph`` (which this modifies in place)."""
    start = time.perf_counter()
    give_outputs_own_storage(graph)
    split_wide_matmuls(graph, int(device.limits["max-storage-buffer-binding-size"]))
    winograd_convs(graph, int(device.limits["max-storage-buffer-binding-size"]))
    perms = assign_layouts(graph)
    fold_relayouts_into_pads(graph)
    storage = storage_types(graph, precision)
    if "f16" in storage.values() and "shader-f16" not in device.features:
        raise GraphError(f"float16 tensors need the adapter feature shader-f16, which {device.name} lacks")
    ctx = LoweringContext(device, perms, storage, precision=precision, opset=opset)

    # Lower node by node; remember which step each tensor is written and read at.
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    roots: dict[int, Operand] = {}
    for step, node in enumerate(graph.nodes):
        opdef = ops.get(node.op)
        for operand in node.inputs:
            if operand is not None and not operand.is_constant:
                root = roots.setdefault(id(operand), _storage_root(operand))
                last[id(root)] = step
        if "view" in opdef.traits:
            roots[id(node.outputs[0])] = roots.get(id(node.inputs[0]), _storage_root(node.inputs[0]))
            continue
        if not hasattr(opdef, "lower"):
            raise UnsupportedOperatorError(node.attrs.get("onnx_op", node.op), node.name, opset,
                                           "it could not be evaluated at compile time")
        for out in node.outputs:
            roots[id(out)] = out
            first[id(out)] = step
            last.setdefault(id(out), step)
        opdef.lower(node, ctx)

    inputs = {id(o) for o in graph.inputs.values()}
    outputs = {id(_storage_root(o)) for o in graph.outputs.values()}
    def stored_bytes(root: Operand) -> int:
        return root.size * (2 if storage[id(root)] == "f16" else 4)

    blocks = [Block(key, _padded(stored_bytes(roots[key]), 16), first[key], max(last[key], first[key]))
              for key in first if key not in outputs and key not in inputs]
    plan = plan_buffers(blocks, alignment=device.storage_alignment,
                        max_binding_size=int(device.limits["max-storage-buffer-binding-size"]))
    if plan.arena_bytes > int(device.limits["max-buffer-size"]):
        raise GraphError(f"the model needs {plan.arena_bytes} bytes of intermediates, more than this "
                         f"adapter's max-buffer-size ({device.limits['max-buffer-size']})")

    arena = device.buffer(plan.arena_bytes, label="arena")
    constants = device.buffer(ctx.constants.size, data=ctx.constants.data(), label="constants")
    input_buffers = {name: device.buffer(stored_nbytes(o.shape, o.dtype), label=f"input {name}")
                     for name, o in graph.inputs.items()}
    output_buffers = {name: device.buffer(stored_nbytes(o.shape, o.dtype), label=f"output {name}")
                      for name, o in graph.outputs.items()}
    by_id = {id(o): input_buffers[n] for n, o in graph.inputs.items()}
    by_id.update({id(_storage_root(o)): output_buffers[n] for n, o in graph.outputs.items()})
    dummies = {"storage": device.buffer(16, label="unused rw"),
               "read-only-storage": device.buffer(16, label="unused ro")}

    def resolve(ref: Ref, kind: str):
        if ref.kind == "dummy":
            return dummies[kind], 0, 16
        if ref.kind == "const":
            return constants, ref.offset, ref.nbytes
        root = roots[id(ref.operand)] if id(ref.operand) in roots else _storage_root(ref.operand)
        size = _padded(stored_bytes(root), 16)
        if id(root) in by_id:
            return by_id[id(root)], 0, size
        return arena, plan.offsets[id(root)], size

    # All parameters in one uniform buffer, one aligned slot per dispatch.
    align = device.uniform_alignment
    uniform_bytes = bytearray()
    slots = []
    for call in ctx.calls:
        pipe = device.pipeline(call.source)
        data = pack_params(pipe.fields, call.params, f"{call.kernel} for node {call.node.name!r}")
        uniform_bytes += b"\0" * (-len(uniform_bytes) % align)
        slots.append((len(uniform_bytes), len(data)))
        uniform_bytes += data
    uniforms = device.buffer(len(uniform_bytes), usage=wgpu.BufferUsage.UNIFORM, data=bytes(uniform_bytes),
                             label="params")

    max_binding = int(device.limits["max-storage-buffer-binding-size"])
    calls_per_node = Counter(id(call.node) for call in ctx.calls)
    dispatches = []
    for call, (offset, size) in zip(ctx.calls, slots):
        pipe = device.pipeline(call.source)
        if len(call.bindings) != len(pipe.kinds) - 1:
            raise GraphError(f"{call.kernel} for node {call.node.name!r}: {len(call.bindings)} bindings "
                             f"given, the shader declares {len(pipe.kinds) - 1}")
        entries = [{"binding": 0, "resource": {"buffer": uniforms, "offset": offset, "size": size}}]
        used: dict[int, set[str]] = {}
        for index, (ref, kind) in enumerate(zip(call.bindings, pipe.kinds[1:]), start=1):
            buf, off, nbytes = resolve(ref, kind)
            if nbytes > max_binding:
                what = f"tensor {ref.operand.name!r}" if ref.operand is not None else "a weight tensor"
                raise GraphError(f"{call.node.op} node {call.node.name!r}: {what} needs {nbytes} bytes in one "
                                 f"binding, more than this adapter's max-storage-buffer-binding-size "
                                 f"({max_binding}); splitting such tensors is not implemented yet")
            used.setdefault(id(buf), set()).add(kind)
            entries.append({"binding": index, "resource": {"buffer": buf, "offset": off, "size": nbytes}})
        if any(len(kinds) > 1 for kinds in used.values()):
            raise GraphError(f"{call.kernel} for node {call.node.name!r} binds one buffer both read-only and "
                             "writable, which WebGPU forbids")
        bind_group = device.device.create_bind_group(layout=pipe.layout, entries=entries)
        moved = sum(stored_bytes(roots.get(id(r.operand), _storage_root(r.operand))) if r.kind == "tensor"
                    else r.nbytes if r.kind == "const" else 0 for r in call.bindings)
        dispatches.append(Dispatch(pipe.pipeline, bind_group, call.workgroups, call.node, call.kernel,
                                   flops=ops.cost(call.node, calls_per_node[id(call.node)]), bytes_moved=moved))

    readback_offsets, total = {}, 0
    for name, out in graph.outputs.items():
        readback_offsets[name] = total
        total += _padded(stored_nbytes(out.shape, out.dtype), 16)
    readback = device.buffer(total, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST,
                             label="readback")
    return Executable(
        device=device, graph=graph, dispatches=dispatches, plan=plan, input_buffers=input_buffers,
        output_buffers=output_buffers, readback=readback, readback_offsets=readback_offsets,
        pipelines={c.source for c in ctx.calls}, constant_bytes=ctx.constants.size,
        compile_seconds=time.perf_counter() - start, blocks=blocks,
    )
