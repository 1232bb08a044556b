// Matrix product C = A x W (+ bias, + residual, activation) with W packed as weight-only
// quantization stores it (nbits.wgsl): the weights stay packed on the GPU (4 bits: an eighth of
// f32's bytes) and are dequantized as they are read, each once per invocation for TILE_M rows.
//
// An output block is TILE_M rows x 4 columns (a vec4). SPLIT invocations share a block, each
// walking every SPLIT-th word of K (SPLIT = 1: one invocation walks all of K, without barriers;
// a GPU spreads K over lanes and adds their sums in a workgroup tree). Needs N divisible by 4 and
// K by the values per word.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    words: u32, col_words: u32, alpha: f32, beta: f32,  // K's words, a column's words (K padded to blocks)
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32,
    r_row4: u32, r_pitch4: u32, r_offset4: u32, post_scale: f32,
    post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<${a_word}>;  // (f16: two u32 words, _words in nn.py)
#include "compute/nbits.wgsl"  // bindings 2, 7 and 8, add_word()

const TILE_M: u32 = ${tile_m}u;
const SPLIT: u32 = ${split}u;

var<workgroup> partial: array<vec4<f32>, ${partial_size}>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let tile = (wid.y * nwg.x + wid.x) * (WG / SPLIT) + lid / SPLIT;
    let part = lid % SPLIT;
    let valid = tile < p.m_tiles * p.n4;  // (no early return: the lanes of a workgroup meet at barriers)
    let col = tile % p.n4;
    let row0 = min(tile / p.n4, p.m_tiles - 1u) * TILE_M;
    // Rows past the end re-read the last row; their results are dropped.
    var a_rows: array<u32, TILE_M>;
    for (var r = 0u; r < TILE_M; r++) {
        a_rows[r] = min(row0 + r, p.m - 1u) * p.k4;
    }
    var acc: array<vec4<f32>, TILE_M>;
    var w = part;
    if (!valid) {
        w = p.words;
    }
    for (; w < p.words; w += SPLIT) {
        add_word(&acc, &a_rows, w, col);
    }
    if (SPLIT > 1u) {
        for (var r = 0u; r < TILE_M; r++) {
            partial[r * WG + lid] = acc[r];
        }
        workgroupBarrier();
        for (var step = SPLIT / 2u; step > 0u; step = step / 2u) {
            if (part < step) {
                for (var r = 0u; r < TILE_M; r++) {
                    partial[r * WG + lid] += partial[r * WG + lid + step];
                }
            }
            workgroupBarrier();
        }
        for (var r = 0u; r < TILE_M; r++) {
            acc[r] = partial[r * WG + lid];
        }
    }
    if (valid && part == 0u) {
        let channel = channel_at(col);
        for (var r = 0u; r < TILE_M; r++) {
            if (row0 + r < p.m) {
                write_channel((row0 + r) * p.n4 + col, channel, acc[r]);
            }
        }
    }
}
