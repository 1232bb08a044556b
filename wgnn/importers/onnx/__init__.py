"""ONNX -> OpBuilder. Each ONNX op is a small function of (builder, node, inputs, attrs),
registered with ``@converts`` in the module of its family: ``nn`` (convolution, pooling,
normalization, matrix products, recurrent, resize), ``elementwise`` (activations, arithmetic,
comparisons) and ``tensor`` (shapes, data movement, reductions, constants). Ops made of other ops
(3-D transposed convolution and pooling, training-mode batch norm, seeded dropout, instance and
layer normalization) are ``OpBuilder`` methods, so every front end has them.

Old-style models (initializers also listed as graph inputs) are read as constants. Symbolic input
dimensions default to 1 unless ``input_shapes`` says otherwise.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np

from ...builder import OpBuilder
from ...errors import (
    DataDependentShape,
    GraphError,
    InputValuesNeeded,
    ModelLoadError,
    StaticValueNeeded,
    UnsupportedOperatorError,
    ValueComputedOnGPU,
)
from ...graph import FLOAT_DTYPES, Graph, Operand
from . import composed, contrib, data_dependent, elementwise, nn, quant, tensor  # noqa: F401  (fill CONVERTERS)
from .common import (
    CONVERTERS,
    ONNX_DTYPES,
    SEQUENCE_OPS,
    Inputs,
    NodeInfo,
    converts,
    host_dtype,
)
from .proto import (
    AttributeProto,
    FunctionProto,
    ModelProto,
    NodeProto,
    TensorProto,
    TypeProto,
    attribute_value,
    full,
    to_array,
)

__all__ = ["CONVERTERS", "SUPPORTED_OPS", "all_nodes", "default_opset", "load_model", "op_key", "read_model"]


# The newest opset of onnx 1.16, the oldest onnx package wgnn takes: opsets up to it are known
# without asking the installed package (whose schemas' import takes 0.6 s, ``proto``).
ONNX_OPSETS = 21


def read_model(model: str | Path | bytes | Any) -> Any:
    """An ``onnx.ModelProto`` from a path, bytes or a ModelProto, with clear errors."""
    if isinstance(model, ModelProto):
        _check_names(model, "the given ModelProto")
        return _in_order(model, copy=True)
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise ModelLoadError(f"model file {str(path)!r} does not exist")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {str(path)!r}: {exc}") from exc
        source = repr(str(path))
    elif isinstance(model, (bytes, bytearray, memoryview)):
        data, source = bytes(model), "the given bytes"
    else:
        raise ModelLoadError(f"expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
    if not data:
        raise ModelLoadError(f"{source} is empty, not an ONNX model")
    proto = ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:
        raise ModelLoadError(f"{source} is not a valid ONNX model (protobuf parse failed: "
                             f"{type(exc).__name__})") from None
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise ModelLoadError(f"{source} parsed, but holds no ONNX graph (is it an ONNX model?)")
    _check_names(proto, source)
    if isinstance(model, (str, Path)):
        _load_external_data(proto, Path(model).parent, source)
    return _in_order(proto, copy=False)


def _in_order(proto, *, copy: bool):
    """``proto`` with every graph's nodes in an order where each reads only values defined before
    it, as ONNX asks and ONNX Runtime does not insist on (its float16 converter appends the casts it
    adds at the end of the graph): the same proto where they are (the usual case, checked in one
    walk), else one with them sorted (a copy where ``copy``: the caller's model stays as given).
    Nodes keep their order wherever their inputs allow; a graph whose nodes no order satisfies (a
    cycle, a value nothing defines) is left as it is, for the importer to name what is missing."""
    graphs = list(subgraphs(proto.graph))
    orders = [_sorted_order(g) for g in graphs]
    if all(order is None for order in orders):
        return proto
    if copy:
        given, proto = proto, type(proto)()
        proto.CopyFrom(given)
        graphs = list(subgraphs(proto.graph))
    for g, order in reversed(list(zip(graphs, orders))):  # (a subgraph before the graph whose node holds it:
        if order is not None:                             # moving that node copies the subgraph as sorted)
            nodes = [type(g.node[0])() for _ in order]
            for node, k in zip(nodes, order):
                node.CopyFrom(g.node[k])
            del g.node[:]
            g.node.extend(nodes)
    return proto


def _sorted_order(g) -> list[int] | None:
    """The order (indices into ``g.node``) that sorts ``g``'s nodes, each after the nodes whose
    outputs it reads (in its subgraphs too; what no node of ``g`` makes comes from outside it), the
    earliest first among those ready; None where they are in order already or no order sorts them."""
    produced = {o: k for k, node in enumerate(g.node) for o in node.output if o}
    needs = [{produced[i] for i in _reads(node) if i in produced} - {k} for k, node in enumerate(g.node)]
    if all(all(j < k for j in need) for k, need in enumerate(needs)):
        return None
    users: dict[int, list[int]] = {}
    for k, need in enumerate(needs):
        for j in need:
            users.setdefault(j, []).append(k)
    waiting = [len(need) for need in needs]
    ready = [k for k, count in enumerate(waiting) if not count]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for user in users.get(k, []):
            waiting[user] -= 1
            if not waiting[user]:
                heapq.heappush(ready, user)
    return order if len(order) == len(needs) else None


def _reads(node) -> set[str]:
    """The values ``node`` reads: its inputs, and what its subgraphs read from outside them."""
    names = {i for i in node.input if i}
    for a in node.attribute:
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            inner, read = set(), set()
            for g in subgraphs(sub):
                inner.update(v.name for v in list(g.input) + list(g.initializer))
                for n in g.node:
                    inner.update(n.output)
                    read.update(i for i in n.input if i)
            names |= read - inner
    return names


def _check_names(proto, source: str) -> None:
    """A clear error for a name that is not UTF-8 text, which protobuf gives as the bytes it read
    (ONNX's string fields are proto2's, not checked when parsed): a damaged file's node or value
    name, which would otherwise fail deep in the compiler."""
    for g in subgraphs(proto.graph):
        for kind, value in (("graph input", g.input), ("graph output", g.output), ("initializer", g.initializer)):
            for v in value:
                if not isinstance(v.name, str):
                    raise ModelLoadError(f"{source}: a {kind}'s name is not UTF-8 text ({v.name!r}): is the file "
                                         "damaged?")
        for i, node in enumerate(g.node):
            for text in (node.name, node.op_type, node.domain, *node.input, *node.output,
                         *(a.name for a in node.attribute)):
                if not isinstance(text, str):
                    raise ModelLoadError(f"{source}: node {i} ({node.op_type!r}) has a name that is not UTF-8 text "
                                         f"({text!r}): is the file damaged?")


def _load_external_data(proto, folder: Path, source: str) -> None:
    """Weights a model keeps in files beside it (``save_as_external_data``, every model over 2 GB),
    read into ``proto`` from ``folder``, as ONNX Runtime reads them from the model's directory."""
    tensors = [t for g in subgraphs(proto.graph) for t in g.initializer]
    tensors += [t for node in all_nodes(proto.graph) for a in node.attribute for t in [a.t, *a.tensors]]
    stored = [t for t in tensors if t.data_location == TensorProto.EXTERNAL]
    if not stored:
        return
    external = full().external_data_helper
    try:
        external.load_external_data_for_model(proto, str(folder))
    except Exception as exc:  # noqa: BLE001 - a missing, short or unreachable weights file
        files = sorted({e.value for t in stored for e in t.external_data if e.key == "location"})
        raise ModelLoadError(f"{source} keeps weights in external file(s) {files}, which cannot be read from "
                             f"{str(folder)!r}: {type(exc).__name__}: {exc}") from None


def op_key(node) -> str:
    """How converters know an ONNX node: a default-domain op by its name, any other (com.microsoft's)
    as domain.name."""
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def default_opset(proto, default: int | None = None) -> int | None:
    """The default-domain opset a model (or function) imports, else ``default``."""
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default)


