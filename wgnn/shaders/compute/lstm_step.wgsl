// One whole LSTM step (passes/fuse_lstm_step.py): a hidden unit's four gate pre-activations,
// h_prev . R^T's four columns of that unit plus the bias and the step's input projection, then the
// cell's state update on them (lstm_update.wgsl, as lstm_cell.wgsl applies it). The pre-activations
// stay in registers.
//
// R^T is packed when the model loads with each unit's four gates side by side: r[k * hidden + j]
// is (i, o, f, c) of unit j at row k of R^T, a vec4, so a unit's product is one vec4 multiply-add
// per k; r[hidden * hidden + j] holds the bias the same way, r[(hidden + 1) * hidden + j] the
// weights' scales (a quantized layer's), r[(hidden + 2) * hidden + j] its column sums (a packed
// state's). `proj` is the step's input projection in ONNX's layout (batch, 4 * hidden), gates in
// blocks of `hidden`.
//
// A dynamically quantized layer's step (has_scale) reads the quantized state as h_prev and R^T as
// integers: its sums are exact, then times h_scale (the state's scale, or its batch row's) times the
// weights' (one, or one per gate column). A packed state (PACKED, fuse_lstm_step.py) is u32 words
// of q - 128, four int8s each, with the state's zero points in h_zero: q - zero = (q - 128) +
// (128 - zero), so the sums over q - 128 take (128 - zero) times R^T's column sums, all exact.
// DOT4 (the "dot4" variant, a packed state and int8 R^T): R^T's word at (k / 4 * 4 + gate) * hidden
// + j holds rows k .. k + 3 of that gate of unit j, so that one dot4I8Packed with the state's word
// makes four products; the sums are i32, exact, made f32 before the zero points are taken back.
//
// ROWS batch rows share an invocation: it reads each of R^T's values once for all of them (a batch
// of sequences reads R^T once a step, not once a row). A quantized layer whose integer weights fit
// a byte has R^T as u32 words (R_WORDS), a unit's four gates' int8 weights to a word, a quarter of
// the bytes; the bias and scale rows then follow as f32 bits, four words a unit.
//
// PARTS invocations share a unit's K (every PARTS-th four rows of R^T), their partial sums added in workgroup
// memory (the "workgroup" variant, for a GPU: many invocations on a short product); with PARTS = 1
// an invocation computes a unit alone (the "row" variant: no barriers, which a software adapter pays
// for). Neighbouring invocations take neighbouring units, so they read neighbouring words of r.
//
// The grid is (blocks of UNITS units, groups of ROWS batch rows): a workgroup's invocations share
// their batch rows, so at each k they read the same values of h_prev, and (with PARTS = 1) from an
// address that is the workgroup's alone: a software adapter loads it once for all its lanes
// instead of gathering it lane by lane.
#include "compute/common.wgsl"
#include "compute/lstm_update.wgsl"

struct Params {
    hidden: u32, has_c: u32, has_proj: u32,
    has_scale: u32, scale_rows: u32, f_alpha: f32, f_beta: f32,
    g_alpha: f32, g_beta: f32, h_alpha: f32, h_beta: f32,
    batch: u32,
}

const PARTS: u32 = ${parts}u;
const ROWS: u32 = ${rows}u;
const R_WORDS: bool = ${r_words};
const PACKED: bool = ${packed};
const DOT4: bool = ${dot4};
const UNITS: u32 = WG / PARTS;  // units per workgroup
const PARTIAL: u32 = ${partial}u;  // WG where PARTS > 1 (else 1: no workgroup memory to speak of)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> h_prev: array<${h_word}>;
@group(0) @binding(2) var<storage, read> r: array<${r_word}>;
@group(0) @binding(3) var<storage, read_write> proj: array<proj_elem>;
@group(0) @binding(4) var<storage, read_write> c_prev: array<c_prev_elem>;
@group(0) @binding(5) var<storage, read_write> h_out: array<h_out_elem>;
@group(0) @binding(6) var<storage, read_write> c_out: array<c_out_elem>;
@group(0) @binding(7) var<storage, read_write> h_scale: array<h_scale_elem>;
@group(0) @binding(8) var<storage, read_write> h_zero: array<h_zero_elem>;

