// Softmax (or log-softmax) along one axis, one 64-wide workgroup per row. The row's maximum is subtracted before
// exp so large logits cannot overflow; max and sum are workgroup tree reductions. A row is
// the axis at fixed outer and inner indices: element j sits at base + j * inner.
#include "compute/common.wgsl"
#include "compute/reduction.wgsl"

struct Params { rows: u32, axis_size: u32, inner: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.y * nwg.x + wid.x;  // uniform across the workgroup: the early return is safe
    if (row >= p.rows) {
        return;
    }
    let base = (row / p.inner) * p.axis_size * p.inner + row % p.inner;
    var m = -3.402823e38;
    for (var j = lid; j < p.axis_size; j += WG) {
        m = max(m, f32(x[base + j * p.inner]));
    }
    m = workgroup_reduce(m, lid, COMBINE_MAX);
    var s = 0.0;
    for (var j = lid; j < p.axis_size; j += WG) {
        s += exp(f32(x[base + j * p.inner]) - m);
    }
    s = workgroup_reduce(s, lid, COMBINE_SUM);
    let log_s = log(s);
    for (var j = lid; j < p.axis_size; j += WG) {
        let shifted = f32(x[base + j * p.inner]) - m;
        if (${log}) {  // log-softmax: x - max - log(sum), never log of a rounded-to-zero probability
            y[base + j * p.inner] = y_elem(shifted - log_s);
        } else {
            y[base + j * p.inner] = y_elem(exp(shifted) / s);
        }
    }
}