def _static_shape(name: str, ttype, override) -> tuple[tuple[int, ...], str]:
    dtype = ONNX_DTYPES.get(ttype.elem_type)
    if dtype is None:
        raise ModelLoadError(f"input {name!r} has ONNX element type {ttype.elem_type}, which wgnn does not handle")
    if override is not None:
        if any(isinstance(d, bool) or not float(d).is_integer() or int(d) < 0 for d in override):
            raise ModelLoadError(f"input_shapes[{name!r}] = {tuple(override)}: dimensions are whole numbers (0 or "
                                 "more)")
        return tuple(int(d) for d in override), dtype
    dims = []
    for d in ttype.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1)
    return tuple(dims), dtype


def _graph_input(b: OpBuilder, value_info, overrides: dict) -> Operand | list[Operand]:
    """A graph input: a tensor, or a sequence of tensors (a list of inputs ``name[i]``, as many as
    ``overrides[name]`` gives element shapes). An optional input is its value's type; one fed
    without a value (None) is refused."""
    name, vtype = value_info.name, value_info.type
    override = overrides.get(name)
    if vtype.HasField("optional_type"):
        if name in overrides and override is None:
            raise ModelLoadError(f"optional input {name!r} given without a value: wgnn compiles optional inputs "
                                 "that hold one")
        vtype = vtype.optional_type.elem_type
    if vtype.HasField("sequence_type"):
        elem = vtype.sequence_type.elem_type
        if not elem.HasField("tensor_type"):
            raise ModelLoadError(f"input {name!r} is a sequence of non-tensors, which wgnn does not handle")
        if override is None:
            raise ModelLoadError(f"input {name!r} is a sequence: input_shapes must give the shape of each element, "
                                 f"as in input_shapes={{{name!r}: [(2, 3), (2, 3)]}}")
        return [b.input(f"{name}[{i}]", *_static_shape(name, elem.tensor_type, shape))
                for i, shape in enumerate(override)]
    return b.input(name, *_static_shape(name, vtype.tensor_type, override))


