// Where: out = a ? b : c, element-wise over a RANK-dimensional index space, every operand
// addressed through its own per-axis strides (0 broadcasts), as in elementwise.wgsl. a is a bool
// tensor (stored as i32); b and c share out's dtype.
#include "compute/common.wgsl"

struct Params {
    total: u32, out_base: u32, a_base: u32, b_base: u32, c_base: u32,
    out_step: i32, a_step: i32, b_step: i32, c_step: i32,
    shape: array<vec4<u32>, 2>,
    out_strides: array<vec4<i32>, 2>,
    a_strides: array<vec4<i32>, 2>,
    b_strides: array<vec4<i32>, 2>,
    c_strides: array<vec4<i32>, 2>,
}

const RANK: i32 = ${rank};
const LANES: i32 = ${lanes};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<a_elem>;
@group(0) @binding(2) var<storage, read_write> b: array<b_elem>;
@group(0) @binding(3) var<storage, read_write> c: array<c_elem>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var i = id;
    var offsets = vec4<i32>(i32(p.out_base), i32(p.a_base), i32(p.b_base), i32(p.c_base));
    for (var d = RANK - 1; d >= 0; d--) {
        let dim = p.shape[d / 4][d % 4];
        let idx = i32(i % dim);
        i = i / dim;
        offsets += idx * vec4<i32>(p.out_strides[d / 4][d % 4], p.a_strides[d / 4][d % 4],
                                   p.b_strides[d / 4][d % 4], p.c_strides[d / 4][d % 4]);
    }
    for (var l = 0; l < LANES; l++) {
        let take_b = a[offsets.y + l * p.a_step] != a_elem(0);
        y[offsets.x + l * p.out_step] = select(y_elem(c[offsets.w + l * p.c_step]),
                                               y_elem(b[offsets.z + l * p.b_step]), take_b);
    }
}
