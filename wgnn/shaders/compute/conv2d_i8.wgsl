// A quantized convolution (one group) on packed int8: an implicit GEMM on workgroup tiles, like
// conv2d_gemm.wgsl, whose tiles hold four int8 values to a u32 and whose products are WGSL's
// dot4I8Packed (four multiply-adds, i32 sums: exact for any K below 2^17).
//
// Operands. x holds the activations x_q (integers), or the shifted activations x_q - x_zero
// (floats, small integers) as the integer-conv pass leaves them. Each is packed as x_q - offset =
// x + p.x_add, which lies in [-128, 127] for int8 (offset 0) and uint8 (offset 128) activations;
// the padding, x_q = x_zero, is the word p.x_pad_word (x_zero - offset in each byte). Where x is
// stored packed already (X_PACKED: a u32 per four channels' bytes), a word only has its bytes'
// offset flipped (XOR p.x_flip: 0x80808080 for uint8). w holds the
// weights w_q - w_zero, each in [-128, 127], packed [K / 4][Cout / 4] as vec4<u32>: component j is
// output channel 4 col4 + j, its bytes four consecutive k. The bias binding holds the int32 bias
// less (x_zero - offset) * sum_k w[k][c], which takes the packing's offset back out of every sum
// (padding included: a padded tap contributes nothing).
//
// Split-K (Params.splits > 1): workgroups also divide K; each writes its raw partial sums to `y`
// at [split][M][N] (PARTIAL), and splitk_i8.wgsl adds them and applies the epilogue.
#include "compute/common.wgsl"

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    n_tiles: u32, in_h: u32, in_w: u32, in_c4: u32,
    out_h: u32, out_w: u32, kernel_w: u32, stride_h: u32,
    stride_w: u32, dil_h: u32, dil_w: u32, pad_top: i32,
    pad_left: i32, x_add: f32, splits: u32, k4_per_split: u32,
    x_flip: u32, x_pad_word: u32, y_row4: u32, y_pitch4: u32,
    y_offset4: u32,  // where y is a slice (y_slice.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_type}>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;

#include "compute/epilogue_i8.wgsl"  // bindings 3-6 (bias, multiplier, y, residual) and write_sums()

const WG_X: u32 = ${wg_x}u;
const WG_Y: u32 = WG / WG_X;
const TM: u32 = ${tile_m}u;
const TN4: u32 = ${tile_n4}u;  // vec4 columns per invocation, WG_X apart (as in gemm_tile.wgsl)
const BM: u32 = WG_Y * TM;     // rows (output pixels) per block
const BN4: u32 = WG_X * TN4;   // vec4 columns (output channels) per block
const BK4: u32 = 8u;         // packed words of K per step (32 taps x channels)
const POINTWISE: bool = ${pointwise};
const X_PACKED: bool = ${x_packed};
const PARTIAL: bool = ${partial};
const A_LOADS: u32 = (BM * BK4 + WG - 1u) / WG;  // words of A each invocation stages per step

var<workgroup> a_tile: array<vec4<u32>, BM * BK4 / 4u>;  // [BM][BK4 / 4]: a row's words read four at a time
var<workgroup> b_tile: array<vec4<u32>, BK4 * BN4>;   // [BK4][BN4]

// The word of x at `index`, or, where x holds a vec4 per four channels, those packed.
fn x_word(index: u32) -> u32 {
    if (X_PACKED) {
        return ${x_word};
    }
    return pack4xI8(vec4<i32>(${x_vec} + p.x_add));
}

