// Padding in any layout: each output element maps back to an input coordinate per axis;
// ${mode} decides what happens outside the input (constant value, edge clamp, or reflection).
#include "compute/common.wgsl"
#include "pad_modes.wgsl"

struct Params {
    total: u32, value: f32,
    out_shape: array<vec4<u32>, 2>,
    in_shape: array<vec4<u32>, 2>,
    in_strides: array<vec4<i32>, 2>,
    begins: array<vec4<i32>, 2>,
}

const RANK: i32 = ${rank};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var i = id;
    var src = 0;
    var inside = true;
    for (var d = RANK - 1; d >= 0; d--) {
        let q = d / 4;
        let r = d % 4;
        let dim = p.out_shape[q][r];
        let c = map_${mode}(i32(i % dim) - p.begins[q][r], i32(p.in_shape[q][r]));
        i = i / dim;
        inside = inside && c >= 0;
        src += max(c, 0) * p.in_strides[q][r];
    }
    y[id] = select(y_elem(p.value), y_elem(x[src]), inside);
}