var<workgroup> partial: array<array<vec4<f32>, 4>, PARTIAL>;

// h_prev's values i .. i + 3 and i: h_prev is vec4s where the hidden size divides by 4 (a row then
// starts at a vec4), else scalars.
fn h_four(i: u32) -> vec4<f32> {
    return ${h_four};
}
fn h_one(i: u32) -> f32 {
    return ${h_one};
}
// R^T's four gates of unit j at row k (at = k * hidden + j), and row `tail` after R^T's hidden rows
// (0: the bias, 1: the weights' scales, 2: the column sums).
fn r_four(at: u32) -> vec4<f32> {
    return ${r_four};
}
fn r_tail(tail: u32, j: u32) -> vec4<f32> {
    if (R_WORDS) {
        let at = p.hidden * p.hidden + 4u * (tail * p.hidden + j);
        return ${r_tail_words};
    }
    return ${r_tail};
}

// acc + h . (r0, r1, r2, r3): four rows of R^T's products for one batch row.
fn madd4(acc: vec4<f32>, h: vec4<f32>, r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>) -> vec4<f32> {
    return fma(r0, vec4<f32>(h.x), fma(r1, vec4<f32>(h.y), fma(r2, vec4<f32>(h.z), fma(r3, vec4<f32>(h.w), acc))));
}

// One batch row's four gate sums over rows k .. k + 3 (the state's word h) of R^T's words w0 .. w3
// (DOT4).
fn dot4_gates(h: u32, w0: u32, w1: u32, w2: u32, w3: u32) -> vec4<i32> {
    return vec4<i32>(dot4I8Packed(h, w0), dot4I8Packed(h, w1), dot4I8Packed(h, w2), dot4I8Packed(h, w3));
}
// The state's word i and R^T's word at, as u32 (0 where they are not words: DOT4 is then false)
fn h_word_at(i: u32) -> u32 {
    return ${h_word_at};
}
fn r_word_at(at: u32) -> u32 {
    return ${r_word_at};
}