def describe_io(model: str | Path | bytes | Any) -> tuple[list, list]:
    """(inputs, outputs) as the model declares them, without importing it: (name, dims, dtype) for
    each tensor input (initializers left out) and output; a dim is a size, a symbol's name or None,
    and an output declared without a shape has dims None."""
    proto = read_model(model)
    inits = {i.name for i in proto.graph.initializer}

    def dims(ttype):
        if not ttype.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None)
                for d in ttype.shape.dim]

    def entries(values, skip=()):
        return [(v.name, dims(v.type.tensor_type), ONNX_DTYPES.get(v.type.tensor_type.elem_type, "float32"))
                for v in values if v.name not in skip and v.type.HasField("tensor_type")]

    return entries(proto.graph.input, inits), entries(proto.graph.output)


def subgraphs(graph):
    """``graph`` and every graph in its nodes' attributes (an If's branches), at every depth."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from subgraphs(sub)


def all_nodes(graph):
    """The nodes of ``graph`` and of its subgraphs."""
    return (node for g in subgraphs(graph) for node in g.node)


def _names_read(g) -> set[str]:
    """Every value name a node reads, in ``g`` and in its subgraphs (which read outer values too),
    and the outputs of ``g`` and of its subgraphs (an If's node outputs are its branch's)."""
    return {i for node in all_nodes(g) for i in node.input} | {o.name for sub in subgraphs(g) for o in sub.output}


def _import_nodes(b: OpBuilder, nodes, env: dict, opset: int, used: set[str], scope: str = "",
                  rename: bool = False) -> None:
    """Convert ``nodes`` in order, reading and extending ``env`` (value name -> operand); ``scope``
    prefixes the names made up for unnamed nodes (a branch of an If: "If_3/then/"), and with
    ``rename`` every node's name (an unrolled loop's step: "Loop_2/4/")."""
    for index, node in enumerate(nodes):
        name = f"{scope}{node.name}" if rename and node.name else node.name or f"{scope}{node.op_type}_{index}"
        key = op_key(node)
        convert = CONVERTERS.get(key)
        if convert is None and key not in CONTROL_FLOW:
            body = _function_body(node, opset, env)
            if body is None:
                raise UnsupportedOperatorError(key, name, opset)
            _inline(b, node, name, body, env, used, opset)
            continue
        inputs: Inputs = []
        for i in node.input:
            if i == "":
                inputs.append(None)
            elif i not in env:
                raise ModelLoadError(f"node {name!r} ({node.op_type}) reads {i!r}, which no earlier node, "
                                     "input or initializer defines")
            else:
                inputs.append(env[i])
        if node.op_type not in SEQUENCE_OPS and any(isinstance(i, list) for i in inputs):
            raise UnsupportedOperatorError(node.op_type, name, opset, "a sequence input (of the sequence "
                                           f"ops, wgnn has {sorted(SEQUENCE_OPS)})")
        attrs = {a.name: attribute_value(a) for a in node.attribute}
        node_info = NodeInfo(name, node.op_type, opset, len(node.output))
        try:
            if convert is None:
                result = CONTROL_FLOW[key](b, node_info, inputs, attrs, env, used)
            else:
                result = convert(b, node_info, inputs, attrs)
        except DataDependentShape:  # its output's size follows from values the GPU computes
            if scope or rename:
                raise UnsupportedOperatorError(node.op_type, name, opset, "its output's shape depends on values "
                                               "computed on the GPU, which wgnn takes only in the main graph (not "
                                               "in an If, Loop or function body)") from None
            raise DataDependentShape(node.op_type, name, index) from None  # the session stages the model here
        except ValueComputedOnGPU as exc:
            if scope or rename or exc.node_name != name or not index:  # in a subgraph (or first): refused
                raise
            raise DataDependentShape(node.op_type, name, index) from exc  # the session stages the model here
        except StaticValueNeeded as exc:
            _value_needed(exc, node, name, None if scope or rename else index, env)
        except (GraphError, UnsupportedOperatorError, InputValuesNeeded, ModelLoadError):
            raise
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, ZeroDivisionError, OverflowError) as exc:
            raise GraphError(f"{node.op_type} node {name!r}: {type(exc).__name__}: {exc}") from exc
        outs = result if isinstance(result, list) else [result]
        for out_name, operand in zip(node.output, outs):
            if out_name:
                env[out_name] = operand
        if len([o for o in node.output if o]) > len(outs):
            extra = [o for o in node.output[len(outs):] if o]
            if any(e in used for e in extra):
                raise UnsupportedOperatorError(node.op_type, name, opset, f"its optional outputs {extra}")


@converts(*data_dependent.OPS)
def _data_dependent(b: OpBuilder, node: NodeInfo, ins: Inputs, attrs: dict):
    """A node whose output shape follows from its input values (``data_dependent.OPS``): computed now
    where those values are known when compiling; else ``DataDependentShape``, for the session to run
    the model in stages around it (``_import_nodes`` gives it the node's place, or refuses it in a
    subgraph)."""
    values = [None if x is None else b.static_value(x) for x in ins]
    if any(x is not None and v is None for x, v in zip(ins, values)):
        raise DataDependentShape(node.op_type, node.name, None)
    try:
        results = data_dependent.run(node.op_type, values, attrs, node.outputs)
    except (ValueError, TypeError, IndexError) as exc:
        raise GraphError(f"{node.op_type} node {node.name!r}: {exc}") from exc
    return [b.constant(host_dtype(value), name=f"{node.name}/{k}") for k, value in enumerate(results)]


SMALL_INPUT = 16  # the most elements an (integer or bool) input may have for a plan per value of it


def _inputs_behind(operand: Operand) -> list[Operand]:
    """The graph inputs whose values ``operand``'s value depends on (through no shape of theirs)."""
    found: dict[str, Operand] = {}
    seen, stack = set(), [operand]
    while stack:
        o = stack.pop()
        if o is None or id(o) in seen or o.is_constant or getattr(o, "_static", None) is not None:
            continue
        seen.add(id(o))
        if o.is_input:
            found[o.name] = o
        elif o.producer is not None and o.producer.op != "shape":
            stack.extend(o.producer.inputs)
    return list(found.values())


