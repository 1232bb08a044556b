// Softmax (or log-softmax) along one axis of x * scale (+ mask), in one of two shapes (${per_row}):
// - one workgroup per row (GPUs): its WG invocations stride along the row, and the maximum and
//   the sum are workgroup tree reductions;
// - one invocation per row (software adapters, whose invocations are CPU SIMD lanes): each walks
//   its row alone, no barriers.
// The row's maximum is subtracted before exp so large logits cannot overflow. A row is the axis at
// fixed outer and inner indices: element j sits at base + j * inner. The mask (${masked}; softmax
// over the last axis of a tensor in logical order) is read through its own strides over the rows'
// axes (m_shape, m_strides: 0 where it broadcasts) and m_step along the row.
#include "compute/common.wgsl"
#include "compute/rows.wgsl"

struct Params {
    rows: u32, axis_size: u32, inner: u32, scale: f32, m_step: u32, m_rank: u32,
    x_outer: u32,  // elements between x's rows at consecutive outer indices (axis_size * inner, or more:
                   // x the leading columns of a wider tensor, read in place; backends/compute/data.py)
    m_shape: array<vec4<u32>, 2>,
    m_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> mask: array<mask_elem>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

const MASKED: bool = ${masked};

fn mask_base(row: u32) -> u32 {
    var i = row;
    var o = 0u;
    for (var d = i32(p.m_rank) - 1; d >= 0; d--) {
        let dim = p.m_shape[d / 4][d % 4];
        o += (i % dim) * p.m_strides[d / 4][d % 4];
        i = i / dim;
    }
    return o;
}

fn logit(xbase: u32, mbase: u32, j: u32) -> f32 {
    var v = f32(x[xbase + j * p.inner]) * p.scale;
    if (MASKED) {
        v += f32(mask[mbase + j * p.m_step]);
    }
    return v;
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
    let base = (row / p.inner) * p.axis_size * p.inner + row % p.inner;
    let xbase = (row / p.inner) * p.x_outer + row % p.inner;
    var mbase = 0u;
    if (MASKED) {
        mbase = mask_base(row);
    }
    var m = -3.402823e38;
    for (var j = first; j < p.axis_size; j += step) {
        m = max(m, logit(xbase, mbase, j));
    }
    m = combined(m, lid, COMBINE_MAX);
    var s = 0.0;
    for (var j = first; j < p.axis_size; j += step) {
        s += exp(logit(xbase, mbase, j) - m);
    }
    s = combined(s, lid, COMBINE_SUM);
    let log_s = log(s);
    let inv_s = 1.0 / s;
    for (var j = first; j < p.axis_size; j += step) {
        let shifted = logit(xbase, mbase, j) - m;
        if (${log}) {  // log-softmax: x - max - log(sum), never log of a rounded-to-zero probability
            y[base + j * p.inner] = y_elem(shifted - log_s);
        } else {
            y[base + j * p.inner] = y_elem(exp(shifted) * inv_s);
        }
    }
}
