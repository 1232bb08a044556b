"""The WebGL-style texture path: the same graphs as fragment-shader passes over RGBA textures.

Before compute shaders, networks ran on web GPUs through WebGL: tensors packed into RGBA float
textures, every op a full-screen draw whose fragment shader writes one texel (four values). This
backend keeps that execution model, with only what WebGL had (textures, uniforms, render passes;
no compute shaders, no storage buffers), so users can measure what a compute API buys on their own
hardware, and so there is a second implementation to cross-check the first.

Texture layout: a tensor's last physical axis is packed four values to a texel (zero-padded to a
multiple of 4); texels are laid out in order and wrap at the texture's width (at most the adapter's
largest texture dimension), so wide tensors take more rows. The graph, passes, fusion, physical
layouts (channels-last for convolutions) and storage types (fp16) are the compute path's;
``plan_textures`` pools textures of one size and format among tensors whose lifetimes don't overlap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import ops, shaders
from .errors import GraphError, UnsupportedOperatorError
from .graph import Graph, Node, Operand, fresh_name, is_integer
from .layout import assign_layouts, identity, view_is_free
from .memory import Block, MemoryReport, lower_bound
from .ops.elementwise import MAX_RANK, pack_dims
from .ops.nn import fused_epilogue
from .runtime import Device, wgpu
from .scheduler import fits_f16, give_outputs_own_storage, pack_params, storage_types

FORMATS = {"f32": "rgba32float", "f16": "rgba16float"}
BYTES_PER_TEXEL = {"f32": 16, "f16": 8}
MAX_CONCAT_INPUTS = 2


@dataclass(frozen=True)
class TexShape:
    """Where a tensor's texels go: ``texels`` in all, ``width`` per row, ``height`` rows."""

    texels: int
    width: int
    height: int


def physical(operand: Operand, perm: tuple[int, ...]) -> list[int]:
    return [operand.shape[a] for a in perm] or [1]