def _small_inputs_behind(operand: Operand, node_name: str, op_type: str) -> list[Operand]:
    """The graph inputs ``operand``'s value depends on; where they are all small integer or bool
    ones, ``InputValuesNeeded`` for them (a plan per value)."""
    behind = _inputs_behind(operand)
    if behind and all(int(np.prod(o.shape)) <= SMALL_INPUT and o.dtype not in FLOAT_DTYPES for o in behind):
        raise InputValuesNeeded([o.name for o in behind], node_name, op_type)
    return behind


def _value_needed(exc: StaticValueNeeded, node, name: str, index: int | None, env: dict) -> None:
    """A value ``node`` needs when compiling (a Reshape's shape) depends on graph inputs. Small
    inputs (the value itself, or integer and bool ones it comes from): a plan per value of them
    (``InputValuesNeeded``). Else, in the main graph, a small value the GPU computes that is one of
    the node's inputs: ``DataDependentShape``, for the session to run the model in stages, the node
    starting the next one, which then has the value as a small input. Else the error as it was."""
    operand = exc.operand
    small = int(np.prod(operand.shape)) <= SMALL_INPUT
    if operand.is_input and small:
        raise InputValuesNeeded([operand.name], name, node.op_type) from exc
    _small_inputs_behind(operand, name, node.op_type)
    if index and small and any(env.get(i) is operand for i in node.input if i):
        raise DataDependentShape(node.op_type, name, index) from exc
    raise exc