// Batch row `row`'s unit j from its sums: dequantized (a quantized layer's), the bias and the
// input projection added, then the cell.
fn finish(sums_in: vec4<f32>, row: u32, j: u32, bias: vec4<f32>) {
    var sums = sums_in;
    let own = select(0u, row, p.scale_rows != 0u);  // (a scale and zero point per row, or one)
    if (PACKED) {  // sums over q - 128 made sums over q - zero
        sums += (128.0 - f32(h_zero[own])) * r_tail(2u, j);
    }
    if (p.has_scale != 0u) {  // a quantized state's integer sums, dequantized
        sums = sums * (f32(h_scale[own]) * r_tail(1u, j));
    }
    var pre = sums + bias;
    if (p.has_proj != 0u) {
        let at = row * 4u * p.hidden + j;
        pre += vec4<f32>(f32(proj[at]), f32(proj[at + p.hidden]), f32(proj[at + 2u * p.hidden]),
                         f32(proj[at + 3u * p.hidden]));
    }
    lstm_update(pre, row * p.hidden + j);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let part = select(lid / UNITS, 0u, PARTS == 1u);  // (a constant 0 where PARTS is 1: k is then the workgroup's)
    let j = wid.x * UNITS + lid % UNITS;  // hidden unit j of batch rows row0 .. row0 + ROWS - 1
    let valid = j < p.hidden;
    let row0 = wid.y * ROWS;
    // each row's b * hidden (a row past the batch reads the last one, and writes nothing)
    let last = p.batch - 1u;
    let h0 = min(row0, last) * p.hidden;
    let h1 = min(row0 + 1u, last) * p.hidden;
    let h2 = min(row0 + 2u, last) * p.hidden;
    let h3 = min(row0 + 3u, last) * p.hidden;
    // The rows' sums, written out (not a loop): the indices stay constants, so the array stays in
    // registers (a loop's index would keep it in memory through the K loop, as octet.wgsl notes).
    var acc: array<vec4<f32>, 4>;
    if (valid && DOT4) {  // (a packed state: the hidden size a multiple of 4, no last rows)
        var sums: array<vec4<i32>, 4>;
        let fours = p.hidden / 4u;
        for (var c = part; c < fours; c += PARTS) {
            let at = c * 4u * p.hidden + j;
            let w0 = r_word_at(at);
            let w1 = r_word_at(at + p.hidden);
            let w2 = r_word_at(at + 2u * p.hidden);
            let w3 = r_word_at(at + 3u * p.hidden);
            sums[0] += dot4_gates(h_word_at(h0 / 4u + c), w0, w1, w2, w3);
            if (ROWS > 1u) { sums[1] += dot4_gates(h_word_at(h1 / 4u + c), w0, w1, w2, w3); }
            if (ROWS > 2u) { sums[2] += dot4_gates(h_word_at(h2 / 4u + c), w0, w1, w2, w3); }
            if (ROWS > 3u) { sums[3] += dot4_gates(h_word_at(h3 / 4u + c), w0, w1, w2, w3); }
        }
        acc[0] = vec4<f32>(sums[0]);
        acc[1] = vec4<f32>(sums[1]);
        acc[2] = vec4<f32>(sums[2]);
        acc[3] = vec4<f32>(sums[3]);
    } else if (valid) {  // rows of R^T four at a time (part's every PARTS-th four), then any last ones
        let fours = p.hidden / 4u;
        for (var c = part; c < fours; c += PARTS) {
            let k = c * 4u;
            let at = k * p.hidden + j;
            let r0 = r_four(at);
            let r1 = r_four(at + p.hidden);
            let r2 = r_four(at + 2u * p.hidden);
            let r3 = r_four(at + 3u * p.hidden);
            acc[0] = madd4(acc[0], h_four(h0 + k), r0, r1, r2, r3);
            if (ROWS > 1u) { acc[1] = madd4(acc[1], h_four(h1 + k), r0, r1, r2, r3); }
            if (ROWS > 2u) { acc[2] = madd4(acc[2], h_four(h2 + k), r0, r1, r2, r3); }
            if (ROWS > 3u) { acc[3] = madd4(acc[3], h_four(h3 + k), r0, r1, r2, r3); }
        }
        if (part == 0u) {
            for (var k = fours * 4u; k < p.hidden; k++) {
                let rk = r_four(k * p.hidden + j);
                acc[0] = fma(rk, vec4<f32>(h_one(h0 + k)), acc[0]);
                if (ROWS > 1u) { acc[1] = fma(rk, vec4<f32>(h_one(h1 + k)), acc[1]); }
                if (ROWS > 2u) { acc[2] = fma(rk, vec4<f32>(h_one(h2 + k)), acc[2]); }
                if (ROWS > 3u) { acc[3] = fma(rk, vec4<f32>(h_one(h3 + k)), acc[3]); }
            }
        }
    }
    if (PARTS > 1u) {  // (a constant: every invocation takes the same path to the barriers)
        partial[lid] = acc;
        workgroupBarrier();
        for (var step = PARTS / 2u; step > 0u; step = step / 2u) {
            if (part < step) {
                for (var b = 0u; b < ROWS; b++) {
                    partial[lid][b] += partial[lid + step * UNITS][b];
                }
            }
            workgroupBarrier();
        }
        acc = partial[lid];
    }
    if (!valid || part != 0u) {
        return;
    }
    let bias = r_tail(0u, j);
    finish(acc[0], row0, j, bias);
    if (ROWS > 1u && row0 + 1u < p.batch) { finish(acc[1], row0 + 1u, j, bias); }
    if (ROWS > 2u && row0 + 2u < p.batch) { finish(acc[2], row0 + 2u, j, bias); }
    if (ROWS > 3u && row0 + 3u < p.batch) { finish(acc[3], row0 + 3u, j, bias); }
}
