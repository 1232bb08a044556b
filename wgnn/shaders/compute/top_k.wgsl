// TopK along one axis of a row-major tensor seen as [outer, length, inner]: each input element
// counts the elements of its row that come before it (larger, or smaller with LARGEST false;
// equal and earlier along the axis) and, if fewer than k do, writes itself and its index at that
// rank. So the outputs are in order, ties in their order along the axis, the same on every run.
#include "compute/common.wgsl"

struct Params { total: u32, inner: u32, length: u32, k: u32 }

const LARGEST: bool = ${largest};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> values: array<values_elem>;
@group(0) @binding(3) var<storage, read_write> indices: array<i32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let i = id % p.inner;
    let j = (id / p.inner) % p.length;
    let o = id / (p.inner * p.length);
    let base = id - j * p.inner;
    let v = x[id];
    var rank = 0u;
    for (var t = 0u; t < p.length && rank < p.k; t++) {
        let w = x[base + t * p.inner];
        let before = select((w < v), (w > v), LARGEST) || (w == v && t < j);
        rank += select(0u, 1u, before);
    }
    if (rank < p.k) {
        let out = (o * p.k + rank) * p.inner + i;
        values[out] = values_elem(v);
        indices[out] = i32(j);
    }
}
