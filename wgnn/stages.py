"""A model run in stages around a node whose output shape depends on values computed on the GPU.

wgnn compiles static plans: every tensor's size is known when compiling. NonZero, Compress, Unique
and NonMaxSuppression (``importers.onnx.data_dependent``) give as many elements as their input
values say, so where those values come from the GPU the model cannot be one plan. An
``InferenceSession`` then runs it as three stages:

- the **head**: the nodes before that node, one session (its own plans, on the GPU), whose outputs
  are the node's inputs and every value the rest of the model reads; they stay in GPU buffers,
  and only the node's inputs are read back;
- the **node**, on the host, on those values (the size of its result is what the next plan needs);
- the **tail**: the nodes after it, one session per set of input shapes (the node's result size,
  the head's output shapes), the ``MAX_TAILS`` most recent kept compiled; its pipelines are shared
  with every other plan on the device, so a new size costs planning and buffers, not shader
  compiles. The head's values reach it on the GPU (copied, not read back).

A tail with another such node is staged again in turn. The model's outputs come from whichever
stage makes them. Sessions are made by the caller (``make_session``), so this module does not
import the session.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InputError, UnsupportedOperatorError
from .importers.onnx import SUPPORTED_OPS, all_nodes, data_dependent, default_opset, op_key
from .importers.onnx.common import ONNX_DTYPES
from .importers.onnx.proto import ModelProto, NodeProto, attribute_value, make_graph, to_array, value_info

MAX_TAILS = 8
_CODES = {v: k for k, v in ONNX_DTYPES.items()}


def _reads(nodes) -> set[str]:
    """Every value name ``nodes`` read, their subgraphs' outer references included (over-counted:
    names a subgraph makes for itself are in too, which only adds values the head already makes)."""
    graph = make_graph(list(nodes), "reads")
    return {i for node in all_nodes(graph) for i in node.input if i}


def _model(proto, nodes, inputs, outputs, initializers, name: str):
    graph = make_graph(list(nodes), f"{proto.graph.name}/{name}", inputs, outputs, initializers)
    return ModelProto(graph=graph, opset_import=list(proto.opset_import), ir_version=proto.ir_version,
                      functions=list(proto.functions))


class Stages:
    """The head, the data-dependent node and the tails of a model split at its ``index``-th node."""

    def __init__(self, proto, index: int, make_session: Callable[..., Any], input_shapes: dict | None = None):
        g = proto.graph
        nodes = []
        for i, original in enumerate(g.node):  # unnamed nodes keep the names the whole model gives them
            nodes.append(NodeProto())
            nodes[-1].CopyFrom(original)
            nodes[-1].name = original.name or f"{original.op_type}_{i}"
        head_nodes, node = nodes[:index], nodes[index]
        self.node_name, self.op_type, self.node = node.name, node.op_type, node
        # NonZero and the like run on the host; an If or a Loop on a value the GPU computes starts
        # the tail, which compiles a plan per value of it (as for an input's value)
        self.on_host = op_key(node) in data_dependent.OPS
        self._tail_nodes = nodes[index + 1:] if self.on_host else nodes[index:]
        self.attrs = {a.name: attribute_value(a) for a in node.attribute}
        self._proto, self._make = proto, make_session
        self._initializers = {i.name: i for i in g.initializer}
        self.inputs = [vi.name for vi in g.input if vi.name not in self._initializers]
        self.outputs = [vo.name for vo in g.output]
        later = _reads(self._tail_nodes) | set(self.outputs)
        made = [o for n in head_nodes for o in n.output if o]
        wanted = ([i for i in node.input if i] if self.on_host else []) + [o for o in made if o in later]
        self._head_outputs = list(dict.fromkeys(o for o in wanted if o in set(made)))
        node_outputs = [o for o in node.output if o] if self.on_host else []
        unsupported = [n for n in all_nodes(make_graph(self._tail_nodes, "t"))
                       if op_key(n) not in SUPPORTED_OPS]
        if unsupported:  # refused at load, as in any model; the tail itself compiles on the first run
            raise UnsupportedOperatorError(op_key(unsupported[0]), unsupported[0].name, default_opset(proto))
        self.head = None
        if head_nodes:
            reads = _reads(head_nodes)
            head_inputs = [vi for vi in g.input if vi.name in reads and vi.name not in self._initializers]
            outputs = [value_info(o, 0) for o in self._head_outputs]
            model = _model(proto, head_nodes, head_inputs, outputs,
                           [i for i in g.initializer if i.name in reads], "head")
            shapes = {k: v for k, v in (input_shapes or {}).items() if k in {vi.name for vi in head_inputs}}
            self.head = make_session(model, shapes or None)
        # the tail's inputs: the node's results, the head's values and the model's inputs it reads
        self._tail_made = {o for n in self._tail_nodes for o in n.output if o}
        self._tail_reads = _reads(self._tail_nodes) | {o for o in self.outputs if o not in made
                                                       and o not in node_outputs}
        self._tail_inputs = sorted(self._tail_reads - self._tail_made)
        self._tails: OrderedDict[tuple, Any] = OrderedDict()
        self.tail = None  # the tail session of the latest run

    # -- running -------------------------------------------------------------------------------

    def _host(self, value) -> np.ndarray:
        return value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray) else np.asarray(value)

    def _constant(self, name: str) -> np.ndarray:
        return to_array(self._initializers[name])

    def _run_head(self, feeds: dict, reference: bool) -> dict:
        if self.head is None:
            return {}
        head_feeds = {a.name: feeds[a.name] for a in self.head.get_inputs()}
        if reference:
            return self.head.run_reference(head_feeds)
        if self.head.backend == "compute":
            self.head.prepare(head_feeds)
            if not self.head._constant_outputs:  # noqa: SLF001 - stay on the GPU where it can
                return dict(self.head.run_on_gpu(head_feeds))
        return dict(zip(self.head.output_names, self.head.run(None, head_feeds)))

    def _value(self, name: str, values: dict, feeds: dict):
        if name in values:
            return values[name]
        if name in feeds:
            return feeds[name]
        return self._constant(name)

    def _tail_for(self, feeds: dict):
        """The tail session for the shapes and dtypes of ``feeds`` (made and compiled on first use)."""
        key = tuple((n, tuple(v.shape), str(v.dtype)) for n, v in feeds.items())
        tail = self._tails.get(key)
        if tail is None:
            inputs = [value_info(n, _CODES[dtype], shape) for n, shape, dtype in key]
            outputs = [value_info(o, 0) for o in self.outputs
                       if o in self._tail_made]
            model = _model(self._proto, self._tail_nodes, inputs, outputs,
                           [i for i in self._proto.graph.initializer if i.name in self._tail_reads], "tail")
            tail = self._make(model, None)
            self._tails[key] = tail
            while len(self._tails) > MAX_TAILS:
                self._tails.popitem(last=False)
        self._tails.move_to_end(key)
        return tail

    @property
    def outputs_on_gpu(self) -> bool:
        """Whether every output comes from the tail, so that a run can leave them on the GPU."""
        return set(self.outputs) <= self._tail_made

    def run(self, feeds: dict, reference: bool = False, on_gpu: bool = False) -> dict:
        """{output name: array} for ``feeds`` (every model input; arrays or GPUTensors). ``reference``:
        each stage in numpy (``run_reference``) instead of on the GPU. ``on_gpu`` (where
        ``outputs_on_gpu``): the tail's GPUTensors, left in its buffers (``run_on_gpu``)."""
        if set(feeds) != set(self.inputs):
            raise InputError(f"input names: expected {sorted(self.inputs)}, got {sorted(feeds)}")
        values = self._run_head(feeds, reference)
        if self.on_host:
            args = [None if not i else self._host(self._value(i, values, feeds)) for i in self.node.input]
            try:
                results = data_dependent.run(self.op_type, args, self.attrs, len(self.node.output))
            except (ValueError, TypeError, IndexError) as exc:
                raise InputError(f"{self.op_type} node {self.node_name!r}: {exc}") from None
            values.update((o, r) for o, r in zip(self.node.output, results) if o)
        if self._tail_made & set(self.outputs):
            tail_feeds = {n: values[n] if n in values else feeds[n] for n in self._tail_inputs
                          if n in values or n in feeds}
            self.tail = self._tail_for(tail_feeds)
            if reference:
                tail_out = self.tail.run_reference(tail_feeds)
            elif on_gpu:
                return self.tail.run_on_gpu(tail_feeds)
            else:
                tail_out = dict(zip(self.tail.output_names, self.tail.run(None, tail_feeds)))
            values.update(tail_out)
        return {o: self._host(self._value(o, values, feeds)) for o in self.outputs}

    # -- descriptions --------------------------------------------------------------------------

    def plans_compiled(self) -> int:
        return (self.head.plans_compiled if self.head is not None else 0) + sum(
            t.plans_compiled for t in self._tails.values())

    def pass_log(self) -> Counter:
        """The passes that fired in the head and in the latest run's tail."""
        return sum((s.pass_log for s in self.sessions()), Counter())

    def sessions(self) -> list:
        return [s for s in (self.head, self.tail) if s is not None]

    def kernel_choices(self) -> dict[str, str]:
        choices = dict(self.head.kernel_choices()) if self.head is not None else {}
        if self.on_host:
            choices[self.node_name] = "host"
        if self.tail is not None:
            choices.update(self.tail.kernel_choices())
        return choices
