// Batched matrix multiply C = A x B (+ bias, + residual, activation) like matmul.wgsl, for adapters
// where every invocation's own buffer load is dear (a software adapter runs each lane's load as
// scalar code) and subgroup shuffles are cheap register moves.
//
// Invocations work in octets: eight neighbouring lanes of one subgroup compute the same TILE_M rows
// for eight neighbouring vec4 columns. The rows' A values are the same for all eight, so instead of
// each lane loading all TILE_M of them, lane i loads rows i, i+8, ... and the octet passes them
// round (subgroupBroadcast from fixed lanes where the subgroup is one octet, which is cheapest on a
// software adapter; subgroupShuffle otherwise): TILE_M / 8 loads of A per lane and K step instead
// of TILE_M. Lanes whose column is past the end still load and share their rows; they only skip
// the store.
// On a subgroup size that is not a multiple of 8 (no whole octets) every lane loads its own rows.
// An N not divisible by 4 as in matmul.wgsl (N_RAGGED: B computed at run time read as scalars,
// constant B padded with zero columns, rows stored up to N); a K not divisible by 4 too (A_STEP = 4:
// A read as scalars, four of K at a time, then the last p.k_tail of K one at a time, each a row of
// B, through the same octet sharing). TILE_M is 8 or 16. A's rows lie p.a_row of its words apart
// (K / 4 vec4s for a matrix, or K scalars; fewer where they overlap: a convolution over one row of
// its input, nn.py).
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()
#include "compute/octet.wgsl"  // madd() and octet_rows()
#include "compute/x_scale.wgsl"  // X_SCALED, x_scale4() (binding 7)
#include "compute/ragged.wgsl"  // b_lanes(), write_ragged() (N_RAGGED)
#include "compute/a_reads.wgsl"  // A_STEP, a_four(), a_one()

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    batch: u32, a_batch_stride: u32, b_batch_stride: u32, alpha: f32,
    beta: f32,
    n8: u32, a_row: u32, y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    n: u32, b_row: u32,  // N; B's rows apart, in its words (n4, or N where B_COL = 4)
    k_tail: u32,  // K % 4 (scalar A only)
    rows_first: u32,  // 1: neighbouring octets take the row tiles of one column block (see main)
    fold: u32,  // 0, or a batch of products over one B as one: rows per product (see a_at)
    b_panel: u32,  // constant B's words per panel (B_PANELS)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

const TILE_M: u32 = ${tile_m}u;
const OCTET_TILE: u32 = TILE_M;
const B_COL: u32 = ${b_col}u;  // B's words per vec4 of columns: 1, or 4 (scalars: N_RAGGED's B computed at run time)
const N_RAGGED: bool = ${n_ragged};
// Constant B lies in panels (nn._panels): each octet's eight vec4 columns, K rows of them, together
// (${b_row} words a row), so that the octet reads its weights in order; B computed at run time is
// read row-major.
const B_PANELS: bool = ${b_panels};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<${a_word}>;
@group(0) @binding(2) var<storage, ${b_access}> b: array<${b_word}>;

// B's four rows from word bk on (K step k4; the vec4 of columns col), scaled where the input is
// (x_scale.wgsl).
// (${b_rows}: the vec4 words' reads, or b_lanes() where B is scalars: chosen by the template, not
// a branch in the K loop, which lavapipe keeps.)
fn b_rows(bk: u32, k4: u32, col: u32) -> mat4x4<f32> {
    return scaled_rows(k4, ${b_rows});
}

// B's row from word i on (the vec4 of columns col): a ragged K's last values, one at a time.
fn b_one(i: u32, col: u32) -> vec4<f32> {
    return ${b_one};
}

// The tile's rows r0 .. r0 + 7 stored up to column N (write_octet's N_RAGGED form, written out
// row by row as that is).
fn write_octet_ragged(acc: ptr<function, array<vec4<f32>, OCTET_TILE>>, r0: u32, row: u32, live: u32, col: u32,
                      c: Channel) {
    if (r0 < live) { write_ragged(row + r0, col, c, (*acc)[r0]); }
    if (r0 + 1u < live) { write_ragged(row + r0 + 1u, col, c, (*acc)[r0 + 1u]); }
    if (r0 + 2u < live) { write_ragged(row + r0 + 2u, col, c, (*acc)[r0 + 2u]); }
    if (r0 + 3u < live) { write_ragged(row + r0 + 3u, col, c, (*acc)[r0 + 3u]); }
    if (r0 + 4u < live) { write_ragged(row + r0 + 4u, col, c, (*acc)[r0 + 4u]); }
    if (r0 + 5u < live) { write_ragged(row + r0 + 5u, col, c, (*acc)[r0 + 5u]); }
    if (r0 + 6u < live) { write_ragged(row + r0 + 6u, col, c, (*acc)[r0 + 6u]); }
    if (r0 + 7u < live) { write_ragged(row + r0 + 7u, col, c, (*acc)[r0 + 7u]); }
}

