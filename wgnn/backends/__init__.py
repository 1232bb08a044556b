"""Backends: how a compiled graph runs on the GPU. The compile core (``wgnn.scheduler``) drives one.

A backend is a small contract, ``Backend``:

- ``prepare(graph, policy)``: its device-dependent rewrites, before layouts are assigned;
- ``aliases(node, perms)``: whether a node's output shares its input's storage (no work at all);
- ``context(state)``: what its lowerings see; ``lower(node, ctx)`` runs the lowering registered
  for the node's op (``lowerings``), or says which op it cannot run;
- ``build(state, ctx)``: storage for every tensor (from the lifetimes the core measured), the GPU
  objects, and an ``Executable``.

``compute`` runs WGSL compute shaders over storage buffers; ``texture`` the WebGL-style path,
fragment shaders over RGBA textures.
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import Backend
from .compute import ComputeBackend
from .texture import TextureBackend

BACKENDS: dict[str, type[Backend]] = {"compute": ComputeBackend, "texture": TextureBackend}


def get(name: str) -> Backend:
    """The backend called ``name`` (a key of ``BACKENDS``)."""
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ConfigError(f"backend must be {' or '.join(map(repr, BACKENDS))}, got {name!r}") from None


__all__ = ["BACKENDS", "Backend", "ComputeBackend", "TextureBackend", "get"]
