// GatherElements: output element c (its coordinates over the indices' shape) is data at c with
// c[axis] replaced by indices[c] (negative counts from the end; past the axis, clamped).
#include "compute/common.wgsl"

struct Params {
    total: u32, axis: u32, axis_size: u32,
    shape: array<vec4<u32>, 2>,         // the indices' (and the output's) shape
    data_strides: array<vec4<u32>, 2>,  // data's row-major strides
}

const RANK: i32 = ${rank};

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
    var k = i32(indices[id]);
    k = clamp(select(k, k + i32(p.axis_size), k < 0), 0, i32(p.axis_size) - 1);
    var rest = id;
    var src = 0u;
    for (var d = RANK - 1; d >= 0; d--) {
        let dim = p.shape[d / 4][d % 4];
        let c = select(rest % dim, u32(k), u32(d) == p.axis);
        rest = rest / dim;
        src += c * p.data_strides[d / 4][d % 4];
    }
    y[id] = y_elem(x[src]);
}
