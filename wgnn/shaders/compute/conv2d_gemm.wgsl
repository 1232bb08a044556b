// Convolution (one group) as an implicit GEMM on the workgroup-tiled core (gemm_tile.wgsl): the
// rows of A are the output pixels (n, y, x) of the NHWC output, its columns the filter taps times
// input channels, read from the NHWC input where they fall (zero in the padding); B is the filter
// packed [KH][KW][Cin][Cout]. Needs input and output channels divisible by 4.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    n_tiles: u32, batch: u32, splits: u32, k4_per_split: u32,
    in_h: u32, in_w: u32, in_c4: u32, out_h: u32,
    out_w: u32, kernel_w: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_top: i32, pad_left: i32,
    alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<vec4<x_elem>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<w_elem>>;

// (n * in_h, the top input row, the left input column, 1) of output pixel `row`.
fn a_origin(bi: u32, row: u32) -> vec4<i32> {
    let ox = row % p.out_w;
    let oy = (row / p.out_w) % p.out_h;
    let n = row / (p.out_w * p.out_h);
    return vec4<i32>(i32(n * p.in_h), i32(oy * p.stride_h) - p.pad_top, i32(ox * p.stride_w) - p.pad_left, 1);
}

// (the tap's row offset, column offset, the channel vec4) of column k4.
fn a_column(k4: u32) -> vec4<i32> {
    let tap = k4 / p.in_c4;
    return vec4<i32>(i32((tap / p.kernel_w) * p.dil_h), i32((tap % p.kernel_w) * p.dil_w), i32(k4 % p.in_c4), 0);
}

fn load_a(origin: vec4<i32>, column: vec4<i32>) -> vec4<math_elem> {
    let iy = origin.y + column.x;
    let ix = origin.z + column.y;
    if (iy < 0 || iy >= i32(p.in_h) || ix < 0 || ix >= i32(p.in_w)) {
        return vec4<math_elem>(0.0);
    }
    return vec4<math_elem>(x[((u32(origin.x) + u32(iy)) * p.in_w + u32(ix)) * p.in_c4 + u32(column.z)]);
}

fn load_b(bi: u32, k: u32, col4: u32) -> vec4<math_elem> {
    return vec4<math_elem>(w[k * p.n4 + col4]);
}

#include "compute/gemm_tile.wgsl"