def _known(b: OpBuilder, node: NodeInfo, operand: Operand, what: str) -> np.ndarray:
    """The value of ``operand`` (an If's condition, a Loop's trip count), which the static graph needs
    when compiling: from constants and shapes, or from small inputs, whose values the session then
    compiles for (``InputValuesNeeded``); else an error naming the node."""
    value = b.static_value(operand)
    if value is None:
        behind = _small_inputs_behind(operand, node.name, node.op_type)
        source = f" from input(s) {[o.name for o in behind]}" if behind else ""
        raise ValueComputedOnGPU(node.op_type, node.name, node.opset,
                                 f"its {what} {operand.name!r} is computed on the GPU{source}; wgnn compiles static "
                                 f"graphs and takes an {node.op_type} whose {what} is known when compiling (from "
                                 f"constants, shapes, or integer or bool inputs of at most {SMALL_INPUT} elements, "
                                 "whose values it compiles for), or, in the main graph, runs the model in stages "
                                 "around it")
    if value.size != 1:
        raise GraphError(f"{node.op_type} node {node.name!r}: its {what} has {value.size} elements, expected 1")
    return value


def _import_if(b: OpBuilder, node: NodeInfo, inputs: Inputs, attrs: dict, env: dict, used: set[str]) -> list:
    """ONNX If: the branch its condition chooses, imported in place (a static graph has one path).
    The condition must be known when compiling (``_known``)."""
    cond = inputs[0] if inputs else None
    if cond is None:
        raise GraphError(f"If node {node.name!r} has no condition input")
    value = _known(b, node, cond, "condition")
    which = "then" if bool(value.reshape(-1)[0]) else "else"
    branch = attrs.get(f"{which}_branch")
    if branch is None:
        raise GraphError(f"If node {node.name!r} has no {which}_branch")
    scope = _body_scope(b, branch, env, f"{node.name}/")  # what the branch defines stays inside it
    _import_nodes(b, branch.node, scope, node.opset, used, scope=f"{node.name}/{which}/")
    missing = [o.name for o in branch.output if o.name not in scope]
    if missing:
        raise ModelLoadError(f"If node {node.name!r}: its {which}_branch's outputs {missing} are not produced by "
                             "any node of it")
    if len(branch.output) != node.outputs:
        raise GraphError(f"If node {node.name!r}: its {which}_branch has {len(branch.output)} outputs, the node "
                         f"{node.outputs}")
    return [scope[o.name] for o in branch.output]


MAX_STEPS = 4096  # the most steps a Loop or Scan is unrolled to


def _body_scope(b: OpBuilder, body, env: dict, prefix: str) -> dict:
    """The values a subgraph sees: the outer ones, and its initializers."""
    scope = dict(env)
    for init in body.initializer:
        scope[init.name] = b.constant(host_dtype(to_array(init)), name=f"{prefix}{init.name}")
    return scope


def _run_body(b: OpBuilder, node: NodeInfo, body, scope: dict, used: set[str], prefix: str) -> list:
    _import_nodes(b, body.node, scope, node.opset, used, scope=prefix, rename=True)
    missing = [o.name for o in body.output if o.name not in scope]
    if missing:
        raise ModelLoadError(f"{node.op_type} node {node.name!r}: its body's outputs {missing} are not produced by "
                             "any node of it")
    return [scope[o.name] for o in body.output]


def _stack(b: OpBuilder, name: str, parts: list, axis: int, reverse: bool = False) -> Operand:
    parts = parts[::-1] if reverse else parts
    axis %= parts[0].rank + 1
    return b.concat([b.unsqueeze(p, [axis], name=f"{name}/{k}") for k, p in enumerate(parts)], axis=axis, name=name)


def _import_loop(b: OpBuilder, node: NodeInfo, inputs: Inputs, attrs: dict, env: dict, used: set[str]) -> list:
    """ONNX Loop, unrolled: its body imported once per step, as many steps as the trip count and the
    condition allow, both known when compiling (``_known``: the condition after every step too).
    Loop-carried values flow from step to step; scan outputs are stacked along a new first axis."""
    body = attrs["body"]
    inputs = list(inputs) + [None] * (2 - len(inputs))
    trip = None if inputs[0] is None else int(_known(b, node, inputs[0], "trip count").reshape(-1)[0])
    going = True if inputs[1] is None else bool(_known(b, node, inputs[1], "condition").reshape(-1)[0])
    values = list(inputs[2:])
    n_scan = len(body.output) - 1 - len(values)
    scans: list[list] = [[] for _ in range(n_scan)]
    step = 0
    while going and (trip is None or step < trip):
        if step >= MAX_STEPS:
            raise node.unsupported(f"more than {MAX_STEPS} steps (each step's nodes are copied into the graph)")
        prefix = f"{node.name}/{step}/"
        scope = _body_scope(b, body, env, prefix)
        scope[body.input[0].name] = b.constant(np.array(step, np.int64), name=f"{prefix}i")
        scope[body.input[1].name] = b.constant(np.array(going), name=f"{prefix}cond")
        for vi, value in zip(body.input[2:], values):
            scope[vi.name] = value
        outs = _run_body(b, node, body, scope, used, prefix)
        going = bool(_known(b, node, outs[0], "condition").reshape(-1)[0])
        values = outs[1:1 + len(values)]
        for k, part in enumerate(outs[1 + len(values):]):
            scans[k].append(part)
        step += 1
    if n_scan and not step:
        raise node.unsupported("scan outputs of a loop that runs no step (their element shape is unknown)")
    return [b.identity(v, name=f"{node.name}/out{k}") if not isinstance(v, list) else v
            for k, v in enumerate(values)] + [_stack(b, f"{node.name}/scan{k}", parts, 0)
                                             for k, parts in enumerate(scans)]


