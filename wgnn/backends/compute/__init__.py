"""The compute backend: WGSL compute shaders over storage buffers.

At load time every pipeline (cached per device by shader source), every bind group and one uniform
buffer holding all dispatches' parameters are created. A run writes the inputs, encodes all
dispatches into one compute pass, copies the outputs into one mapped read-back buffer, and submits
once. Graph inputs and outputs own buffers (so outputs can stay on the GPU); weights share one
constant buffer; every other tensor is an offset in one arena planned by ``wgnn.memory``. Arena
tensors are bound as ``storage`` (WebGPU forbids one buffer bound read-only and writable in the
same dispatch); weights are bound read-only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ... import ops
from ...errors import GraphError, TooLargeForAdapter
from ...graph import Graph, Node, from_storage, storage_numpy, stored_nbytes, to_storage
from ...layout import WRITE_ANY_ORDER
from ...memory import Block, MemoryReport, Plan, plan_buffers
from ...passes.fuse_elementwise import fuse_elementwise
from ...runtime import WGPU_NATIVE, Device, GPUTensor, wgpu
from ..base import Backend
from ..common import Executable, pack_uniforms, padded
from . import data, indexing, nn  # noqa: F401  (register the lowerings)
from .context import LOWERINGS, ConstantPool, LoweringContext, Ref, SharedBuffers
from .policy import Choice, KernelPolicy

__all__ = ["Choice", "ComputeBackend", "ComputeExecutable", "Dispatch", "KernelPolicy", "LoweringContext"]


def _native_pass_calls():
    """wgpu-native's own functions behind a compute pass's set_pipeline, set_bind_group and
    dispatch_workgroups, and cffi's NULL; None where wgpu-py does not run on wgpu-native.

    wgpu-py wraps each call to wgpu-native in error capture, which is two thirds of the host time of
    encoding a run (MobileNet V2's 56 dispatches: 0.83-0.90 ms through wgpu-py, 0.41-0.51 ms with
    these, on this project's 2-core machine). A run encodes the same, already validated, dispatches
    every time, so after the first run (encoded through wgpu-py, which raises on any error) the
    executable calls these directly; an error in them would still be reported when the pass ends."""
    if WGPU_NATIVE is None:
        return None
    ffi, lib, _ = WGPU_NATIVE
    return (lib.wgpuComputePassEncoderSetPipeline, lib.wgpuComputePassEncoderSetBindGroup,
            lib.wgpuComputePassEncoderDispatchWorkgroups, ffi.NULL)


_NATIVE = _native_pass_calls()


@dataclass
class Dispatch:
    pipeline: object
    bind_group: object
    workgroups: tuple[int, int]
    node: Node
    kernel: str
    variant: str = ""  # the kernel policy's choice (variant, tile, workgroup size), else the kernel's name
    flops: int = 0  # arithmetic, as the profiler counts it (ops.cost)
    bytes_moved: int = 0  # bytes of every tensor and weight bound: read or written once each

    def encode(self, cpass) -> None:
        cpass.set_pipeline(self.pipeline)
        cpass.set_bind_group(0, self.bind_group)
        cpass.dispatch_workgroups(self.workgroups[0], self.workgroups[1], 1)


@dataclass
class ComputeExecutable(Executable):
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
    constant_bytes: int
    choices: dict[str, Choice] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    # the buffers its weights lie in (SharedBuffers refers to them weakly: they live while a plan
    # binding them does)
    constant_buffers: list = field(default_factory=list)
    arena: object = None  # the buffer its intermediates lie in
    # where its arena is shared with the session's other plans (SharedBuffers), and (dispatch,
    # layout, entries, which entries bind the arena) for each dispatch that binds it: a run after the
    # shared arena grew binds the new one first (``_bind_shared_arena``)
    shared: object = None
    rebind: list = field(default_factory=list)
    compile_seconds: float = 0.0
    # wgpu-native's handles of each dispatch's pipeline and bind group, and its workgroups: set once
    # a run has encoded every dispatch through wgpu-py (encode_range)
    handles: list[tuple] = field(default_factory=list)
    # (dispatch, shader source, what it is) of each pipeline to make at the first run
    # (``compile_graph(defer_pipelines=True)``)
    deferred: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def report(self) -> MemoryReport:
        return self.plan.report

    @property
    def held_bytes(self) -> int:
        buffers = [*self.input_buffers.values(), *self.output_buffers.values(), self.readback]
        return (0 if self.shared is not None else self.plan.arena_bytes) + sum(b.size for b in buffers)

    def _ready(self) -> None:
        """Before encoding: the pipelines deferred at compile time made (several at once), and the
        session's shared arena bound (``_bind_shared_arena``)."""
        if self.deferred:
            self.device.make_pipelines([(source, what) for _, source, what in self.deferred])
            for index, source, what in self.deferred:
                self.dispatches[index].pipeline = self.device.pipeline(source, what).pipeline
            self.deferred, self.handles = [], []
        self._bind_shared_arena()

    def _bind_shared_arena(self) -> None:
        """Where the session's shared arena was replaced by a larger one since this plan last ran,
        bind the new one (new bind groups for the dispatches that bind it; the native handles of the
        next encode are taken anew)."""
        if self.shared is None or self.shared.arena is self.arena:
            return
        arena = self.shared.arena
        for index, layout, entries, in_arena in self.rebind:
            for i in in_arena:
                entries[i] = {"binding": entries[i]["binding"], "resource": dict(entries[i]["resource"], buffer=arena)}
            self.dispatches[index].bind_group = self.device.device.create_bind_group(layout=layout, entries=entries)
        self.arena, self.handles = arena, []

    def write_inputs(self, enc, feeds: dict) -> None:
        dev = self.device
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

    def encode(self, enc, timestamps=None) -> None:
        self._ready()
        if timestamps is not None:
            timestamps.encode(enc, self.dispatches)
            return
        self.encode_range(enc, 0, len(self.dispatches))

    def encode_range(self, enc, start: int, stop: int) -> None:
        """Dispatches ``start`` to ``stop`` in one compute pass: through wgpu-py the first time,
        then straight through wgpu-native (``_native_pass_calls``)."""
        self._ready()
        cpass = enc.begin_compute_pass()
        if self.handles and _NATIVE is not None:
            set_pipeline, set_bind_group, dispatch, null = _NATIVE
            handle = cpass._internal
            for pipeline, group, x, y in self.handles[start:stop]:
                set_pipeline(handle, pipeline)
                set_bind_group(handle, 0, group, 0, null)
                dispatch(handle, x, y, 1)
        else:
            for d in self.dispatches[start:stop]:
                d.encode(cpass)
            if stop == len(self.dispatches):
                self.handles = [(d.pipeline._internal, d.bind_group._internal, *d.workgroups)
                                for d in self.dispatches]
        cpass.end()

    def copy_outputs(self, enc) -> None:
        for name, out in self.graph.outputs.items():
            enc.copy_buffer_to_buffer(self.output_buffers[name], 0, self.readback, self.readback_offsets[name],
                                      padded(stored_nbytes(out.shape, out.dtype), 4))

    def decode(self, name: str, raw: memoryview) -> np.ndarray:
        out = self.graph.outputs[name]
        stored = np.frombuffer(raw, storage_numpy(out.dtype), out.size, self.readback_offsets[name])
        return from_storage(stored.reshape(out.shape), out.dtype)


class ComputeBackend(Backend):
    name = "compute"
    lowerings = LOWERINGS
    writes_any_order = WRITE_ANY_ORDER  # (the strided kernels address their output through strides)

    def policy(self, device: Device, overrides: dict | None, precision: str) -> KernelPolicy:
        return KernelPolicy.for_device(device, overrides, precision=precision)

    def prepare(self, graph: Graph, policy: KernelPolicy, *, optimize: bool = True) -> Counter:
        fired = policy.rewrite(graph)
        if optimize:  # last: every fusion into a kernel's epilogue has taken its element-wise ops
            fired["fuse_elementwise"] = fuse_elementwise(graph)
        return +fired

    def context(self, state) -> LoweringContext:
        for node in state.graph.nodes:  # quantized results kept four bytes to a word (passes/integer_conv.py)
            fusion = node.attrs.get("requantize") if node.op in ("conv2d", "winograd_output") else None
            if fusion is not None and fusion.packed:
                state.storage[id(node.outputs[0])] = "i8x4"
        ctx = LoweringContext(state.device, state.perms, state.storage, state.roots, state.policy,
                              precision=state.precision, opset=state.opset, shared=state.shared)
        ctx.placed = state.placed
        data.channel_windows(state, ctx.windows)
        data.leading_columns(state, ctx.row_pitch)
        data.sliced_parts(state, ctx.slice_views)
        data.contiguous_slices(state, ctx)
        data.contiguous_parts(state, ctx)
        ctx.slices = data.concat_slices(state, ctx.windows)
        return ctx

    def build(self, state, ctx: LoweringContext) -> ComputeExecutable:
        before = state.shared.arena if state.shared is not None else None
        try:
            return self._build(state, ctx)
        except Exception:  # a compile that fails leaves the arena the session's plans share as it was
            if state.shared is not None:
                state.shared.arena = before
            raise

    def _build(self, state, ctx: LoweringContext) -> ComputeExecutable:
        device, graph = state.device, state.graph

        def stored_bytes(operand) -> int:  # (a view or a slice: its own elements, in its root's type)
            return operand.size * {"f16": 2, "i8x4": 1}.get(state.storage[id(state.root(operand))], 4)

        blocks = [Block(id(t.operand), padded(stored_bytes(t.operand), 16), t.first, t.last, t.operand.name)
                  for t in state.lifetimes]
        step_of = {id(node): step for step, node in enumerate(graph.nodes)}
        blocks += [Block(id(t), padded(stored_bytes(t), 16), step_of[id(node)], step_of[id(node)])
                   for t, node in ctx.scratch]
        max_binding = int(device.limits["max-storage-buffer-binding-size"])
        plan = plan_buffers(blocks, alignment=device.storage_alignment, max_binding_size=max_binding)
        if plan.arena_bytes > int(device.limits["max-buffer-size"]):
            raise TooLargeForAdapter(f"the model needs {plan.arena_bytes} bytes of intermediates, more than this "
                                     f"adapter's max-buffer-size ({device.limits['max-buffer-size']})",
                                     plan.arena_bytes, int(device.limits["max-buffer-size"]))

        arena = (state.shared.arena_for(device, plan.arena_bytes) if state.shared is not None
                 else device.buffer(plan.arena_bytes, label="arena"))
        placed, constant_buffers = self._constants(device, ctx.constants, state.shared)
        input_buffers = {name: device.buffer(stored_nbytes(o.shape, o.dtype), label=f"input {name}")
                         for name, o in graph.inputs.items()}
        output_buffers = {name: device.buffer(stored_nbytes(o.shape, o.dtype), label=f"output {name}")
                          for name, o in graph.outputs.items()}
        by_id = {id(o): input_buffers[n] for n, o in graph.inputs.items()}
        by_id.update({key: output_buffers[n] for key, n in state.output_roots.items()})
        dummies = {"storage": device.buffer(16, label="unused rw"),
                   "read-only-storage": device.buffer(16, label="unused ro")}

        # A dispatch may read constants both through a read-only binding and through a read_write
        # one (an input binding that also takes computed tensors); WebGPU forbids one buffer in both
        # roles, so the ranges read the second way get copies of their own in a second buffer.
        whats = [f"{call.kernel} for node {call.node.name!r}" for call in ctx.calls]
        if state.defer_pipelines:  # (made by the first run, ``_ready``: their layouts now)
            pipes = [device.interface(call.source) for call in ctx.calls]
        else:
            device.make_pipelines(list(zip((c.source for c in ctx.calls), whats)))  # (those not made yet, at once)
            pipes = [device.pipeline(call.source, what) for call, what in zip(ctx.calls, whats)]
        writable: dict[tuple[int, int], int] = {}
        for call, pipe in zip(ctx.calls, pipes):
            kinds = [(ref, kind) for ref, kind in zip(call.bindings, pipe.kinds[1:]) if ref.kind == "const"]
            if len({kind for _, kind in kinds}) > 1:
                writable.update({(ref.offset, ref.nbytes): 0 for ref, kind in kinds if kind == "storage"})
        constants_rw = None
        if writable:
            chunks, size = {chunk.offset: chunk for chunk in ctx.constants.entries}, 0
            for offset, nbytes in writable:
                writable[(offset, nbytes)] = size
                size += nbytes + (-nbytes % device.storage_alignment)
            constants_rw = device.buffer_of(size, [(at, ConstantPool.data(chunks[offset]))  # (those chunks alone)
                                                   for (offset, _), at in writable.items()],
                                            label="constants read as writable")

        def resolve(ref: Ref, kind: str):
            if ref.kind == "dummy":
                return dummies[kind], 0, 16
            if ref.kind == "const":
                if kind == "storage" and (ref.offset, ref.nbytes) in writable:
                    return constants_rw, writable[(ref.offset, ref.nbytes)], ref.nbytes
                return (*placed[ref.offset], ref.nbytes)
            root = state.root(ref.operand)
            start = state.placed.get(id(ref.operand))  # (a run of its root's bytes, bound from where it starts)
            size = padded(stored_bytes(root if start is None else ref.operand), 16)
            if id(root) in by_id:
                return by_id[id(root)], start or 0, size
            return arena, plan.offsets[id(root)] + (start or 0), size

        def where(call) -> str:
            return f"{call.kernel} for node {call.node.name!r}"

        uniforms, slots = pack_uniforms(device, [(pipe.fields, call.params, where(call))
                                                 for pipe, call in zip(pipes, ctx.calls)])
        calls_per_node = Counter(id(call.node) for call in ctx.calls)
        dispatches, rebind = [], []
        for call, pipe, (offset, size) in zip(ctx.calls, pipes, slots):
            if len(call.bindings) != len(pipe.kinds) - 1:
                raise GraphError(f"{call.kernel} for node {call.node.name!r}: {len(call.bindings)} bindings "
                                 f"given, the shader declares {len(pipe.kinds) - 1}")
            entries = [{"binding": 0, "resource": {"buffer": uniforms, "offset": offset, "size": size}}]
            used: dict[int, set[str]] = {}
            for index, (ref, kind) in enumerate(zip(call.bindings, pipe.kinds[1:]), start=1):
                buf, off, nbytes = resolve(ref, kind)
                if nbytes > max_binding:
                    what = f"tensor {ref.operand.name!r}" if ref.operand is not None else "a weight tensor"
                    raise TooLargeForAdapter(f"{call.node.op} node {call.node.name!r}: {what} needs {nbytes} bytes "
                                             f"in one binding, more than this adapter's "
                                             f"max-storage-buffer-binding-size ({max_binding})", nbytes, max_binding,
                                             weight=ref.operand is None)
                used.setdefault(id(buf), set()).add(kind)
                entries.append({"binding": index, "resource": {"buffer": buf, "offset": off, "size": nbytes}})
            if any(len(kinds) > 1 for kinds in used.values()):
                raise GraphError(f"{call.kernel} for node {call.node.name!r} binds one buffer both read-only and "
                                 "writable, which WebGPU forbids")
            bind_group = device.device.create_bind_group(layout=pipe.layout, entries=entries)
            in_arena = [i for i, entry in enumerate(entries) if entry["resource"]["buffer"] is arena]
            if state.shared is not None and in_arena:  # (what binding another arena changes)
                rebind.append((len(dispatches), pipe.layout, entries, in_arena))
            moved = sum(stored_bytes(r.operand) if r.kind == "tensor"
                        else r.nbytes if r.kind == "const" else 0 for r in call.bindings)
            dispatches.append(Dispatch(pipe.pipeline, bind_group, call.workgroups, call.node, call.kernel,
                                       call.variant, flops=ops.cost(call.node, calls_per_node[id(call.node)])
                                       if call.flops_share is None else int(ops.cost(call.node) * call.flops_share),
                                       bytes_moved=moved))

        readback_offsets, total = {}, 0
        for name, out in graph.outputs.items():
            readback_offsets[name] = total
            total += padded(stored_nbytes(out.shape, out.dtype), 16)
        readback = device.buffer(total, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST,
                                 label="readback")
        deferred = [(i, call.source, what) for i, (call, pipe, what) in enumerate(zip(ctx.calls, pipes, whats))
                    if pipe.pipeline is None]
        return ComputeExecutable(
            device=device, graph=graph, dispatches=dispatches, plan=plan, input_buffers=input_buffers,
            deferred=deferred, output_buffers=output_buffers, readback=readback, readback_offsets=readback_offsets,
            pipelines={c.source for c in ctx.calls}, constant_bytes=ctx.constants.size,
            choices=dict(state.policy.choices), blocks=blocks, constant_buffers=constant_buffers,
            arena=arena, shared=state.shared, rebind=rebind)

    @staticmethod
    def _constants(device, pool: ConstantPool, store: SharedBuffers | None) -> tuple[dict[int, tuple], list]:
        """Where each chunk of ``pool`` lies on the GPU: {its offset in the pool: (buffer, offset)},
        and the buffers. The chunks a store holds already are bound where they lie; the others are
        uploaded, in as few buffers as the adapter's max-buffer-size allows (one, unless the weights
        exceed it), which the store then knows of."""
        placed, buffers, new = {}, [], []
        for chunk in pool.entries:
            found = store.find(chunk.key) if store is not None else None
            if found is None:
                new.append(chunk)
                continue
            placed[chunk.offset] = found
            if not any(b is found[0] for b in buffers):
                buffers.append(found[0])
        limit = int(device.limits.get("max-buffer-size", 1 << 62))
        groups: list[tuple[list, int]] = []  # (chunks with where each starts in the group's buffer, its bytes)
        for chunk in new:
            nbytes = chunk.nbytes + (-chunk.nbytes % pool.alignment)
            if nbytes > limit:
                raise TooLargeForAdapter(f"a weight tensor needs {chunk.nbytes} bytes, more than this adapter's "
                                         f"max-buffer-size ({limit})", chunk.nbytes, limit, weight=True)
            if not groups or groups[-1][1] + nbytes > limit:
                groups.append(([], 0))
            members, size = groups[-1]
            members.append((chunk, size))
            groups[-1] = (members, size + nbytes)
        for members, size in groups:
            buffer = device.buffer_of(size, [(at, pool.data(chunk)) for chunk, at in members], label="constants")
            buffers.append(buffer)
            for chunk, at in members:
                placed[chunk.offset] = (buffer, at)
                if store is not None:
                    store.keep(chunk.key, buffer, at)
        return placed, buffers
