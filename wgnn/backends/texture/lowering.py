"""Texture lowerings: each op as a draw of one fragment shader (``shaders/texture/``) into its
output's texture, plus the texture layout they share with the executable.

Texture layout: a tensor's last physical axis is packed four values to a texel (zero-padded to a
multiple of 4); texels are laid out in order and wrap at the texture's width (at most the adapter's
largest texture dimension), so wide tensors take more rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import shaders
from ...errors import UnsupportedOperatorError
from ...graph import Node, Operand
from ...layout import identity
from ...runtime import Device
from ..base import lowering_registry
from ..common import (
    MAX_RANK,
    check_loops,
    fits_f16,
    fused_epilogue,
    merge_dims,
    pack_dims,
    reduction_uniforms,
    resize_uniforms,
)

FORMATS = {"f32": "rgba32float", "f16": "rgba16float"}
BYTES_PER_TEXEL = {"f32": 16, "f16": 8}
NHWC = (0, 2, 3, 1)


LOWERINGS, lowers = lowering_registry()  # @lowers("op") registers this backend's lowering of "op"


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
    texels = flat.reshape(shape.height, shape.width, 4)  # (C order whatever the host array's order:
    # write_texture takes the bytes as they lie)
    return np.ascontiguousarray(texels, np.float16 if dtype == "f16" else np.float32)


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
             target: Operand, loops: int = 0) -> None:
        """One draw of ``kernel`` into ``target``; ``loops``: the most loop iterations a fragment
        runs, where that grows with the data (refused beyond the adapter's ``loop_limit``)."""
        check_loops(self.device, node, "texture/" + kernel, loops)
        shape = self.shape(target)
        params = {"out_width": shape.width, "out_texels": shape.texels, **params}
        source = shaders.render("texture/" + kernel, types={"out": self.storage[id(target)]}, **template)
        self.draws.append(Draw(node, kernel, source, params, bindings, target))


# -- lowerings ------------------------------------------------------------------------------------

def _epilogue(ctx: TextureContext, node: Node, channels: int):
    e = fused_epilogue(node, ctx, channels)
    if e.residual is not None and e.residual.shape != node.outputs[0].shape:
        raise ctx.unsupported(node, f"a residual of shape {e.residual.shape} narrower than the output "
                                    f"{node.outputs[0].shape} (a compute backend rewrite)")
    if e.template["affine"]:
        raise ctx.unsupported(node, "a scale and shift after the activation (a compute backend rewrite)")
    if e.factor is not None:
        raise ctx.unsupported(node, "a product scaled by a number computed at run time (a compute backend rewrite)")
    bias_ref = ctx.const(e.bias)
    refs = [bias_ref, ctx.tensor(e.residual) if e.residual is not None else ctx.dummy(),
            ctx.const(e.slope) if e.slope is not None else ctx.dummy()]
    params = {k: v for k, v in e.params.items() if not k.startswith("post_")}
    return refs, e.template, {**params, "vec_width": ctx.const_width(bias_ref)}


@lowers("conv2d")
def lower_conv2d(node: Node, ctx: TextureContext) -> None:
    x, w = node.inputs[0], node.inputs[1]
    if not w.is_constant:
        raise ctx.unsupported(node, "convolution weights computed at run time")
    c = x.shape[1]
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
    _conv_draw(node, ctx, packed, o, depthwise=depthwise, transposed=False)


def _conv_draw(node: Node, ctx: TextureContext, packed: np.ndarray, o: int, *, depthwise: bool,
               transposed: bool) -> None:
    """One draw of the convolution shader with weights ``packed`` [KH][KW][Cin padded][Cout padded]
    (depthwise: [KH][KW][C padded]) and ``o`` output channels."""
    x, out = node.inputs[0], node.outputs[0]
    _, c, h, wd = x.shape
    kh, kw = packed.shape[:2]
    w_ref = ctx.const(packed)
    refs, template, params = _epilogue(ctx, node, o)
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    params.update(x_width=ctx.width(x), w_width=ctx.const_width(w_ref), in_h=h, in_w=wd, in_c4=-(-c // 4),
                  out_h=out.shape[2], out_w=out.shape[3], out_c4=-(-o // 4), out_c=o, kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    template.update(depthwise=depthwise, transposed=transposed)
    ctx.draw("conv2d", node=node, template=template, params=params,
             bindings=[ctx.tensor(x), w_ref] + refs, target=out,
             loops=kh * (1 + kw * (1 + (1 if depthwise else params["in_c4"]))))


@lowers("conv_transpose2d")
def lower_conv_transpose2d(node: Node, ctx: TextureContext) -> None:
    """The convolution shader gathering through the transposed index map (groups = 1)."""
    x, w = node.inputs[0], node.inputs[1]
    if not w.is_constant:
        raise ctx.unsupported(node, "transposed-convolution weights computed at run time")
    if node.attrs["groups"] != 1:
        raise ctx.unsupported(node, f"grouped transposed convolution (groups={node.attrs['groups']})")
    c, (_, o, kh, kw) = x.shape[1], w.shape
    packed = np.zeros((kh, kw, -(-c // 4) * 4, -(-o // 4) * 4), np.float32)
    packed[:, :, :c, :o] = w.value.astype(np.float32).transpose(2, 3, 0, 1)  # [Cin, Cout, KH, KW] -> KH, KW, Cin, Cout
    _conv_draw(node, ctx, packed, o, depthwise=False, transposed=True)


def _batch_texel_strides(shape: tuple[int, ...], phys: list[int], batch: tuple[int, ...]) -> list[int]:
    """Per batch axis of a product: the texel stride of an operand stored as ``phys`` (its logical
    order) whose matrices are ``shape[-2:]``; 0 where it broadcasts (an axis of 1, or none)."""
    strides = [s // 4 for s in padded_strides(phys)][:-2] if len(shape) > 2 else []
    lead = len(batch) - len(strides)
    return [0] * lead + [0 if shape[a] == 1 else strides[a] for a in range(len(strides))]


@lowers("matmul")
def lower_matmul(node: Node, ctx: TextureContext) -> None:
    """Batched products with broadcasting, B constant (packed with zero rows and columns) or
    computed at run time (read as it is stored, row by row)."""
    a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
    if b.rank < 2:
        raise ctx.unsupported(node, f"a matrix-vector product (B of shape {b.shape})")
    for name, t in (("A", a), ("B", b)):
        if not t.is_constant and list(ctx.phys(t)) != list(t.shape):  # (a transposed view that the layouts
            # take for row-major because an axis is 1: its texels hold other values than the shader reads)
            raise ctx.unsupported(node, f"an {name} of shape {t.shape} stored as {tuple(ctx.phys(t))} "
                                        "(transposed); the texture matmul reads rows as they lie, four values a texel")
    sa = a.shape if a.rank > 1 else (1,) + a.shape
    k, cols = b.shape[-2:]
    batch = tuple(np.broadcast_shapes(sa[:-2], b.shape[:-2]))
    if len(batch) > MAX_RANK:
        raise ctx.unsupported(node, f"products with more than {MAX_RANK} batch axes")
    k4, n4 = -(-k // 4), -(-cols // 4)
    if b.is_constant:
        packed = np.zeros(b.shape[:-2] + (k4 * 4, n4 * 4), np.float32)
        packed[..., :k, :cols] = b.value.astype(np.float32)
        b_ref, b_phys, b_rows = ctx.const(packed), list(packed.shape), k4 * 4
    else:
        b_ref, b_phys, b_rows = ctx.tensor(b), ctx.phys(b), k
    a_ref, a_phys = ctx.tensor(a), ctx.phys(a) if not a.is_constant else list(a.shape)
    refs, template, params = _epilogue(ctx, node, cols)
    params.update(a_width=ctx.width(a_ref), b_width=ctx.width(b_ref), k4=k4,
                  n4=n4, n=cols, m=sa[-2], b_rows=b_rows, batch=pack_dims(list(batch), 1),
                  a_strides=pack_dims(_batch_texel_strides(sa, a_phys if a.rank > 1 else [1] + a_phys, batch), 0),
                  b_strides=pack_dims(_batch_texel_strides(b.shape, b_phys, batch), 0))
    template["batch_rank"] = len(batch)
    ctx.draw("matmul", node=node, template=template, params=params, bindings=[a_ref, b_ref] + refs, target=out,
             loops=k4)


@lowers("pool2d")
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
             bindings=[ctx.tensor(x)], target=out, loops=kh * (1 + kw))


@lowers("softmax")
def lower_softmax(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    phys = ctx.phys(x)
    k = ctx.perm(x).index(node.attrs["axis"] % x.rank)
    strides = padded_strides(phys)
    params = {"x_width": ctx.width(x), "last": phys[-1], "last_padded": -(-phys[-1] // 4) * 4,
              "axis_size": phys[k], "axis_stride": strides[k], "axis_is_last": int(k == len(phys) - 1)}
    walk = params["last_padded"] // 4 if k == len(phys) - 1 else phys[k]  # (texels a pass reads)
    ctx.draw("softmax", node=node, template={"log": node.attrs.get("log", False)}, params=params,
             bindings=[ctx.tensor(x)], target=out, loops=2 * walk)


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


@lowers("binary")
def lower_binary(node: Node, ctx: TextureContext) -> None:
    _elementwise(ctx, node, node.outputs[0], node.inputs[0], node.inputs[1], op=node.attrs["kind"],
                 activation=node.attrs.get("activation"))


@lowers("activation")
def lower_activation(node: Node, ctx: TextureContext) -> None:
    act = node.attrs["activation"]
    if act.kind == "prelu":
        _elementwise(ctx, node, node.outputs[0], node.inputs[0], node.inputs[1], op="prelu")
    else:
        _elementwise(ctx, node, node.outputs[0], node.inputs[0], activation=act)


@lowers("identity", "relayout", "cast")
def lower_copy(node: Node, ctx: TextureContext) -> None:
    if node.op == "cast" and node.attrs["to"] != node.inputs[0].dtype:
        raise ctx.unsupported(node, f"Cast to {node.attrs['to']}")
    _elementwise(ctx, node, node.outputs[0], node.inputs[0])


@lowers("reshape")
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


@lowers("slice")
def lower_slice(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    full = _strides_for(ctx, x, x, x.shape)  # per physical axis of x, which is out's order too
    perm = ctx.perm(x)
    steps, starts = node.attrs["steps"], node.attrs["starts"]
    strides = [full[k] * steps[axis] for k, axis in enumerate(perm)]
    base = sum(full[k] * starts[axis] for k, axis in enumerate(perm))
    _elementwise(ctx, node, out, x, a_strides=strides, a_base=base)


@lowers("concat")
def lower_concat(node: Node, ctx: TextureContext) -> None:
    out = node.outputs[0]
    first, second = node.inputs
    axis = ctx.perm(out).index(node.attrs["axis"] % out.rank)
    _elementwise(ctx, node, out, first, second, concat=(axis, first.shape[node.attrs["axis"] % out.rank]))


@lowers("pad")
def lower_pad(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    phys, perm = ctx.phys(out), ctx.perm(out)
    if len(phys) > MAX_RANK:
        raise ctx.unsupported(node, f"tensors of more than {MAX_RANK} dimensions")
    params = {"x_width": ctx.width(x), "last": phys[-1], "value": float(node.attrs["value"]),
              "out_shape": pack_dims(phys[:-1] + [-(-phys[-1] // 4) * 4], 1),
              "in_shape": pack_dims([x.shape[a] for a in perm] or [1], 1),
              "in_strides": pack_dims(_strides_for(ctx, x, out, out.shape), 0),
              "begins": pack_dims([node.attrs["pads"][a] for a in perm] or [0], 0)}
    ctx.draw("pad", node=node, template={"rank": len(phys), "mode": node.attrs["mode"]}, params=params,
             bindings=[ctx.tensor(x)], target=out)


@lowers("reduce")
def lower_reduce(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    axes = set(node.attrs["axes"])
    in_perm = ctx.perm(x)
    own = padded_strides(ctx.phys(x))
    stride = {axis: own[k] for k, axis in enumerate(in_perm)}  # logical axis -> padded element stride
    kept = [a for a in range(x.rank) if a not in axes]
    source = (lambda a: a) if node.attrs["keepdims"] else (lambda a: kept[a])  # out axis -> input axis
    phys = ctx.phys(out)
    out_strides = [0 if source(a) in axes else stride[source(a)] for a in ctx.perm(out)] if out.rank else [0]
    red_order = [a for a in in_perm if a in axes]
    red_shape, (red_strides,) = merge_dims([x.shape[a] for a in red_order] or [1],
                                           [[stride[a] for a in red_order] or [0]])
    if len(phys) > MAX_RANK or len(red_shape) > MAX_RANK:
        raise ctx.unsupported(node, f"tensors of more than {MAX_RANK} dimensions")
    params, template = reduction_uniforms(node, red_shape, red_strides)
    params.update(x_width=ctx.width(x), last=phys[-1], out_shape=pack_dims(phys[:-1] + [-(-phys[-1] // 4) * 4], 1),
                  out_strides=pack_dims(out_strides, 0))
    template["out_rank"] = len(phys)
    ctx.draw("reduce", node=node, template=template, params=params, bindings=[ctx.tensor(x)], target=out,
             loops=4 * params["reduce_size"] * (2 if template["needs_max"] else 1))  # (a texel's four lanes each)


@lowers("resize")
def lower_resize(node: Node, ctx: TextureContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if ctx.perm(x) != NHWC or ctx.perm(out) != NHWC:
        raise ctx.unsupported(node, "resize outside the channels-last layout")
    positions, params, template = resize_uniforms(node)
    table = ctx.const(positions)
    params.update(x_width=ctx.width(x), table_width=ctx.const_width(table), c4=-(-x.shape[1] // 4))
    ctx.draw("resize", node=node, template=template, params=params, bindings=[ctx.tensor(x), table], target=out,
             loops=4 * params.get("taps_h", 1) * (1 + params.get("taps_w", 1)))  # (an antialiasing filter's taps)