// A's row r, in its words from the batch's first: r * a_row, or with fold (a batch of products that
// share B, computed as one of all their rows: a convolution's rows of output pixels) row r % fold of
// product r / fold, whose rows start a_batch_stride apart.
fn a_at(r: u32) -> u32 {
    if (p.fold == 0u) {
        return r * p.a_row;
    }
    return (r / p.fold) * p.a_batch_stride + (r % p.fold) * p.a_row;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_size) sg_size: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32) {
    // Numbered by subgroup, so that an octet never straddles two subgroups.
    let id = flat_id(wid, sg * sg_size + sg_lane, nwg);
    let octet = id / 8u;
    if (octet >= p.batch * p.m_tiles * p.n8) {
        return;  // whole octets only: the lanes of a live octet all stay
    }
    let lane = id % 8u;
    let first = sg_lane - lane;  // the octet's first lane in the subgroup
    // Neighbouring octets take neighbouring column blocks of one row tile (they share its rows of A,
    // the lanes of a workgroup running together); with rows_first (B larger than A: few rows, many
    // columns) the row tiles of one column block, so that B's columns, read once per row tile, are
    // read at about the same time, from the cache, not again from memory for every row tile.
    var col = (octet % p.n8) * 8u + lane;
    var row0 = (octet / p.n8 % p.m_tiles) * TILE_M;
    if (p.rows_first != 0u) {
        row0 = (octet % p.m_tiles) * TILE_M;
        col = (octet / p.m_tiles % p.n8) * 8u + lane;
    }
    let bi = octet / (p.n8 * p.m_tiles);
    let a_base = bi * p.a_batch_stride;
    let bcol = min(col, p.n4 - 1u);
    let b_base = bi * p.b_batch_stride + select(bcol * B_COL, (bcol / 8u) * p.b_panel + bcol % 8u, B_PANELS);
    let share = octets_share(sg_size);
    let broadcast = octet_is_subgroup(sg_size);

    // Two K loops, not one with a branch inside: lavapipe keeps a branch on the subgroup size inside
    // the loop (measured: 1.2x to 1.3x the time of MobileNet V1's 1x1 convolutions).
    var acc: array<vec4<f32>, TILE_M>;
    if (share) {
        // This lane's rows: row0 + lane and row0 + 8 + lane (past the end: the last row again).
        let mine0 = a_base + a_at(min(row0 + lane, p.m - 1u));
        let mine1 = a_base + a_at(min(row0 + 8u + lane, p.m - 1u));
        for (var k4 = 0u; k4 < p.k4; k4++) {
            let bk = b_base + k4 * 4u * ${b_row};
            let bm = b_rows(bk, k4, bcol);
            // Written out per octet of rows (not a loop): the accumulators' indices stay constants.
            octet_rows(&acc, 0u, a_four(mine0 + k4 * A_STEP), bm[0], bm[1], bm[2], bm[3], first, broadcast);
            if (TILE_M == 16u) {
                octet_rows(&acc, 8u, a_four(mine1 + k4 * A_STEP), bm[0], bm[1], bm[2], bm[3], first, broadcast);
            }
        }
        // (a ragged K's last values: x0 + 0 for the other three lanes of each madd, the same sums)
        for (var k = p.k4 * 4u; k < p.k4 * 4u + p.k_tail; k++) {
            let bt = b_one(b_base + k * ${b_row}, bcol);
            let z = vec4<f32>(0.0);
            octet_rows(&acc, 0u, vec4<f32>(a_one(mine0 + k), 0.0, 0.0, 0.0), bt, z, z, z, first, broadcast);
            if (TILE_M == 16u) {
                octet_rows(&acc, 8u, vec4<f32>(a_one(mine1 + k), 0.0, 0.0, 0.0), bt, z, z, z, first, broadcast);
            }
        }
    } else {
        var rows: array<u32, TILE_M>;
        for (var r = 0u; r < TILE_M; r++) {
            rows[r] = a_base + a_at(min(row0 + r, p.m - 1u));
        }
        for (var k4 = 0u; k4 < p.k4; k4++) {
            let bk = b_base + k4 * 4u * ${b_row};
            let bm = b_rows(bk, k4, bcol);
            for (var r = 0u; r < TILE_M; r++) {
                acc[r] = madd(acc[r], a_four(rows[r] + k4 * A_STEP), bm[0], bm[1], bm[2], bm[3]);
            }
        }
        for (var k = p.k4 * 4u; k < p.k4 * 4u + p.k_tail; k++) {
            let bt = b_one(b_base + k * ${b_row}, bcol);
            for (var r = 0u; r < TILE_M; r++) {
                acc[r] = fma(bt, vec4<f32>(a_one(rows[r] + k)), acc[r]);
            }
        }
    }

    if (col < p.n4) {
        let live = min(p.m - row0, TILE_M);
        if (N_RAGGED) {
            let c = channel_at(col);
            write_octet_ragged(&acc, 0u, bi * p.m + row0, live, col, c);
            if (TILE_M == 16u) {
                write_octet_ragged(&acc, 8u, bi * p.m + row0, live, col, c);
            }
        } else {
            let c = channel_at(col);
            write_octet(&acc, 0u, (bi * p.m + row0) * p.n4 + col, p.n4, live, c);
            if (TILE_M == 16u) {
                write_octet(&acc, 8u, (bi * p.m + row0) * p.n4 + col, p.n4, live, c);
            }
        }
    }
}
