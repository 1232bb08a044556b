// C = A x W (+ bias, + residual, activation) on the workgroup-tiled GEMM core (gemm_tile.wgsl),
// with W packed as weight-only quantization stores it (nbits.wgsl): each value of W's tile is
// dequantized as the workgroup stages it, (q - zero) * scale in f32, and serves the block's BM rows
// from workgroup memory. The GPU's kernel for many rows of a packed product (a prompt, a batch of
// sentences); split-K as the core does it; in f16 arithmetic (nbits_gemm_f16: the staged weights
// rounded to f16, as f16 storage of the dequantized weights would round them) as gemm_f16 is. Needs
// N divisible by 4 and K by the values per word.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    n_tiles: u32, batch: u32, splits: u32, k4_per_split: u32,
    col_words: u32, alpha: f32, beta: f32, y_row4: u32,
    y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32,
    r_pitch4: u32, r_offset4: u32, post_scale: f32, post_shift: f32,  // (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<vec4<a_elem>>;
#include "compute/nbits.wgsl"  // bindings 2, 7 and 8, column_words(), block_scales(), weights()

const TILE_M: u32 = ${tile_m}u;  // (nbits.wgsl's add_word, unused here, is sized by it; A as ${a_word})

fn a_origin(bi: u32, row: u32) -> vec4<i32> {
    return vec4<i32>(i32((bi * p.m + row) * p.k4), 0, 0, 1);
}

fn a_column(k4: u32) -> vec4<i32> {
    return vec4<i32>(i32(k4), 0, 0, 0);
}

fn load_a(origin: vec4<i32>, column: vec4<i32>) -> vec4<math_elem> {
    return vec4<math_elem>(a[u32(origin.x + column.x)]);
}

fn load_b(bi: u32, k: u32, col4: u32) -> vec4<math_elem> {
    let w = k / (4u * GROUPS);
    return vec4<math_elem>(weights(column_words(w, col4), k % (4u * GROUPS), block_scales(w, col4),
                                   block_zeros(w, col4)));
}

#include "compute/gemm_tile.wgsl"
