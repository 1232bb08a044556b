// Batched matrix multiply C = A x B (+ bias, + residual, activation), row-major, vec4 over the
// columns of B and C and over the inner dimension of A. One invocation computes a TILE_M x 4 block:
// four B vec4s are loaded once per step of 4 along K and reused for TILE_M rows. Neighbouring
// invocations differ in column first, so they share A loads and read B contiguously.
// Also runs every 1x1, stride-1 convolution: an NHWC tensor is an [N*H*W, C] matrix.
// A K not divisible by 4 reads A as scalars (A_SCALAR; Magika's one-hot bytes times its 257-row
// embedding): four at a time, then the last K % 4 one by one. An N not divisible by 4 (N_RAGGED:
// attention's scores over a sequence of any length) computes vec4s of columns all the same, the
// last one partly past the end: B computed at run time is read as scalars (B_COL = 4: a vec4 of
// columns from four words, zero past column N), constant B padded with zero columns, and each
// result row is stored a value at a time up to column N (no residual, no heads apart: the policy's
// eligible() keeps such products off this path).
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()
#include "compute/x_scale.wgsl"  // X_SCALED, x_scale4() (binding 7)
#include "compute/ragged.wgsl"  // b_lanes(), write_ragged() (N_RAGGED)
#include "compute/a_reads.wgsl"  // A_STEP, a_four(), a_one()

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    batch: u32, a_batch_stride: u32, b_batch_stride: u32, alpha: f32,
    beta: f32, a_row: u32, k_tail: u32,  // a row's length in A's words; K % 4 (scalar A only)
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    n: u32, b_row: u32,  // N; B's rows apart, in its words (n4, N where B_COL = 4, 8 in panels)
    b_panel: u32,  // constant B's words per panel (B_PANELS)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

const TILE_M: u32 = ${tile_m}u;
const B_COL: u32 = ${b_col}u;  // B's words per vec4 of columns: 1 (vec4s) or 4 (scalars)
const N_RAGGED: bool = ${n_ragged};
// Constant B lies in panels (nn._panels): eight neighbouring vec4 columns, K rows of them, together,
// so that the lanes of a subgroup of 8 read their weights in order; B computed at run time is read
// row-major.
const B_PANELS: bool = ${b_panels};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<${a_word}>;
@group(0) @binding(2) var<storage, ${b_access}> b: array<${b_word}>;

// The vec4 of columns col of B's row that starts at word i + its col's first word (${b_four}: a
// vec4 word, or b_lanes() where B is scalars; chosen by the template, not a branch in the K loop).
fn b_four(i: u32, col: u32) -> vec4<f32> {
    return ${b_four};
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.m_tiles * p.n4) {
        return;
    }
    let col = id % p.n4;
    let rest = id / p.n4;
    let row0 = (rest % p.m_tiles) * TILE_M;
    let bi = rest / p.m_tiles;
    let a_base = bi * p.a_batch_stride;
    let b_base = bi * p.b_batch_stride + select(col * B_COL, (col / 8u) * p.b_panel + col % 8u, B_PANELS);

    // Rows past the end re-read the last row (no branch in the loop); their results are dropped.
    var a_rows: array<u32, TILE_M>;
    for (var r = 0u; r < TILE_M; r++) {
        a_rows[r] = a_base + min(row0 + r, p.m - 1u) * p.a_row;
    }
    var acc: array<vec4<f32>, TILE_M>;
    for (var k4 = 0u; k4 < p.k4; k4++) {
        let bi0 = b_base + k4 * 4u * ${b_row};
        let bm = scaled_rows(k4, mat4x4<f32>(b_four(bi0, col), b_four(bi0 + ${b_row}, col),
                                             b_four(bi0 + 2u * ${b_row}, col), b_four(bi0 + 3u * ${b_row}, col)));
        for (var r = 0u; r < TILE_M; r++) {
            let v = a_four(a_rows[r] + k4 * A_STEP);
            acc[r] = fma(bm[0], vec4<f32>(v.x), fma(bm[1], vec4<f32>(v.y),
                     fma(bm[2], vec4<f32>(v.z), fma(bm[3], vec4<f32>(v.w), acc[r]))));
        }
    }
    for (var t = 0u; t < p.k_tail; t++) {
        let k = p.k4 * 4u + t;
        let bt = b_four(b_base + k * ${b_row}, col);
        for (var r = 0u; r < TILE_M; r++) {
            acc[r] = fma(bt, vec4<f32>(a_one(a_rows[r] + k)), acc[r]);
        }
    }

    let channel = channel_at(col);
    for (var r = 0u; r < TILE_M; r++) {
        if (row0 + r < p.m) {
            if (N_RAGGED) {
                write_ragged(bi * p.m + row0 + r, col, channel, acc[r]);
            } else {
                write_channel((bi * p.m + row0 + r) * p.n4 + col, channel, acc[r]);
            }
        }
    }
}
