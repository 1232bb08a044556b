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
// Needs K and N divisible by 4; TILE_M is 8 or 16. A's rows lie a_row4 vec4s apart (K / 4 for a
// matrix; fewer where they overlap: a convolution over one row of its input, nn.py).
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()
#include "compute/octet.wgsl"  // madd() and octet_rows()
#include "compute/x_scale.wgsl"  // X_SCALED, x_scale4() (binding 7)

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    batch: u32, a_batch_stride: u32, b_batch_stride: u32, alpha: f32,
    beta: f32,
    n8: u32, a_row4: u32, y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
}

const TILE_M: u32 = ${tile_m}u;
const OCTET_TILE: u32 = TILE_M;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<${a_word}>;
@group(0) @binding(2) var<storage, ${b_access}> b: array<${b_word}>;

// B's four rows from vec4 bk on (K step k4), scaled where the input is (x_scale.wgsl).
fn b_rows(bk: u32, k4: u32) -> mat4x4<f32> {
    return scaled_rows(k4, mat4x4<f32>(${b_read}(b[bk]), ${b_read}(b[bk + p.n4]), ${b_read}(b[bk + 2u * p.n4]),
                                       ${b_read}(b[bk + 3u * p.n4])));
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
    let col = (octet % p.n8) * 8u + lane;
    let rest = octet / p.n8;
    let row0 = (rest % p.m_tiles) * TILE_M;
    let bi = rest / p.m_tiles;
    let a_base = bi * p.a_batch_stride;
    let b_base = bi * p.b_batch_stride + min(col, p.n4 - 1u);
    let share = octets_share(sg_size);
    let broadcast = octet_is_subgroup(sg_size);

    // Two K loops, not one with a branch inside: lavapipe keeps a branch on the subgroup size inside
    // the loop (measured: 1.2x to 1.3x the time of MobileNet V1's 1x1 convolutions).
    var acc: array<vec4<f32>, TILE_M>;
    if (share) {
        // This lane's rows: row0 + lane and row0 + 8 + lane (past the end: the last row again).
        let mine0 = a_base + min(row0 + lane, p.m - 1u) * p.a_row4;
        let mine1 = a_base + min(row0 + 8u + lane, p.m - 1u) * p.a_row4;
        for (var k4 = 0u; k4 < p.k4; k4++) {
            let bk = b_base + k4 * 4u * p.n4;
            let bm = b_rows(bk, k4);
            // Written out per octet of rows (not a loop): the accumulators' indices stay constants.
            octet_rows(&acc, 0u, ${a_read}(a[mine0 + k4]), bm[0], bm[1], bm[2], bm[3], first, broadcast);
            if (TILE_M == 16u) {
                octet_rows(&acc, 8u, ${a_read}(a[mine1 + k4]), bm[0], bm[1], bm[2], bm[3], first, broadcast);
            }
        }
    } else {
        var rows: array<u32, TILE_M>;
        for (var r = 0u; r < TILE_M; r++) {
            rows[r] = a_base + min(row0 + r, p.m - 1u) * p.a_row4;
        }
        for (var k4 = 0u; k4 < p.k4; k4++) {
            let bk = b_base + k4 * 4u * p.n4;
            let bm = b_rows(bk, k4);
            for (var r = 0u; r < TILE_M; r++) {
                acc[r] = madd(acc[r], ${a_read}(a[rows[r] + k4]), bm[0], bm[1], bm[2], bm[3]);
            }
        }
    }

    if (col < p.n4) {
        let live = min(p.m - row0, TILE_M);
        write_octet(&acc, 0u, (bi * p.m + row0) * p.n4 + col, p.n4, live, col);
        if (TILE_M == 16u) {
            write_octet(&acc, 8u, (bi * p.m + row0) * p.n4 + col, p.n4, live, col);
        }
    }
}
