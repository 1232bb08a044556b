// Layer normalization of contiguous rows of n elements: y = (x - mean) / sqrt(var + epsilon),
// times scale and plus bias (one value per element of a row; ${scaled}, ${shifted}). Mean and
// variance in two passes over the row (no cancellation in E[x^2] - mean^2), all in f32. Rows as
// softmax.wgsl has them (${per_row}): a workgroup per row with tree reductions, or an invocation
// per row without barriers.
#include "compute/common.wgsl"
#include "compute/rows.wgsl"

struct Params { rows: u32, n: u32, epsilon: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> scale: array<scale_elem>;
@group(0) @binding(3) var<storage, read_write> bias: array<bias_elem>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_of(wid, lid, nwg);
    if (row >= p.rows) {
        return;
    }
    let first = row_first(lid);
    let step = row_step();
    let base = row * p.n;
    var s = 0.0;
    for (var j = first; j < p.n; j += step) {
        s += f32(x[base + j]);
    }
    let mean = combined(s, lid, COMBINE_SUM) / f32(p.n);
    var q = 0.0;
    for (var j = first; j < p.n; j += step) {
        let d = f32(x[base + j]) - mean;
        q += d * d;
    }
    let inv = inverseSqrt(combined(q, lid, COMBINE_SUM) / f32(p.n) + p.epsilon);
    for (var j = first; j < p.n; j += step) {
        var v = (f32(x[base + j]) - mean) * inv;
        if (${scaled}) {
            v *= f32(scale[j]);
        }
        if (${shifted}) {
            v += f32(bias[j]);
        }
        y[base + j] = y_elem(v);
    }
}
