// C = A x W (+ bias, + residual, activation) with W packed as weight-only quantization stores it
// (nbits.wgsl), for adapters where every invocation's own buffer load is dear and subgroup
// shuffles are cheap (a software adapter), as matmul_shared.wgsl does for float weights: eight
// neighbouring lanes compute the same TILE_M rows for eight neighbouring vec4 columns, lane i loads
// A's rows i (and i + 8) and the octet hands them round (octet.wgsl). Each lane dequantizes its
// own columns' words. Needs N divisible by 4 and K by the values per word; TILE_M is 8 or 16.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()
#include "compute/octet.wgsl"  // madd(), octet_rows() and write_octet()

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    words: u32, col_words: u32, alpha: f32, beta: f32,  // K's words, a column's words (K padded to blocks)
    n8: u32, y_row4: u32, y_pitch4: u32, y_offset4: u32,
    r_out4: u32, r_row4: u32, r_pitch4: u32, r_offset4: u32,
    post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<${a_word}>;  // (f16: two u32 words, _words in nn.py)
#include "compute/nbits.wgsl"  // bindings 2, 7 and 8, group_weights(), add_word()

const TILE_M: u32 = ${tile_m}u;
const OCTET_TILE: u32 = TILE_M;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_size) sg_size: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32) {
    // Numbered by subgroup, so that an octet never straddles two subgroups.
    let id = flat_id(wid, sg * sg_size + sg_lane, nwg);
    let octet = id / 8u;
    if (octet >= p.m_tiles * p.n8) {
        return;  // whole octets only: the lanes of a live octet all stay
    }
    let lane = id % 8u;
    let first = sg_lane - lane;  // the octet's first lane in the subgroup
    let col = (octet % p.n8) * 8u + lane;
    let own_col = min(col, p.n4 - 1u);  // (lanes past the last column load and share, and store nothing)
    let row0 = (octet / p.n8) * TILE_M;
    let broadcast = octet_is_subgroup(sg_size);
    var acc: array<vec4<f32>, TILE_M>;
    if (octets_share(sg_size)) {
        // This lane's rows: row0 + lane and row0 + 8 + lane (past the end: the last row again).
        let mine0 = min(row0 + lane, p.m - 1u) * p.k4;
        let mine1 = min(row0 + 8u + lane, p.m - 1u) * p.k4;
        for (var w = 0u; w < p.words; w++) {
            let words = column_words(w, own_col);
            let scale = block_scales(w, own_col);
            let zero = block_zeros(w, own_col);
            for (var g = 0u; g < GROUPS; g++) {
                let k4 = w * GROUPS + g;
                let wg = group_weights(words, g, scale, zero);
                octet_rows(&acc, 0u, ${a_read}(a[mine0 + k4]), wg[0], wg[1], wg[2], wg[3], first, broadcast);
                if (TILE_M == 16u) {
                    octet_rows(&acc, 8u, ${a_read}(a[mine1 + k4]), wg[0], wg[1], wg[2], wg[3], first, broadcast);
                }
            }
        }
    } else {
        var rows: array<u32, TILE_M>;
        for (var r = 0u; r < TILE_M; r++) {
            rows[r] = min(row0 + r, p.m - 1u) * p.k4;
        }
        for (var w = 0u; w < p.words; w++) {
            add_word(&acc, &rows, w, own_col);
        }
    }
    if (col < p.n4) {
        let live = min(p.m - row0, TILE_M);
        let c = channel_at(col);
        write_octet(&acc, 0u, row0 * p.n4 + col, p.n4, live, c);
        if (TILE_M == 16u) {
            write_octet(&acc, 8u, row0 * p.n4 + col, p.n4, live, c);
        }
    }
}