def _import_scan(b: OpBuilder, node: NodeInfo, inputs: Inputs, attrs: dict, env: dict, used: set[str]) -> list:
    """ONNX Scan (opset 9 on), unrolled over its scan inputs' (static) length: each step reads one
    slice of every scan input (from the end where its direction is 1), carries the states on, and
    its scan outputs are stacked along their axes (in reverse where their direction is 1)."""
    if node.opset < 9:
        return _import_scan8(b, node, inputs, attrs, env, used)
    body = attrs["body"]
    n_in = int(attrs["num_scan_inputs"])
    states, xs = list(inputs[:len(inputs) - n_in]), list(inputs[len(inputs) - n_in:])
    in_axes = [int(a) % x.rank for a, x in zip(attrs.get("scan_input_axes", [0] * n_in), xs)]
    in_dirs = list(attrs.get("scan_input_directions", [0] * n_in))
    lengths = {x.shape[a] for x, a in zip(xs, in_axes)}
    if len(lengths) != 1:
        raise GraphError(f"Scan node {node.name!r}: its scan inputs have different lengths {sorted(lengths)}")
    length = lengths.pop()
    if length > MAX_STEPS:
        raise node.unsupported(f"{length} steps, more than {MAX_STEPS} (each step's nodes are copied into the graph)")
    n_out = len(body.output) - len(states)
    out_axes = list(attrs.get("scan_output_axes", [0] * n_out))
    out_dirs = list(attrs.get("scan_output_directions", [0] * n_out))
    scans: list[list] = [[] for _ in range(n_out)]
    for step in range(length):
        prefix = f"{node.name}/{step}/"
        scope = _body_scope(b, body, env, prefix)
        for vi, value in zip(body.input, states):
            scope[vi.name] = value
        for k, (vi, x) in enumerate(zip(body.input[len(states):], xs)):
            t = length - 1 - step if in_dirs[k] else step
            piece = b.slice(x, [t], [t + 1], axes=[in_axes[k]], name=f"{prefix}x{k}")
            scope[vi.name] = b.squeeze(piece, [in_axes[k]], name=f"{prefix}x{k}s")
        outs = _run_body(b, node, body, scope, used, prefix)
        states = outs[:len(states)]
        for k, part in enumerate(outs[len(states):]):
            scans[k].append(part)
    if n_out and not length:
        raise node.unsupported("scan outputs of no steps (their element shape is unknown)")
    return [b.identity(v, name=f"{node.name}/state{k}") for k, v in enumerate(states)] + [
        _stack(b, f"{node.name}/scan{k}", parts, out_axes[k], bool(out_dirs[k])) for k, parts in enumerate(scans)]


def _import_scan8(b: OpBuilder, node: NodeInfo, inputs: Inputs, attrs: dict, env: dict, used: set[str]) -> list:
    """Scan of opset 8: every input has a batch axis first, and the scan runs per batch element (its
    sequence_lens, when given, must be the whole length): the later Scan once per element, stacked."""
    lens, rest = inputs[0], list(inputs[1:])
    n_in = int(attrs["num_scan_inputs"])
    batch = rest[0].shape[0]
    if lens is not None:
        steps = b.require_static(lens, "Scan's sequence_lens", node.name)
        full = rest[-n_in].shape[1]
        if np.any(steps != full):
            raise node.unsupported(f"sequence_lens {steps.tolist()} shorter than the {full} steps")
    later = dict(attrs, scan_input_directions=attrs.get("directions", [0] * n_in))
    per_element = []
    for k in range(batch):
        one = [b.squeeze(b.slice(t, [k], [k + 1], axes=[0], name=f"{node.name}/b{k}_{j}"), [0],
                         name=f"{node.name}/b{k}_{j}s") for j, t in enumerate(rest)]
        element = NodeInfo(f"{node.name}/b{k}", node.op_type, 9, node.outputs)
        per_element.append(_import_scan(b, element, one, later, env, used))
    return [_stack(b, f"{node.name}/out{j}", [outs[j] for outs in per_element], 0)
            for j in range(len(per_element[0]))]


