// Batched matrix multiply C = A x B (+ bias, + residual, activation) on the workgroup-tiled GEMM
// core (gemm_tile.wgsl): A [batch][M][K] and B [batch][K][N], row-major, vec4 along K (A) and N
// (B, C). Also every 1x1, stride-1 convolution (an NHWC tensor is an [N*H*W, C] matrix) and
// Winograd's 16 products. Needs K and N divisible by 4.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()
#include "compute/x_scale.wgsl"  // X_SCALED, x_scale4() (binding 7)

struct Params {
    m: u32, k4: u32, n4: u32, m_tiles: u32,
    n_tiles: u32, batch: u32, splits: u32, k4_per_split: u32,
    a_batch_stride: u32, b_batch_stride: u32, alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<vec4<a_elem>>;
@group(0) @binding(2) var<storage, ${b_access}> b: array<vec4<b_elem>>;

fn a_origin(bi: u32, row: u32) -> vec4<i32> {
    return vec4<i32>(i32(bi * p.a_batch_stride + row * p.k4), 0, 0, 1);
}

fn a_column(k4: u32) -> vec4<i32> {
    return vec4<i32>(i32(k4), 0, 0, 0);
}

fn load_a(origin: vec4<i32>, column: vec4<i32>) -> vec4<math_elem> {
    return vec4<math_elem>(a[u32(origin.x + column.x)]);
}

fn load_b(bi: u32, k: u32, col4: u32) -> vec4<math_elem> {
    if (X_SCALED) {
        return vec4<math_elem>(vec4<f32>(b[bi * p.b_batch_stride + k * p.n4 + col4]) * x_scale4(k / 4u)[k % 4u]);
    }
    return vec4<math_elem>(b[bi * p.b_batch_stride + k * p.n4 + col4]);
}

#include "compute/gemm_tile.wgsl"