// Where A's row `row` (an output pixel) reads the input: (n * in_h, top input row, left input column,
// 1), or (the pixel's first word, 0, 0, 1) for a pointwise convolution; all 0 past the last row.
// Computed once per row, before the K loop: the divisions stay out of it.
fn origin(row: u32) -> vec4<i32> {
    if (row >= p.m) {
        return vec4<i32>(0);
    }
    if (POINTWISE) {
        return vec4<i32>(i32(row * p.in_c4), 0, 0, 1);
    }
    let ox = row % p.out_w;
    let oy = (row / p.out_w) % p.out_h;
    let n = row / (p.out_w * p.out_h);
    return vec4<i32>(i32(n * p.in_h), i32(oy * p.stride_h) - p.pad_top, i32(ox * p.stride_w) - p.pad_left, 1);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    var block = wid.y * nwg.x + wid.x;  // uniform across the workgroup: the early return is safe
    if (block >= p.splits * p.m_tiles * p.n_tiles) {
        return;
    }
    let tile_n = block % p.n_tiles;
    block = block / p.n_tiles;
    let tile_m = block % p.m_tiles;
    let split = block / p.m_tiles;
    let k4_begin = split * p.k4_per_split;
    let k4_end = min(k4_begin + p.k4_per_split, p.k4);
    let tx = lid % WG_X;
    let ty = lid / WG_X;
    let row0 = tile_m * BM;
    let col0 = tile_n * BN4;

    // The words of A this invocation stages each step: rows row0 + (lid + j WG) / BK4, all at the
    // same column of the step, lid % BK4 (WG is a multiple of BK4).
    var origins: array<vec4<i32>, A_LOADS>;
    for (var j = 0u; j < A_LOADS; j++) {
        origins[j] = origin(select(p.m, row0 + (lid + j * WG) / BK4, lid + j * WG < BM * BK4));
    }
    var acc: array<vec4<i32>, TM * TN4>;  // [row r][column j]
    for (var step = k4_begin; step < k4_end; step += BK4) {
        let k4 = step + lid % BK4;
        let tap = k4 / p.in_c4;
        let dy = i32((tap / p.kernel_w) * p.dil_h);
        let dx = i32((tap % p.kernel_w) * p.dil_w);
        let c4 = k4 % p.in_c4;
        for (var j = 0u; j < A_LOADS; j++) {
            let i = lid + j * WG;
            if (i < BM * BK4) {
                let o = origins[j];
                var v = 0u;  // past the edges: zero products (the bias correction counts only real taps)
                if (o.w != 0 && k4 < k4_end) {
                    let iy = o.y + dy;
                    let ix = o.z + dx;
                    if (POINTWISE) {
                        v = x_word(u32(o.x) + k4);
                    } else if (iy < 0 || iy >= i32(p.in_h) || ix < 0 || ix >= i32(p.in_w)) {
                        v = p.x_pad_word;
                    } else {
                        v = x_word(((u32(o.x) + u32(iy)) * p.in_w + u32(ix)) * p.in_c4 + c4);
                    }
                }
                a_tile[i / 4u][i % 4u] = v;
            }
        }
        for (var i = lid; i < BK4 * BN4; i += WG) {
            let k4 = step + i / BN4;
            let col4 = col0 + i % BN4;
            var v = vec4<u32>(0u);
            if (k4 < k4_end && col4 < p.n4) {
                v = w[k4 * p.n4 + col4];
            }
            b_tile[i] = v;
        }
        workgroupBarrier();
        // four words of K at a time: one vec4 of A per row, 4 x TN4 vec4s of B per invocation
        for (var kq = 0u; kq < BK4 / 4u; kq++) {
            var bv: array<vec4<u32>, 4u * TN4>;  // [word q][column j]
            for (var q = 0u; q < 4u; q++) {
                for (var j = 0u; j < TN4; j++) {
                    bv[q * TN4 + j] = b_tile[(kq * 4u + q) * BN4 + tx + j * WG_X];
                }
            }
            for (var r = 0u; r < TM; r++) {
                let a = a_tile[(ty * TM + r) * (BK4 / 4u) + kq];
                for (var j = 0u; j < TN4; j++) {
                    var sum = acc[r * TN4 + j];
                    for (var q = 0u; q < 4u; q++) {
                        let b = bv[q * TN4 + j];
                        sum += vec4<i32>(dot4I8Packed(a[q], b.x), dot4I8Packed(a[q], b.y), dot4I8Packed(a[q], b.z),
                                         dot4I8Packed(a[q], b.w));
                    }
                    acc[r * TN4 + j] = sum;
                }
            }
        }
        workgroupBarrier();
    }

    for (var j = 0u; j < TN4; j++) {
        let col4 = col0 + tx + j * WG_X;
        let channels = channels_at(min(col4, p.n4 - 1u));
        for (var r = 0u; r < TM; r++) {
            let row = row0 + ty * TM + r;
            if (row < p.m && col4 < p.n4) {
                if (PARTIAL) {
                    y[(split * p.m + row) * p.n4 + col4] = ${y_partial}(acc[r * TN4 + j]);
                } else {
                    write_sums(row * p.n4 + col4, channels, acc[r * TN4 + j]);
                }
            }
        }
    }
}
