// Layer normalization of contiguous rows of n elements: y = (x - mean) / sqrt(var + epsilon),
// times scale and plus bias (one value per element of a row; ${scaled}, ${shifted}). Mean and
// variance in two passes over the row (no cancellation in E[x^2] - mean^2), all in f32; RMS
// normalization (${centered} false) takes no mean: x / sqrt(mean(x^2) + epsilon), one pass less. Rows as
// softmax.wgsl has them (${per_row}): a workgroup per row with tree reductions, or an invocation
// per row without barriers. With ${width} = 4 (n a multiple of 4) each load and store moves a vec4
// of the row (V), a quarter of the loads; its four lanes are added once, after each pass.
#include "compute/common.wgsl"
#include "compute/rows.wgsl"

struct Params { rows: u32, n: u32, epsilon: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_type}>;
@group(0) @binding(2) var<storage, read_write> scale: array<${scale_type}>;
@group(0) @binding(3) var<storage, read_write> bias: array<${bias_type}>;
@group(0) @binding(4) var<storage, read_write> y: array<${y_type}>;

const W: u32 = ${width}u;
const CENTERED: bool = ${centered};
alias V = ${vec};  // f32, or vec4<f32> where W = 4
alias y_store = ${y_type};

fn lanes_sum(v: V) -> f32 {
    return ${lanes_sum};
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_of(wid, lid, nwg);
    if (row >= p.rows) {
        return;
    }
    let first = row_first(lid);
    let step = row_step();
    let n = p.n / W;
    let base = row * n;
    var mean = 0.0;
    if (CENTERED) {
        var s = V(0.0);
        for (var j = first; j < n; j += step) {
            s += V(x[base + j]);
        }
        mean = combined(lanes_sum(s), lid, COMBINE_SUM) / f32(p.n);
    }
    var q = V(0.0);
    for (var j = first; j < n; j += step) {
        let d = V(x[base + j]) - mean;
        q += d * d;
    }
    let inv = inverseSqrt(combined(lanes_sum(q), lid, COMBINE_SUM) / f32(p.n) + p.epsilon);
    for (var j = first; j < n; j += step) {
        var v = (V(x[base + j]) - mean) * inv;
        if (${scaled}) {
            v *= V(scale[j]);
        }
        if (${shifted}) {
            v += V(bias[j]);
        }
        y[base + j] = y_store(v);
    }
}
