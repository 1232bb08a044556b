"""WGSL kernels, shipped as package data, and the small template renderer that reads them.

One folder per backend: ``compute/`` (compute shaders over storage buffers), ``texture/``
(fragment shaders over RGBA textures), ``demo/`` (the camera demos' pipeline); snippets both
backends include (``activation.wgsl``, ``binary_ops.wgsl``, ``pool_window.wgsl``) sit at the top.

A shader file may ``#include "other.wgsl"`` (each file once, by its path in this folder) and use
``${name}`` parameters: tile sizes, the activation and the like; ``WG``, the workgroup size, is
the ``wg`` parameter (default 64). Shapes never go into the source; they travel in the
``Params`` uniform, so one pipeline serves every shape.

Element types: a storage binding ``x`` is declared ``array<x_elem>`` (or ``array<vec4<x_elem>>``)
and the renderer defines ``alias x_elem = f32;`` or ``f16`` from ``types`` (default: ``elem``),
adding ``enable f16;`` when needed. One template thus serves f32, f16 and mixes of the two (an f32
graph input read by an f16 network). Kernels compute in f32 whatever they store.

``parse_interface`` reads the ``Params`` struct and the bindings back from the source, so the host
side packs uniforms (``pack_params``) and builds bind-group layouts from the shader itself.
"""

from __future__ import annotations

import re
import string
import struct
from functools import cache
from importlib import resources

from ..errors import GraphError

WORKGROUP_SIZE = 64

_INCLUDE = re.compile(r'^#include "([\w./]+)"[^\n]*$', re.M)
_STRUCT = re.compile(r"struct Params\s*\{(.*?)\}", re.S)
_BINDING = re.compile(
    r"@binding\((\d+)\)\s*var(?:<(uniform|storage,\s*read_write|storage,\s*read)>)?\s*(\w+)\s*:\s*(\w+)")


@cache
def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _expand(name: str, seen: set[str]) -> str:
    def include(match: re.Match) -> str:
        dep = match.group(1)
        if dep in seen:
            return ""
        seen.add(dep)
        return _expand(dep, seen)

    return _INCLUDE.sub(include, _read(name))


_ALIAS = re.compile(r"\b(\w+)_elem\b")


@cache
def _render_cached(name: str, items: tuple, type_items: tuple) -> str:
    params, types = dict(items), dict(type_items)
    try:
        body = string.Template(_expand(name + ".wgsl", {name + ".wgsl"})).substitute(params)
    except KeyError as e:
        raise KeyError(f"shader {name}.wgsl needs template parameter {e}") from None
    aliases = {binding: types.get(binding, params["elem"]) for binding in sorted(set(_ALIAS.findall(body)))}
    header = "enable f16;\n" if "f16" in aliases.values() else ""
    header += "".join(f"alias {binding}_elem = {t};\n" for binding, t in aliases.items())
    return header + f"const WG: u32 = {params.get('wg', WORKGROUP_SIZE)}u;\n" + body


def render(name: str, *, types: dict[str, str] | None = None, **params: object) -> str:
    """The WGSL source of kernel ``name``: template parameters filled, binding element types set.

    ``types`` maps binding names to ``f32`` or ``f16``; ``elem`` is the default for the others.
    """
    params.setdefault("elem", "f32")
    items = tuple(sorted((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()))
    return _render_cached(name, items, tuple(sorted((types or {}).items())))


@cache
def parse_interface(source: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(Params fields as (name, type), binding kinds in order: uniform | storage | read-only-storage |
    texture | "storage-texture FORMAT" (write-only))."""
    fields, bindings = _interface(source)
    return fields, [kind for kind, _ in bindings]


def binding_names(source: str) -> list[str]:
    """The names of the bindings, in binding order."""
    return [name for _, name in _interface(source)[1]]


@cache
def _interface(source: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    fields: list[tuple[str, str]] = []
    struct = _STRUCT.search(source)
    if struct:
        body = re.sub(r"//[^\n]*", "", struct.group(1))
        for part in re.split(r",(?![^<]*>)", body):
            if ":" in part:
                fname, ftype = part.split(":", 1)
                fields.append((fname.strip(), " ".join(ftype.split())))
    bindings: dict[int, tuple[str, str]] = {}
    for index, kind, name, wgsl_type in _BINDING.findall(source):
        if not kind:  # a handle: a sampled texture, or a write-only storage texture (its format named)
            written = re.search(rf"\b{name}\s*:\s*texture_storage_2d<(\w+),\s*write>", source)
            if written:
                kind = f"storage-texture {written.group(1)}"
            elif wgsl_type.startswith("texture_2d"):
                kind = "texture"
            else:
                raise ValueError(f"binding {name!r} of type {wgsl_type} is not supported")
        else:
            kind = {"uniform": "uniform", "storage,read_write": "storage",
                    "storage,read": "read-only-storage"}[kind.replace(" ", "")]
        bindings[int(index)] = (kind, name)
    return fields, [bindings[i] for i in sorted(bindings)]


def pack_params(fields: list[tuple[str, str]], values: dict, where: str) -> bytes:
    """Pack ``values`` into the uniform layout of the WGSL struct ``fields`` (from ``parse_interface``)."""
    out = bytearray()
    names = {f for f, _ in fields}
    missing = [n for n, _ in fields if n not in values]
    extra = [n for n in values if n not in names]
    if missing or extra:
        raise GraphError(f"{where}: uniform fields missing {missing}, unexpected {extra}")
    for name, ftype in fields:
        value = values[name]
        try:
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
        except struct.error as exc:  # (an index or size past 32 bits: a shape no GPU's arithmetic holds)
            raise GraphError(f"{where}: parameter {name} = {value!r} does not fit the kernel's {ftype} "
                             f"({exc}): a size or stride past what 32-bit GPU arithmetic addresses") from None
    while len(out) % 16:
        out += b"\0"
    return bytes(out)
