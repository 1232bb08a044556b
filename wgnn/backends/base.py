"""The contract between the compile core (``wgnn.scheduler``) and a backend (see ``wgnn.backends``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .. import ops
from ..errors import ConfigError, UnsupportedOperatorError
from ..graph import Graph, Node
from ..layout import equivalent


def lowering_registry() -> tuple[dict[str, Callable], Callable]:
    """A backend's registry of lowerings, {op: lower(node, ctx)}, and the decorator that fills it:
    ``@lowers("op", ...)`` above a lowering function."""
    table: dict[str, Callable] = {}

    def lowers(*ops: str) -> Callable[[Callable], Callable]:
        def wrap(fn: Callable) -> Callable:
            for op in ops:
                table[op] = fn
            return fn

        return wrap

    return table, lowers


class Backend:
    """One way of running a graph. Subclasses set ``name`` and ``lowerings`` ({op: lower(node, ctx)})
    and define ``context`` and ``build``."""

    name: str = ""
    lowerings: dict[str, Callable] = {}
    # ops whose kernels write their result in any physical order (``layout.fold_relayouts``)
    writes_any_order: tuple[str, ...] = ("pad",)

    @staticmethod
    def same_layout(shape: tuple[int, ...], p: tuple[int, ...], q: tuple[int, ...]) -> bool:
        """Whether a tensor stored in order p serves an input that needs order q
        (``layout.assign_layouts``): the same elements in the same places (axes of 1 do not count)."""
        return equivalent(shape, p, q)

    def policy(self, device, overrides: dict | None, precision: str):
        """The kernel policy this backend's lowerings ask (None: it has no kernel variants)."""
        if overrides:
            raise ConfigError(f"kernel overrides apply to the compute backend, not the {self.name} backend")
        return None

    def prepare(self, graph: Graph, policy, *, optimize: bool = True) -> Counter:
        """Device-dependent rewrites, before layouts (``optimize``: the backend's last fusions too);
        returns how often each fired."""
        return Counter()

    def aliases(self, node: Node, perms: dict) -> bool:
        """Whether ``node``'s output shares its input's storage (then it is not lowered at all)."""
        return ops.has_trait(node, "view")

    def context(self, state):
        """What this backend's lowerings see, for a ``scheduler.CompileState``."""
        raise NotImplementedError

    def lower(self, node: Node, ctx) -> None:
        """Run the lowering registered for ``node.op``, or say that this backend cannot."""
        lower = self.lowerings.get(node.op)
        if lower is None:
            detail = ("it could not be evaluated at compile time" if ops.has_trait(node, "compile_time")
                      else f"not implemented on the {self.name} backend")
            raise UnsupportedOperatorError(node.attrs.get("onnx_op", node.op), node.name, ctx.opset, detail)
        lower(node, ctx)

    def build(self, state, ctx):
        """Storage and GPU objects for every lowered call; returns an ``common.Executable``."""
        raise NotImplementedError
