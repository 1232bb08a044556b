"""The WebGL-style texture backend: the same graphs as fragment-shader passes over RGBA textures.

Before compute shaders, networks ran on web GPUs through WebGL: tensors packed into RGBA float
textures, every op a full-screen draw whose fragment shader writes one texel (four values). This
backend keeps that execution model, with only what WebGL had (textures, uniforms, render passes;
no compute shaders, no storage buffers), so users can measure what a compute API buys on their own
hardware, and so there is a second implementation to cross-check the first.

The graph, passes, fusion, physical layouts (channels-last for convolutions) and storage types
(fp16) are the compile core's, as for the compute backend; ``plan_textures`` pools textures of one
size and format among tensors whose lifetimes don't overlap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError, GraphError, InputError
from ...graph import Graph, Node, Operand, fresh_name, is_integer
from ...layout import equivalent, view_is_free
from ...memory import Block, MemoryReport, lower_bound
from ...runtime import Device, wgpu
from ..base import Backend
from ..common import Executable, pack_uniforms
from .lowering import LOWERINGS, TexShape, TextureContext, TRef, from_texels, physical, upload

FORMATS = {"f32": "rgba32float", "f16": "rgba16float"}
BYTES_PER_TEXEL = {"f32": 16, "f16": 8}
MAX_CONCAT_INPUTS = 2

__all__ = ["TexBlock", "TextureBackend", "TextureExecutable", "plan_textures"]


def split_concats(graph: Graph) -> int:
    """Concats of more than two inputs become chains of two-input concats (one draw reads two)."""
    nodes: list[Node] = []
    split = 0
    for node in graph.nodes:
        if node.op != "concat" or len(node.inputs) <= MAX_CONCAT_INPUTS:
            nodes.append(node)
            continue
        split += 1
        axis, acc = node.attrs["axis"], node.inputs[0]
        for k, nxt in enumerate(node.inputs[1:], start=1):
            last = k == len(node.inputs) - 1
            shape = list(acc.shape)
            shape[axis] += nxt.shape[axis]
            out = node.outputs[0] if last else Operand(fresh_name(node.name + "_part"), tuple(shape), acc.dtype)
            part = Node("concat", [acc, nxt], [out], {"axis": axis}, name=node.name if last else out.name)
            out.producer = part
            nodes.append(part)
            acc = out
    graph.nodes = nodes
    return split


@dataclass(frozen=True)
class TexBlock:
    key: int
    size_class: tuple[int, int, str]
    nbytes: int
    first: int
    last: int


def plan_textures(blocks: list[TexBlock]) -> tuple[dict[int, int], list[tuple[int, int, str]], MemoryReport]:
    """Pool textures: each block takes a free texture of its size and format, else a new one.

    Returns (block key -> texture index, the textures' size classes, the memory report).
    """
    textures: list[tuple[int, int, str]] = []
    free_after: list[int] = []  # step after which each texture is free again
    assignment: dict[int, int] = {}
    for block in sorted(blocks, key=lambda b: (b.first, b.last)):
        slot = next((i for i, cls in enumerate(textures)
                     if cls == block.size_class and free_after[i] < block.first), None)
        if slot is None:
            textures.append(block.size_class)
            free_after.append(-1)
            slot = len(textures) - 1
        free_after[slot] = block.last
        assignment[block.key] = slot
    planned = sum(w * h * BYTES_PER_TEXEL[fmt] for w, h, fmt in textures)
    bound = lower_bound([Block(b.key, b.nbytes, b.first, b.last) for b in blocks])
    return assignment, textures, MemoryReport(sum(b.nbytes for b in blocks), bound, planned)


@dataclass
class Pass:
    pipeline: object
    bind_group: object
    view: object
    node: Node
    kernel: str

    @property
    def variant(self) -> str:
        return self.kernel


@dataclass
class TextureExecutable(Executable):
    device: Device
    graph: Graph
    dispatches: list[Pass]
    report: MemoryReport
    input_textures: dict[str, tuple[object, TexShape, list[int], str]]
    output_textures: dict[str, tuple[object, TexShape, list[int], tuple[int, ...], str]]
    readback: object
    readback_rows: dict[str, tuple[int, int]]  # name -> (offset, bytes per row)
    pipelines: set[str]
    constant_bytes: int = 0  # the weights' textures (each plan its own)
    compile_seconds: float = 0.0

    @property
    def held_bytes(self) -> int:
        textures = [(held[0], held[-1]) for held in (*self.input_textures.values(), *self.output_textures.values())]
        return (self.report.planned_bytes + self.readback.size + self.constant_bytes
                + sum(t.size[0] * t.size[1] * BYTES_PER_TEXEL[fmt] for t, fmt in textures))

    def write_inputs(self, enc, feeds: dict) -> None:
        for name, value in feeds.items():
            if not isinstance(value, np.ndarray):
                raise InputError(f"input {name!r}: the texture backend takes numpy arrays")
            texture, shape, _, fmt = self.input_textures[name]
            upload(self.device, texture, value, shape, fmt)

    def encode(self, enc, timestamps=None) -> None:
        if timestamps is not None:
            raise ConfigError("the profiler times compute dispatches; texture sessions have render passes")
        for p in self.dispatches:
            rp = enc.begin_render_pass(color_attachments=[{"view": p.view, "load_op": wgpu.LoadOp.clear,
                                                           "store_op": wgpu.StoreOp.store,
                                                           "clear_value": (0, 0, 0, 0)}])
            rp.set_pipeline(p.pipeline)
            rp.set_bind_group(0, p.bind_group)
            rp.draw(3)
            rp.end()

    def copy_outputs(self, enc) -> None:
        for name, (texture, shape, _, _, _) in self.output_textures.items():
            offset, row = self.readback_rows[name]
            enc.copy_texture_to_buffer({"texture": texture},
                                       {"buffer": self.readback, "offset": offset, "bytes_per_row": row,
                                        "rows_per_image": shape.height}, (shape.width, shape.height, 1))

    def decode(self, name: str, raw: memoryview) -> np.ndarray:
        _, shape, phys, perm, fmt = self.output_textures[name]
        offset, row = self.readback_rows[name]
        dtype = np.float16 if fmt == "f16" else np.float32
        rows = np.frombuffer(raw, np.uint8, row * shape.height, offset).reshape(shape.height, row)
        texels = rows[:, : shape.width * BYTES_PER_TEXEL[fmt]].copy().view(dtype)
        value = from_texels(texels, shape, phys)
        out = self.graph.outputs[name]
        if perm:  # (a scalar is stored as one value: no axes to put back in order)
            value = np.transpose(value, np.argsort(perm))
        return value.reshape(out.shape).astype(out.dtype)


class TextureBackend(Backend):
    name = "texture"
    lowerings = LOWERINGS

    def prepare(self, graph: Graph, policy, *, optimize: bool = True) -> Counter:
        return +Counter(split_concats=split_concats(graph))

    @staticmethod
    def same_layout(shape: tuple[int, ...], p: tuple[int, ...], q: tuple[int, ...]) -> bool:
        """As for buffers, and the last stored axis the same length: texels pad that axis to 4, so a
        (4, 1) tensor stored as its (1, 4) source (one texel) is not one stored row by row (four)."""
        return equivalent(shape, p, q) and (not shape or shape[p[-1]] == shape[q[-1]])

    def aliases(self, node: Node, perms: dict) -> bool:
        """Transposes, and reshapes that keep every texel in place (the input in logical order and
        the packed last stored axis the same length on both sides, in the orders the layouts gave
        them: a (2, 1) result may be stored as (1, 2)); other reshapes become copies."""
        if node.op == "transpose":
            return True
        if node.op != "reshape":
            return False
        x, out = node.inputs[0], node.outputs[0]
        if not view_is_free(x.shape, perms[id(x)]):
            return False
        return physical(x, perms[id(x)])[-1] == (physical(out, perms[id(out)])[-1] if out.rank else 1)

    def context(self, state) -> TextureContext:
        return TextureContext(state.device, state.perms, state.storage, state.roots, state.precision, state.opset)

    def lower(self, node: Node, ctx: TextureContext) -> None:
        integer = [t for t in node.inputs + node.outputs if t is not None and not t.is_constant and is_integer(t.dtype)]
        if integer:
            raise ctx.unsupported(node, f"{integer[0].dtype} tensor {integer[0].name!r}: RGBA float textures "
                                        "hold floating-point tensors only")
        super().lower(node, ctx)

    def build(self, state, ctx: TextureContext) -> TextureExecutable:
        device, graph, storage = state.device, state.graph, state.storage
        max_dim = ctx.max_dim

        def size_class(operand: Operand) -> tuple[int, int, str]:
            shape = ctx.shape(operand)
            if shape.height > max_dim:
                raise GraphError(f"tensor {operand.name!r} needs {shape.texels} texels, more than a "
                                 f"{max_dim}x{max_dim} texture holds")
            return shape.width, shape.height, storage[id(operand)]

        blocks = []
        for t in state.lifetimes:
            w, h, fmt = size_class(t.operand)
            blocks.append(TexBlock(id(t.operand), (w, h, fmt), w * h * BYTES_PER_TEXEL[fmt], t.first, t.last))
        assignment, classes, report = plan_textures(blocks)

        usage = wgpu.TextureUsage.TEXTURE_BINDING | wgpu.TextureUsage.RENDER_ATTACHMENT

        def texture(cls: tuple[int, int, str], label: str, extra=0):
            w, h, fmt = cls
            return device.device.create_texture(size=(w, h, 1), format=FORMATS[fmt], usage=usage | extra,
                                                label=label)

        views: dict[int, object] = {}
        pooled = [texture(cls, "pooled").create_view() for cls in classes]
        for key, slot in assignment.items():
            views[key] = pooled[slot]
        input_textures, output_textures = {}, {}
        for name, operand in graph.inputs.items():
            tex = texture(size_class(operand), f"input {name}", wgpu.TextureUsage.COPY_DST)
            views[id(operand)] = tex.create_view()
            input_textures[name] = (tex, ctx.shape(operand), ctx.phys(operand), storage[id(operand)])
        readback_rows, total = {}, 0
        for name, out in graph.outputs.items():
            operand = state.root(out)
            w, h, fmt = size_class(operand)
            tex = texture((w, h, fmt), f"output {name}", wgpu.TextureUsage.COPY_SRC)
            views[id(operand)] = tex.create_view()
            # A transpose's output is a view of its input's texels in its own layout: decoded by that;
            # a reshape's (its input in logical order) by the input's layout, then reshaped.
            perm = ctx.perm(out) if ctx.phys(out) == ctx.phys(operand) else ctx.perm(operand)
            output_textures[name] = (tex, ctx.shape(operand), ctx.phys(operand), perm, fmt)
            row = -(-w * BYTES_PER_TEXEL[fmt] // 256) * 256
            readback_rows[name] = (total, row)
            total += row * h
        readback = device.buffer(total, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST,
                                 label="readback")

        const_views, constant_bytes = [], 0
        for array, shape, fmt in ctx.constants:
            constant_bytes += shape.width * shape.height * BYTES_PER_TEXEL[fmt]
            tex = texture((shape.width, shape.height, fmt), "constant", wgpu.TextureUsage.COPY_DST)
            upload(device, tex, array, shape, fmt)
            const_views.append(tex.create_view())
        dummy = device.device.create_texture(size=(1, 1, 1), format="rgba32float",
                                             usage=wgpu.TextureUsage.TEXTURE_BINDING, label="unused").create_view()

        def view_of(ref: TRef):
            if ref.kind == "dummy":
                return dummy
            if ref.kind == "const":
                return const_views[ref.index]
            return views[id(ctx.root(ref.operand))]

        pipes = [device.render_pipeline(d.source, FORMATS[storage[id(d.target)]],
                                        f"texture {d.kernel} for node {d.node.name!r}") for d in ctx.draws]
        uniforms, slots = pack_uniforms(device, [(pipe.fields, d.params, f"texture {d.kernel} for node {d.node.name!r}")
                                                 for pipe, d in zip(pipes, ctx.draws)])
        passes = []
        for d, pipe, (offset, size) in zip(ctx.draws, pipes, slots):
            entries = [{"binding": 0, "resource": {"buffer": uniforms, "offset": offset, "size": size}}]
            entries += [{"binding": i, "resource": view_of(ref)} for i, ref in enumerate(d.bindings, start=1)]
            bind_group = device.device.create_bind_group(layout=pipe.layout, entries=entries)
            passes.append(Pass(pipe.pipeline, bind_group, views[id(d.target)], d.node, d.kernel))

        return TextureExecutable(
            device=device, graph=graph, dispatches=passes, report=report, input_textures=input_textures,
            output_textures=output_textures, readback=readback, readback_rows=readback_rows,
            pipelines={f"{storage[id(d.target)]}{d.source}" for d in ctx.draws}, constant_bytes=constant_bytes)
