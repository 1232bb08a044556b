// Gather along one axis: the output is [outer, count, inner] and element (o, j, i) comes from
// input (o, indices[j], i). Indices are i32 (compile-time constants or a tensor computed at run
// time); negative ones count from the end, and out-of-range ones are clamped into the axis, since
// a shader cannot raise an error. With outside_zero, an index outside 0..axis_size-1 gives zero
// (a one-hot encoding's product: passes/one_hot_gather.py).
#include "compute/common.wgsl"

struct Params { total: u32, inner: u32, count: u32, axis_size: u32, outside_zero: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> indices: array<indices_elem>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let i = id % p.inner;
    let j = (id / p.inner) % p.count;
    let o = id / (p.inner * p.count);
    var k = i32(indices[j]);
    if (p.outside_zero != 0u && (k < 0 || k >= i32(p.axis_size))) {
        y[id] = y_elem(0);
        return;
    }
    k = clamp(select(k, k + i32(p.axis_size), k < 0), 0, i32(p.axis_size) - 1);
    y[id] = y_elem(x[(o * p.axis_size + u32(k)) * p.inner + i]);
}