def tex_shape(phys: list[int], max_dim: int) -> TexShape:
    texels = max(1, int(np.prod(phys[:-1], dtype=np.int64)) * -(-phys[-1] // 4))
    width = min(texels, max_dim)
    return TexShape(texels, width, -(-texels // width))


def padded_strides(phys: list[int]) -> list[int]:
    """Stride of each physical axis in padded element indices (the last axis padded to 4)."""
    dims = phys[:-1] + [-(-phys[-1] // 4) * 4]
    strides, step = [0] * len(dims), 1
    for k in range(len(dims) - 1, -1, -1):
        strides[k] = step
        step *= dims[k]
    return strides


def to_texels(array: np.ndarray, shape: TexShape, dtype: str) -> np.ndarray:
    """Host data (already in physical order) as the (height, width, 4) array of its texture."""
    flat = array.reshape(-1, array.shape[-1] if array.ndim else 1)
    last = flat.shape[1]
    flat = np.pad(flat, ((0, 0), (0, -last % 4))).reshape(-1, 4)
    flat = np.pad(flat, ((0, shape.width * shape.height - flat.shape[0]), (0, 0)))
    return flat.reshape(shape.height, shape.width, 4).astype(np.float16 if dtype == "f16" else np.float32)


def upload(device: Device, texture, array: np.ndarray, shape: TexShape, fmt: str) -> None:
    device.queue.write_texture({"texture": texture}, to_texels(array, shape, fmt),
                               {"bytes_per_row": shape.width * BYTES_PER_TEXEL[fmt], "rows_per_image": shape.height},
                               (shape.width, shape.height, 1))


def from_texels(raw: np.ndarray, shape: TexShape, phys: list[int]) -> np.ndarray:
    """The inverse of ``to_texels``: (height, width, 4) texels to the physical array."""
    last = phys[-1]
    flat = raw.reshape(-1, 4)[: shape.texels].reshape(-1, -(-last // 4) * 4)[:, :last]
    return flat.reshape(phys)


@dataclass(frozen=True)
class TRef:
    kind: str  # "tensor" | "const" | "dummy"
    operand: Operand | None = None
    index: int = -1  # into the constant list


@dataclass
class Draw:
    node: Node
    kernel: str
    source: str
    params: dict
    bindings: list[TRef]
    target: Operand


class TextureContext:
    """What a texture lowering sees: layouts, texture shapes, constants and ``draw``."""

    def __init__(self, device: Device, perms: dict, storage: dict[int, str], roots: dict[int, Operand],
                 precision: str, opset: int | None):
        self.device = device
        self.perms = perms
        self.storage = storage
        self.roots = roots
        self.elem = "f16" if precision == "fp16" else "f32"
        self.opset = opset
        self.max_dim = int(device.limits.get("max-texture-dimension-2d", 8192))
        self.constants: list[tuple[np.ndarray, TexShape, str]] = []
        self.draws: list[Draw] = []

    def perm(self, operand: Operand) -> tuple[int, ...]:
        return self.perms[id(operand)]

    def phys(self, operand: Operand) -> list[int]:
        return physical(operand, self.perm(operand))

    def shape(self, operand: Operand) -> TexShape:
        return tex_shape(self.phys(operand), self.max_dim)

    def root(self, operand: Operand) -> Operand:
        return self.roots.get(id(operand), operand)

    def tensor(self, operand: Operand) -> TRef:
        if operand.is_constant:
            return self.const(operand.value.astype(np.float32).transpose(self.perm(operand)) if operand.rank
                              else operand.value.reshape(1))
        return TRef("tensor", operand)

    def const(self, array: np.ndarray) -> TRef:
        """A constant texture from an array in physical order (its last axis gets packed)."""
        array = np.asarray(array, np.float32)
        if array.ndim == 0:
            array = array.reshape(1)
        shape = tex_shape(list(array.shape), self.max_dim)
        fits = self.elem == "f16" and fits_f16(array)
        self.constants.append((array, shape, "f16" if fits else "f32"))
        return TRef("const", index=len(self.constants) - 1)

    def const_width(self, ref: TRef) -> int:
        return self.constants[ref.index][1].width

    def width(self, ref_or_operand) -> int:
        if isinstance(ref_or_operand, TRef):
            if ref_or_operand.kind == "const":
                return self.const_width(ref_or_operand)
            if ref_or_operand.kind == "dummy":
                return 1
            ref_or_operand = ref_or_operand.operand
        return self.shape(self.root(ref_or_operand)).width

    @staticmethod
    def dummy() -> TRef:
        return TRef("dummy")

    def unsupported(self, node: Node, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(node.attrs.get("onnx_op", node.op), node.name, self.opset,
                                        f"{detail} on the texture backend")

    def draw(self, kernel: str, *, node: Node, template: dict, params: dict, bindings: list[TRef],
             target: Operand) -> None:
        shape = self.shape(target)
        params = {"out_width": shape.width, "out_texels": shape.texels, **params}
        source = shaders.render("texture/" + kernel, types={"out": self.storage[id(target)]}, **template)
        self.draws.append(Draw(node, kernel, source, params, bindings, target))


# -- lowerings ------------------------------------------------------------------------------------

def _epilogue(ctx: TextureContext, node: Node, channels: int):
    e = fused_epilogue(node, ctx, channels)
    bias_ref = ctx.const(e.bias)
    refs = [bias_ref, ctx.tensor(e.residual) if e.residual is not None else ctx.dummy(),
            ctx.const(e.slope) if e.slope is not None else ctx.dummy()]
    return refs, e.template, {**e.params, "vec_width": ctx.const_width(bias_ref)}


def lower_conv2d(node: Node, ctx: TextureContext) -> None:
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    if not w.is_constant:
        raise ctx.unsupported(node, "convolution weights computed at run time")
    n, c, h, wd = x.shape
    o, cpg, kh, kw = w.shape
    g = node.attrs["groups"]
    depthwise = g == c == o and g > 1
    if g != 1 and not depthwise:
        raise ctx.unsupported(node, f"grouped convolution (groups={g})")
    weights = w.value.astype(np.float32)
    c4, o4 = -(-c // 4), -(-o // 4)
    if depthwise:
        packed = np.zeros((kh, kw, o4 * 4), np.float32)
        packed[:, :, :o] = weights[:, 0].transpose(1, 2, 0)
    else:
        packed = np.zeros((kh, kw, c4 * 4, o4 * 4), np.float32)
        packed[:, :, :c, :o] = weights.transpose(2, 3, 1, 0)
    w_ref = ctx.const(packed)
    refs, template, params = _epilogue(ctx, node, o)
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    params.update(x_width=ctx.width(x), w_width=ctx.const_width(w_ref), in_h=h, in_w=wd, in_c4=c4,
                  out_h=out.shape[2], out_w=out.shape[3], out_c4=o4, out_c=o, kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    template["depthwise"] = depthwise
    ctx.draw("conv2d", node=node, template=template, params=params,
             bindings=[ctx.tensor(x), w_ref] + refs, target=out)


def lower_matmul(node: Node, ctx: TextureContext) -> None:
    a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
    if a.rank != 2 or b.rank != 2 or not b.is_constant:
        raise ctx.unsupported(node, "matmul other than [M, K] x constant [K, N]")
    k, cols = b.shape
    k4, n4 = -(-k // 4), -(-cols // 4)
    packed = np.zeros((k4 * 4, n4 * 4), np.float32)
    packed[:k, :cols] = b.value.astype(np.float32)
    b_ref = ctx.const(packed)
    refs, template, params = _epilogue(ctx, node, cols)
    params.update(a_width=ctx.width(a), b_width=ctx.const_width(b_ref), k4=k4, n4=n4, n=cols)
    ctx.draw("matmul", node=node, template=template, params=params, bindings=[ctx.tensor(a), b_ref] + refs,
             target=out)


def lower_pool2d(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = a["kernel"], a["strides"], a["pads"], a["dilations"]
    params = dict(x_width=ctx.width(x), in_h=h, in_w=w, c4=-(-c // 4), c=c, out_h=out.shape[2],
                  out_w=out.shape[3], kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
                  pad_top=pt, pad_left=pl, pad_bottom=pb, pad_right=pr,
                  count_include_pad=int(a["count_include_pad"]))
    ctx.draw("pool", node=node, template={"is_max": a["mode"] == "max"}, params=params,
             bindings=[ctx.tensor(x)], target=out)


def lower_softmax(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    phys = ctx.phys(x)
    k = ctx.perm(x).index(node.attrs["axis"] % x.rank)
    strides = padded_strides(phys)
    params = {"x_width": ctx.width(x), "last": phys[-1], "last_padded": -(-phys[-1] // 4) * 4,
              "axis_size": phys[k], "axis_stride": strides[k], "axis_is_last": int(k == len(phys) - 1)}
    ctx.draw("softmax", node=node, template={"log": node.attrs.get("log", False)}, params=params,
             bindings=[ctx.tensor(x)], target=out)


def _strides_for(ctx: TextureContext, operand: Operand, out: Operand, out_shape: tuple[int, ...]) -> list[int]:
    """Per output physical axis: the input's stride in padded element indices (0 = broadcast)."""
    if operand.is_constant:
        own_phys = list(operand.shape) or [1]
        perm = identity(operand.rank)
    else:
        own_phys, perm = ctx.phys(operand), ctx.perm(operand)
    strides = padded_strides(own_phys)
    logical = [0] * max(operand.rank, 1)
    for k, axis in enumerate(perm):
        logical[axis] = strides[k]
    lead = len(out_shape) - operand.rank
    per_axis = [0] * lead + [0 if operand.shape[a] == 1 else logical[a] for a in range(operand.rank)]
    return [per_axis[a] for a in ctx.perm(out)] if out.rank else [0]


def _elementwise(ctx: TextureContext, node: Node, out: Operand, a: Operand, b: Operand | None = None, *,
                 op: str = "first", activation=None, a_strides=None, a_base: int = 0, concat: tuple | None = None):
    phys = ctx.phys(out)
    if len(phys) > MAX_RANK:
        raise ctx.unsupported(node, f"tensors of more than {MAX_RANK} dimensions")
    padded = phys[:-1] + [-(-phys[-1] // 4) * 4]
    a_s = a_strides if a_strides is not None else _strides_for(ctx, a, out, out.shape)
    b_s, b_base, split, axis = [0] * len(phys), 0, 0, MAX_RANK
    if b is not None:
        b_s = _strides_for(ctx, b, out, out.shape if concat is None else b.shape)
    if concat is not None:
        axis, split = concat
        b_base = -split * b_s[axis]
    params = {"a_width": ctx.width(a), "b_width": ctx.width(b) if b is not None else 1, "last": phys[-1],
              "a_base": a_base, "b_base": b_base, "split": split, "concat_axis": axis,
              "alpha": activation.alpha if activation else 0.0, "beta": activation.beta if activation else 0.0,
              "shape": pack_dims(padded, 1), "a_strides": pack_dims(a_s, 0), "b_strides": pack_dims(b_s, 0)}
    template = {"rank": len(phys), "op": op, "mode": "concat" if concat else "apply",
                "act": activation.kind if activation else "none"}
    ctx.draw("elementwise", node=node, template=template, params=params,
             bindings=[ctx.tensor(a), ctx.tensor(b) if b is not None else ctx.dummy()], target=out)


def lower_binary(node: Node, ctx: TextureContext) -> None:
    _elementwise(ctx, node, node.outputs[0], node.inputs[0], node.inputs[1], op=node.attrs["kind"],
                 activation=node.attrs.get("activation"))


def lower_activation(node: Node, ctx: TextureContext) -> None:
    act = node.attrs["activation"]
    if act.kind == "prelu":
        _elementwise(ctx, node, node.outputs[0], node.inputs[0], node.inputs[1], op="prelu")
    else:
        _elementwise(ctx, node, node.outputs[0], node.inputs[0], activation=act)


def lower_copy(node: Node, ctx: TextureContext) -> None:
    if node.op == "cast" and node.attrs["to"] != node.inputs[0].dtype:
        raise ctx.unsupported(node, f"Cast to {node.attrs['to']}")
    _elementwise(ctx, node, node.outputs[0], node.inputs[0])


def lower_reshape(node: Node, ctx: TextureContext) -> None:
    """Only reshapes that move the packing get here; the others alias their input."""
    x, out = node.inputs[0], node.outputs[0]
    in_phys, out_phys = ctx.phys(x), ctx.phys(out)
    if max(len(in_phys), len(out_phys)) > MAX_RANK:
        raise ctx.unsupported(node, f"tensors of more than {MAX_RANK} dimensions")
    params = {"x_width": ctx.width(x), "out_last": out_phys[-1],
              "out_shape": pack_dims(out_phys[:-1] + [-(-out_phys[-1] // 4) * 4], 1),
              "in_shape": pack_dims(in_phys, 1), "in_strides": pack_dims(padded_strides(in_phys), 0)}
    ctx.draw("reshape", node=node, template={"out_rank": len(out_phys), "in_rank": len(in_phys)}, params=params,
             bindings=[ctx.tensor(x)], target=out)


def lower_slice(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    full = _strides_for(ctx, x, x, x.shape)  # per physical axis of x, which is out's order too
    perm = ctx.perm(x)
    steps, starts = node.attrs["steps"], node.attrs["starts"]
    strides = [full[k] * steps[axis] for k, axis in enumerate(perm)]
    base = sum(full[k] * starts[axis] for k, axis in enumerate(perm))
    _elementwise(ctx, node, out, x, a_strides=strides, a_base=base)


def lower_concat(node: Node, ctx: TextureContext) -> None:
    out = node.outputs[0]
    first, second = node.inputs
    axis = ctx.perm(out).index(node.attrs["axis"] % out.rank)
    _elementwise(ctx, node, out, first, second, concat=(axis, first.shape[node.attrs["axis"] % out.rank]))


LOWERINGS = {
    "conv2d": lower_conv2d, "matmul": lower_matmul, "pool2d": lower_pool2d, "softmax": lower_softmax,
    "binary": lower_binary, "activation": lower_activation, "identity": lower_copy, "relayout": lower_copy,
    "cast": lower_copy, "reshape": lower_reshape, "slice": lower_slice, "concat": lower_concat,
}


def split_concats(graph: Graph) -> None:
    """Concats of more than two inputs become chains of two-input concats (one draw reads two)."""
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op != "concat" or len(node.inputs) <= MAX_CONCAT_INPUTS:
            nodes.append(node)
            continue
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


# -- planning and running -------------------------------------------------------------------------

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


@dataclass
class TextureExecutable:
    device: Device
    graph: Graph
    dispatches: list[Pass]
    report: MemoryReport
    input_textures: dict[str, tuple[object, TexShape, list[int], str]]
    output_textures: dict[str, tuple[object, TexShape, list[int], tuple[int, ...], str]]
    readback: object
    readback_rows: dict[str, tuple[int, int]]  # name -> (offset, bytes per row)
    pipelines: set[str]
    compile_seconds: float

    def run(self, feeds: dict[str, np.ndarray], *, read_back: bool = True) -> dict[str, np.ndarray]:
        dev = self.device
        for name, value in feeds.items():
            if not isinstance(value, np.ndarray):
                raise ValueError(f"input {name!r}: the texture backend takes numpy arrays")
            texture, shape, _, fmt = self.input_textures[name]
            upload(dev, texture, value, shape, fmt)
        enc = dev.device.create_command_encoder()
        for p in self.dispatches:
            rp = enc.begin_render_pass(color_attachments=[{"view": p.view, "load_op": wgpu.LoadOp.clear,
                                                           "store_op": wgpu.StoreOp.store,
                                                           "clear_value": (0, 0, 0, 0)}])
            rp.set_pipeline(p.pipeline)
            rp.set_bind_group(0, p.bind_group)
            rp.draw(3)
            rp.end()
        if read_back:
            for name, (texture, shape, _, _, _) in self.output_textures.items():
                offset, row = self.readback_rows[name]
                enc.copy_texture_to_buffer({"texture": texture},
                                           {"buffer": self.readback, "offset": offset, "bytes_per_row": row,
                                            "rows_per_image": shape.height}, (shape.width, shape.height, 1))
        dev.queue.submit([enc.finish()])
        if not read_back:
            return {}
        raw = dev.read_mapped(self.readback)
        results = {}
        for name, (_, shape, phys, perm, fmt) in self.output_textures.items():
            offset, row = self.readback_rows[name]
            dtype = np.float16 if fmt == "f16" else np.float32
            rows = np.frombuffer(raw, np.uint8, row * shape.height, offset).reshape(shape.height, row)
            texels = rows[:, : shape.width * BYTES_PER_TEXEL[fmt]].copy().view(dtype)
            value = from_texels(texels, shape, phys)
            out = self.graph.outputs[name]
            results[name] = np.transpose(value, np.argsort(perm)).reshape(out.shape).astype(out.dtype)
        return results


def compile_texture_graph(graph: Graph, device: Device, *, precision: str = "fp32",
                          opset: int | None = None) -> TextureExecutable:
    """Lower ``graph`` to render passes and create every texture, pipeline and bind group."""
    start = time.perf_counter()
    give_outputs_own_storage(graph)
    split_concats(graph)
    perms = assign_layouts(graph)
    storage = storage_types(graph, precision)
    if "f16" in storage.values() and "shader-f16" not in device.features:
        raise GraphError(f"float16 tensors need the adapter feature shader-f16, which {device.name} lacks")
    max_dim = int(device.limits.get("max-texture-dimension-2d", 8192))

    # Views whose texels stay where they are alias their source; other reshapes become copies.
    roots: dict[int, Operand] = {}
    for node in graph.nodes:
        if node.op == "transpose" or (node.op == "reshape" and _free_reshape(node, perms)):
            src = node.inputs[0]
            roots[id(node.outputs[0])] = roots.get(id(src), src)
    ctx = TextureContext(device, perms, storage, roots, precision, opset)

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for step, node in enumerate(graph.nodes):
        for operand in node.inputs:
            if operand is not None and not operand.is_constant:
                last[id(ctx.root(operand))] = step
        if id(node.outputs[0]) in roots:
            continue
        lower = LOWERINGS.get(node.op)
        integer = [t for t in node.inputs + node.outputs if t is not None and not t.is_constant and is_integer(t.dtype)]
        if integer:
            raise ctx.unsupported(node, f"{integer[0].dtype} tensor {integer[0].name!r}: RGBA float textures "
                                        "hold floating-point tensors only")
        if lower is None:
            detail = "it could not be evaluated at compile time" if not hasattr(ops.get(node.op), "lower") else \
                "not implemented on the texture backend"
            raise UnsupportedOperatorError(node.attrs.get("onnx_op", node.op), node.name, opset, detail)
        lower(node, ctx)
        for out in node.outputs:
            first[id(out)] = step
            last.setdefault(id(out), step)

    inputs = {id(o): n for n, o in graph.inputs.items()}
    outputs = {id(ctx.root(o)): n for n, o in graph.outputs.items()}
    by_id = {id(o): o for o in list(graph.inputs.values())}
    by_id.update({id(o): o for n in graph.nodes for o in n.outputs})

    def size_class(operand: Operand) -> tuple[int, int, str]:
        shape = ctx.shape(operand)
        if shape.height > max_dim:
            raise GraphError(f"tensor {operand.name!r} needs {shape.texels} texels, more than a "
                             f"{max_dim}x{max_dim} texture holds")
        return shape.width, shape.height, storage[id(operand)]

    blocks = []
    for key in first:
        if key in outputs or key in inputs:
            continue
        w, h, fmt = size_class(by_id[key])
        blocks.append(TexBlock(key, (w, h, fmt), w * h * BYTES_PER_TEXEL[fmt], first[key], max(last[key], first[key])))
    assignment, classes, report = plan_textures(blocks)

    usage = wgpu.TextureUsage.TEXTURE_BINDING | wgpu.TextureUsage.RENDER_ATTACHMENT

    def texture(cls: tuple[int, int, str], label: str, extra=0):
        w, h, fmt = cls
        return device.device.create_texture(size=(w, h, 1), format=FORMATS[fmt], usage=usage | extra, label=label)

    views: dict[int, object] = {}
    pooled = [texture(cls, "pooled").create_view() for cls in classes]
    for key, slot in assignment.items():
        views[key] = pooled[slot]
    input_textures, output_textures = {}, {}
    for key, name in inputs.items():
        operand = by_id[key]
        tex = texture(size_class(operand), f"input {name}", wgpu.TextureUsage.COPY_DST)
        views[key] = tex.create_view()
        input_textures[name] = (tex, ctx.shape(operand), ctx.phys(operand), storage[key])
    readback_rows, total = {}, 0
    for key, name in outputs.items():
        operand = by_id[key]
        w, h, fmt = size_class(operand)
        tex = texture((w, h, fmt), f"output {name}", wgpu.TextureUsage.COPY_SRC)
        views[key] = tex.create_view()
        output_textures[name] = (tex, ctx.shape(operand), ctx.phys(operand), ctx.perm(operand), fmt)
        row = -(-w * BYTES_PER_TEXEL[fmt] // 256) * 256
        readback_rows[name] = (total, row)
        total += row * h
    readback = device.buffer(total, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST, label="readback")

    const_views = []
    for array, shape, fmt in ctx.constants:
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

    align = device.uniform_alignment
    uniform_bytes, slots = bytearray(), []
    for d in ctx.draws:
        pipe = device.render_pipeline(d.source, FORMATS[storage[id(d.target)]])
        data = pack_params(pipe.fields, d.params, f"texture {d.kernel} for node {d.node.name!r}")
        uniform_bytes += b"\0" * (-len(uniform_bytes) % align)
        slots.append((len(uniform_bytes), len(data)))
        uniform_bytes += data
    uniforms = device.buffer(len(uniform_bytes), usage=wgpu.BufferUsage.UNIFORM, data=bytes(uniform_bytes),
                             label="params")
    passes = []
    for d, (offset, size) in zip(ctx.draws, slots):
        pipe = device.render_pipeline(d.source, FORMATS[storage[id(d.target)]])
        entries = [{"binding": 0, "resource": {"buffer": uniforms, "offset": offset, "size": size}}]
        entries += [{"binding": i, "resource": view_of(ref)} for i, ref in enumerate(d.bindings, start=1)]
        bind_group = device.device.create_bind_group(layout=pipe.layout, entries=entries)
        passes.append(Pass(pipe.pipeline, bind_group, views[id(d.target)], d.node, d.kernel))

    return TextureExecutable(
        device=device, graph=graph, dispatches=passes, report=report, input_textures=input_textures,
        output_textures=output_textures, readback=readback, readback_rows=readback_rows,
        pipelines={f"{storage[id(d.target)]}{d.source}" for d in ctx.draws},
        compile_seconds=time.perf_counter() - start)


def _free_reshape(node: Node, perms: dict) -> bool:
    """A reshape keeps every texel in place when the input is in logical order and the packed
    last axis is the same length on both sides."""
    x, out = node.inputs[0], node.outputs[0]
    if not view_is_free(x.shape, perms[id(x)]):
        return False
    in_last = physical(x, perms[id(x)])[-1]
    return in_last == (out.shape[-1] if out.rank else 1)


