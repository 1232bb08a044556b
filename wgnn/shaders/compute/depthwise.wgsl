// Depthwise convolution (one filter per channel) over NHWC, four channels per vec4.
// One invocation computes TILE_X neighbouring outputs of a row. For each filter row it loads the
// COLS input columns those outputs touch once, into registers, and reuses them across the tile:
// a 3x3 stride-1 filter reads 6 columns for 4 outputs instead of 12. Filter width, stride and
// dilation along x are template constants (they size the register array); the rest are uniforms.
// Weights are packed [KH][KW][C]. In fp16 sessions f16 operands are read as u32 words (halves()).
// A quantized convolution may read its input's integers as they are stored (one per element, or
// packed four to a word: unpack_u8/unpack_i8) and subtract their zero point X_ZERO as it loads
// them; padding stays 0, which is x_zero in that shifted domain.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    batch: u32, in_h: u32, in_w: u32, c4: u32,
    out_h: u32, out_w: u32, tiles_w: u32, kernel_h: u32,
    stride_h: u32, dil_h: u32, pad_top: i32, pad_left: i32,
    alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
}

const TILE_X: u32 = ${tile_x}u;
const KERNEL_W: u32 = ${kernel_w}u;
const STRIDE_W: u32 = ${stride_w}u;
const DIL_W: u32 = ${dil_w}u;
const COLS: u32 = (TILE_X - 1u) * STRIDE_W + (KERNEL_W - 1u) * DIL_W + 1u;
const X_ZERO: f32 = ${x_zero};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_word}>;
@group(0) @binding(2) var<storage, read> w: array<${w_word}>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.out_h * p.tiles_w * p.c4) {
        return;
    }
    let c4 = id % p.c4;
    var rest = id / p.c4;
    let ox0 = (rest % p.tiles_w) * TILE_X;
    rest = rest / p.tiles_w;
    let oy = rest % p.out_h;
    let n = rest / p.out_h;
    let ix0 = i32(ox0 * STRIDE_W) - p.pad_left;

    var acc: array<vec4<f32>, TILE_X>;
    var cols: array<vec4<f32>, COLS>;
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(oy * p.stride_h + kh * p.dil_h) - p.pad_top;
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        let row = (n * p.in_h + u32(iy)) * p.in_w;
        for (var j = 0u; j < COLS; j++) {
            let ix = ix0 + i32(j);
            cols[j] = select(vec4<f32>(0.0), ${x_read}(x[(row + u32(max(ix, 0))) * p.c4 + c4]) - X_ZERO,
                             ix >= 0 && ix < i32(p.in_w));
        }
        for (var kw = 0u; kw < KERNEL_W; kw++) {
            let wv = ${w_read}(w[(kh * KERNEL_W + kw) * p.c4 + c4]);
            for (var t = 0u; t < TILE_X; t++) {
                acc[t] = fma(cols[t * STRIDE_W + kw * DIL_W], wv, acc[t]);
            }
        }
    }

    for (var t = 0u; t < TILE_X; t++) {
        let ox = ox0 + t;
        if (ox < p.out_w) {
            write_output(((n * p.out_h + oy) * p.out_w + ox) * p.c4 + c4, c4, acc[t]);
        }
    }
}