def _import_sequence_map(b: OpBuilder, node: NodeInfo, inputs: Inputs, attrs: dict, env: dict,
                         used: set[str]) -> list:
    """ONNX SequenceMap, unrolled: the body once per element of the sequences (a tensor input is
    the same for every element); each output is the sequence of the body's results."""
    body = attrs["body"]
    lengths = {len(t) for t in inputs if isinstance(t, list)}
    if len(lengths) != 1 or not isinstance(inputs[0], list):
        raise GraphError(f"SequenceMap node {node.name!r}: its first input must be a sequence, and every sequence "
                         f"input of one length (got {sorted(lengths)})")
    results: list[list] = [[] for _ in body.output]
    for k in range(lengths.pop()):
        prefix = f"{node.name}/{k}/"
        scope = _body_scope(b, body, env, prefix)
        for vi, t in zip(body.input, inputs):
            scope[vi.name] = t[k] if isinstance(t, list) else t
        for j, out in enumerate(_run_body(b, node, body, scope, used, prefix)):
            results[j].append(b.identity(out, name=f"{prefix}out{j}"))
    return results


# Ops ONNX defines as functions of other ops, imported as their bodies where wgnn has no converter
# of its own (``_inline``); what their bodies use must be supported in turn.
FUNCTION_OPS = ("AffineGrid", "Attention", "CausalConvWithState", "LinearAttention", "NegativeLogLikelihoodLoss",
                "RMSNormalization", "RotaryEmbedding", "SoftmaxCrossEntropyLoss", "SwiGLU")


