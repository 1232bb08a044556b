// Softmax (or log-softmax) along one axis of x * scale (+ mask), in one of two shapes (${per_row}):
// - one workgroup per row (GPUs): its WG invocations stride along the row, and the maximum and
//   the sum are workgroup tree reductions;
// - one invocation per row (software adapters, whose invocations are CPU SIMD lanes): each walks
//   its row alone, no barriers.
// The row's maximum is subtracted before exp so large logits cannot overflow. A row is the axis at
// fixed outer and inner indices: element j sits at base + j * inner. The mask (${masked}; softmax
// over the last axis of a tensor in logical order) is read through its own strides over the rows'
// axes (m_shape, m_strides: 0 where it broadcasts) and m_step along the row.
// With ${width} = 4 (a row contiguous, its length, its start and the mask's a multiple of 4) every
// load and store moves a vec4 (V) along the row: a quarter of the loads, which bound this kernel on
// software adapters as on GPUs; the vec4's four lanes are combined once, after each pass. A row of
// x that starts at a multiple of 4 inside a wider tensor (no mask) is read so too whatever its
// length, its last vec4 masked (in_row), and stored a value at a time (store_part).
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
@group(0) @binding(1) var<storage, read_write> x: array<${x_type}>;
@group(0) @binding(2) var<storage, read_write> mask: array<${mask_type}>;
@group(0) @binding(3) var<storage, read_write> y: array<${y_type}>;

const MASKED: bool = ${masked};
const W: u32 = ${width}u;
const KEEP_EXP: bool = ${keep_exp};
alias V = ${vec};  // f32, or vec4<f32> where W = 4
alias y_store = ${y_type};

fn lanes_max(v: V) -> f32 {
    return ${lanes_max};
}

fn lanes_sum(v: V) -> f32 {
    return ${lanes_sum};
}

// Lanes past the row's end (a row whose length is no multiple of 4, read as vec4s where x is the
// leading columns of a wider tensor: a padded classifier's) count as -3.4e38: they add exp(..) = 0.
fn in_row(v: V, j: u32) -> V {
    return ${in_row};
}

// The j-th W-wide part of a row whose first element is y's element base: a vec4 or, past a row's
// end that is no multiple of 4, its lanes one by one up to the end.
fn store_part(base: u32, j: u32, v: V) {
    ${store_part}
}

// KEEP_EXP's last pass: the part stored, times inv_s (never in the value-at-a-time form).
fn rescale_part(base: u32, j: u32, inv_s: f32) {
    ${rescale_part}
}

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

// The logits of the row's j-th element (W = 4: elements 4j .. 4j + 3; inner and m_step are then 1).
fn logit(xbase: u32, mbase: u32, j: u32) -> V {
    var v = V(x[xbase / W + j * p.inner]) * p.scale;
    if (MASKED) {
        v += V(mask[mbase / W + j * p.m_step]);
    }
    return in_row(v, j);
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
    let n = (p.axis_size + W - 1u) / W;
    var mv = V(-3.402823e38);
    for (var j = first; j < n; j += step) {
        mv = max(mv, logit(xbase, mbase, j));
    }
    let m = combined(lanes_max(mv), lid, COMBINE_MAX);
    var sv = V(0.0);
    for (var j = first; j < n; j += step) {
        let e = exp(logit(xbase, mbase, j) - m);
        sv += e;
        if (KEEP_EXP) {
            store_part(base, j, e);
        }
    }
    let s = combined(lanes_sum(sv), lid, COMBINE_SUM);
    let log_s = log(s);
    let inv_s = 1.0 / s;
    if (KEEP_EXP) {
        for (var j = first; j < n; j += step) {
            rescale_part(base, j, inv_s);
        }
        return;
    }
    for (var j = first; j < n; j += step) {
        let shifted = logit(xbase, mbase, j) - m;
        if (${log}) {  // log-softmax: x - max - log(sum), never log of a rounded-to-zero probability
            store_part(base, j, shifted - log_s);
        } else {
            store_part(base, j, exp(shifted) * inv_s);
        }
    }
}
