// One whole LSTM step (passes/fuse_lstm_step.py): a hidden unit's four gate pre-activations,
// h_prev . R^T's four columns of that unit plus the bias and the step's input projection, then the
// cell's state update on them (lstm_update.wgsl, as lstm_cell.wgsl applies it). The pre-activations
// stay in registers.
//
// R^T is packed when the model loads with each unit's four gates side by side: r[k * hidden + j]
// is (i, o, f, c) of unit j at row k of R^T, a vec4, so a unit's product is one vec4 multiply-add
// per k; r[hidden * hidden + j] holds the bias the same way, r[(hidden + 1) * hidden + j] the
// weights' scales (a quantized layer's). `proj` is the step's input projection
// in ONNX's layout (batch, 4 * hidden), gates in blocks of `hidden`.
//
// A dynamically quantized layer's step (has_scale) reads the quantized state as h_prev and R^T as
// integers: its sums are exact, then times h_scale (the state's scale, or its batch row's) times the
// weights' (one, or one per gate column).
//
// PARTS invocations share a unit's K (every PARTS-th four rows of R^T), their partial sums added in workgroup
// memory (the "workgroup" variant, for a GPU: many invocations on a short product); with PARTS = 1
// an invocation computes a unit alone (the "row" variant: no barriers, which a software adapter pays
// for). Neighbouring invocations take neighbouring units, so they read neighbouring vec4s of r.
#include "compute/common.wgsl"
#include "compute/lstm_update.wgsl"

struct Params {
    units: u32, hidden: u32, has_c: u32, has_proj: u32,
    has_scale: u32, scale_rows: u32, f_alpha: f32, f_beta: f32,
    g_alpha: f32, g_beta: f32, h_alpha: f32, h_beta: f32,
}

const PARTS: u32 = ${parts}u;
const UNITS: u32 = WG / PARTS;  // units per workgroup

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> h_prev: array<${h_word}>;
@group(0) @binding(2) var<storage, read> r: array<vec4<r_elem>>;
@group(0) @binding(3) var<storage, read_write> proj: array<proj_elem>;
@group(0) @binding(4) var<storage, read_write> c_prev: array<c_prev_elem>;
@group(0) @binding(5) var<storage, read_write> h_out: array<h_out_elem>;
@group(0) @binding(6) var<storage, read_write> c_out: array<c_out_elem>;
@group(0) @binding(7) var<storage, read_write> h_scale: array<h_scale_elem>;

var<workgroup> partial: array<vec4<f32>, WG>;

// h_prev's values i .. i + 3 and i: h_prev is vec4s where the hidden size divides by 4 (a row then
// starts at a vec4), else scalars.
fn h_four(i: u32) -> vec4<f32> {
    return ${h_four};
}
fn h_one(i: u32) -> f32 {
    return ${h_one};
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = wid.y * nwg.x + wid.x;
    let part = lid / UNITS;
    let unit = group * UNITS + lid % UNITS;  // row b = unit / hidden, hidden unit j = unit % hidden
    let valid = unit < p.units;
    let j = unit % p.hidden;
    let h_row = unit - j;  // b * hidden
    var acc = vec4<f32>(0.0);
    if (valid) {  // rows of R^T four at a time (part's every PARTS-th four), then any last ones
        let fours = p.hidden / 4u;
        for (var c = part; c < fours; c += PARTS) {
            let k = c * 4u;
            let at = k * p.hidden + j;
            let h = h_four(h_row + k);
            acc = fma(vec4<f32>(r[at]), vec4<f32>(h.x), fma(vec4<f32>(r[at + p.hidden]), vec4<f32>(h.y),
                  fma(vec4<f32>(r[at + 2u * p.hidden]), vec4<f32>(h.z),
                  fma(vec4<f32>(r[at + 3u * p.hidden]), vec4<f32>(h.w), acc))));
        }
        if (part == 0u) {
            for (var k = fours * 4u; k < p.hidden; k++) {
                acc = fma(vec4<f32>(r[k * p.hidden + j]), vec4<f32>(h_one(h_row + k)), acc);
            }
        }
    }
    if (PARTS > 1u) {  // (a constant: every invocation takes the same path to the barriers)
        partial[lid] = acc;
        workgroupBarrier();
        for (var step = PARTS / 2u; step > 0u; step = step / 2u) {
            if (part < step) {
                partial[lid] += partial[lid + step * UNITS];
            }
            workgroupBarrier();
        }
        acc = partial[lid];
    }
    if (!valid || part != 0u) {
        return;
    }
    if (p.has_scale != 0u) {  // a quantized state's integer sums, dequantized (a scale per row, or one)
        acc = acc * (f32(h_scale[select(0u, h_row / p.hidden, p.scale_rows != 0u)])
                     * vec4<f32>(r[(p.hidden + 1u) * p.hidden + j]));
    }
    var pre = acc + vec4<f32>(r[p.hidden * p.hidden + j]);
    if (p.has_proj != 0u) {
        let at = h_row * 4u + j;
        pre += vec4<f32>(f32(proj[at]), f32(proj[at + p.hidden]), f32(proj[at + 2u * p.hidden]),
                         f32(proj[at + 3u * p.hidden]));
    }
    lstm_update(pre, unit);
}