def _function_body(node, opset: int, env: dict):
    """The FunctionProto ONNX defines ``node`` (a default-domain op) as, at the model's opset, or
    None. Context-dependent functions are asked for with the inputs' element types and shapes."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in FUNCTION_OPS:
        return None
    try:
        schema = full().defs.get_schema(node.op_type, opset, "")
    except Exception:  # noqa: BLE001 - no schema at this opset: unsupported
        return None
    if schema.has_function:
        versions = [v for v in schema.function_opset_versions if v <= opset]
        if versions:
            return FunctionProto.FromString(schema.get_function_with_opset_version(max(versions)))
    if schema.has_context_dependent_function:
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= opset]
        if versions:
            codes = {v: k for k, v in ONNX_DTYPES.items()}
            types = []
            for name in node.input:
                value = env.get(name) if name else None
                if value is None or isinstance(value, list):
                    types.append(TypeProto().SerializeToString())
                else:
                    types.append(full().helper.make_tensor_type_proto(codes.get(value.dtype, 1), list(value.shape))
                                 .SerializeToString())
            data = schema.get_context_dependent_function_with_opset_version(max(versions), node.SerializeToString(),
                                                                              types)
            return FunctionProto.FromString(data) if data else None
    return None


def _inline(b: OpBuilder, node, name: str, body, env: dict, used: set[str], opset: int) -> None:
    """Import ``node`` as its function ``body``: formal inputs bound to the node's, attributes that
    refer to the node's (``ref_attr_name``) given its values or the schema's defaults, the body's
    nodes named under the node's name, in the body's own opset."""
    schema = full().defs.get_schema(node.op_type, opset, "")
    given = {a.name: a for a in node.attribute}
    defaults = {k: a.default_value for k, a in schema.attributes.items() if a.default_value.type}
    local: dict = {}
    for formal, actual in zip(body.input, node.input):
        if actual:
            local[formal] = env[actual]
    nodes = []
    for inner in body.node:
        copy = NodeProto()
        copy.CopyFrom(inner)
        del copy.attribute[:]
        for attr in inner.attribute:
            if not attr.ref_attr_name:
                copy.attribute.append(attr)
                continue
            source = given.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
            if source is not None:
                ref = AttributeProto()
                ref.CopyFrom(source)
                ref.name = attr.name
                copy.attribute.append(ref)
        nodes.append(copy)
    inner_opset = default_opset(body, opset)
    _import_nodes(b, nodes, local, inner_opset, used, scope=f"{name}/", rename=True)
    wanted = [(out_name, formal) for out_name, formal in zip(node.output, body.output) if out_name]
    missing = [formal for _, formal in wanted if formal not in local]
    if missing:
        raise UnsupportedOperatorError(node.op_type, name, opset, f"its outputs {missing} (its function body, at "
                                       "these inputs and attributes, does not make them)")
    for out_name, formal in wanted:
        env[out_name] = local[formal]


# Ops the importer runs itself (they hold subgraphs): name -> handler.
CONTROL_FLOW = {"If": _import_if, "Loop": _import_loop, "Scan": _import_scan, "SequenceMap": _import_sequence_map}


def load_model(model: str | Path | bytes | Any, *, input_shapes: dict[str, tuple[int, ...]] | None = None,
               input_values: dict[str, Any] | None = None,
               arrays: dict[str, np.ndarray] | None = None, as_read: bool = False) -> tuple[Graph, int]:
    """Import an ONNX model; returns (graph, default-domain opset). ``input_values``: values of
    inputs that an ``If`` branches on (``InputValuesNeeded`` names them); the graph keeps them as
    inputs, and its nodes read the values given as constants. ``arrays``: the main graph's
    initializers already read, by name (read-only), which this takes instead of reading them again
    and adds the others to (``ModelSource``). ``as_read``: ``model`` is what ``read_model`` returned
    (its names checked, its nodes in order), imported again for another shape as it is."""
    proto = model if as_read else read_model(model)
    opset = default_opset(proto, 1)
    if not 1 <= opset <= ONNX_OPSETS:  # (a newer opset: is it one the installed onnx package defines?)
        newest = full().defs.onnx_opset_version()
        if not 1 <= opset <= newest:
            raise ModelLoadError(f"the model declares ONNX opset {opset}; wgnn reads opsets 1 to {newest}")
    g = proto.graph
    b = OpBuilder()
    b.opset = opset
    b.shared_arrays = arrays
    env: dict[str, Operand] = {}
    for init in g.initializer:
        if arrays is not None and init.name in arrays:
            env[init.name] = b.constant(arrays[init.name], name=init.name)
            continue
        try:
            value = to_array(init)
        except Exception as exc:
            if init.data_location == TensorProto.EXTERNAL:
                raise ModelLoadError(f"initializer {init.name!r} is stored in an external file, which a model given "
                                     "as bytes cannot point to: load the model by its path (the file beside it is "
                                     "read), or pass onnx.load(path)") from None
            raise ModelLoadError(f"initializer {init.name!r} cannot be read: {exc}") from None
        env[init.name] = b.constant(host_dtype(value), name=init.name)
        if arrays is not None:
            env[init.name].value.setflags(write=False)  # shared by every import: never to be written
            arrays[init.name] = env[init.name].value
    for vi in g.input:
        if vi.name in env:
            continue  # old-style: initializers repeated as inputs
        env[vi.name] = _graph_input(b, vi, input_shapes or {})
        if vi.name in (input_values or {}):
            value = np.asarray(input_values[vi.name])
            operand = env[vi.name]
            if isinstance(operand, list) or value.shape != operand.shape or str(value.dtype) != operand.dtype:
                raise ModelLoadError(f"input_values[{vi.name!r}]: expected a tensor of shape {operand.shape} and "
                                     f"dtype {operand.dtype}, got {value.shape} {value.dtype}")
            env[vi.name] = b.constant(value, name=vi.name)

    _import_nodes(b, g.node, env, opset, _names_read(g))

    outputs, sequences = {}, {}
    for vo in g.output:
        if vo.name not in env:
            raise ModelLoadError(f"graph output {vo.name!r} is not produced by any node")
        value = env[vo.name]
        if isinstance(value, list):  # a sequence: one output per element
            sequences[vo.name] = [f"{vo.name}[{i}]" for i in range(len(value))]
            outputs.update(zip(sequences[vo.name], value))
        else:
            outputs[vo.name] = value
    graph = b.build_graph(outputs, copy=False)  # (the builder is this import's own)
    graph.sequence_inputs = {vi.name: [o.name for o in env[vi.name]] for vi in g.input
                             if isinstance(env[vi.name], list)}
    graph.sequence_outputs = sequences
    for vi in g.input:
        if vi.name in env and not isinstance(env[vi.name], list) and not env[vi.name].is_constant \
                and vi.name not in (input_shapes or {}) and vi.type.HasField("tensor_type"):
            dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None)
                         for d in vi.type.tensor_type.shape.dim)
            if any(not isinstance(d, int) for d in dims):
                graph.symbolic_dims[vi.name] = dims
    return graph, opset



SUPPORTED_OPS: tuple[str, ...] = tuple(sorted({*CONVERTERS, *CONTROL_FLOW, *FUNCTION_OPS}))
