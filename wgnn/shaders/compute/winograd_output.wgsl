// Winograd F(M x M, 3x3) output transform (see ops/winograd.py; M 2 or 4): one invocation reads the
// ALPHA^2 products of one tile (ALPHA = M + 2), four channels at once, forms the M x M output block
// A^T P A and stores each pixel inside the output through the convolution's fused epilogue. The
// body is written out by the lowering from A^T (ops/winograd.py; nn.py: _winograd_output_code).
//
// With acc4 = vec4<i32> (a quantized convolution's integer sums, M = 2, passes/winograd.py:
// exact_in_f32): the products, exact in f32, are 4 P (their filter transformed times 4: integers;
// or, as P, multiples of 1/4 taken times 4 here); A^T P A runs on 4 P in i32, exact in any order,
// and the block, four times the convolution's sums, is divided by 4 exactly before it goes to f32.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

alias acc4 = ${acc4};  // vec4<i32> for integer sums, else vec4<f32>
const M: u32 = ${m}u;  // the output tile's side
const ALPHA: u32 = ${alpha}u;  // M + 2

struct Params {
    batch: u32, out_h: u32, out_w: u32, c4: u32,
    tiles_h: u32, tiles_w: u32, alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> m: array<vec4<m_elem>>;
// Binding 2 is a convolution's filter slot, unused here: the filter went into the products.
@group(0) @binding(2) var<storage, read> unused: array<vec4<unused_elem>>;

// The products' vec4 i, as the transform adds it (4 P in i32 for integer sums).
fn m_at(i: u32) -> acc4 {
    return acc4(vec4<f32>(m[i]) * f32(${unit}));  // (${unit}: 4 with i32 where the products are P, else 1)
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    let tiles = p.batch * p.tiles_h * p.tiles_w;
    if (id >= tiles * p.c4) {
        return;
    }
    let tile = nhwc_coords(id, p.tiles_h, p.tiles_w, p.c4);  // (n, tile row, tile column, c4)
    let n = tile.x;
    let ty = tile.y;
    let tx = tile.z;
    let c4 = tile.w;
    let t = id / p.c4;

    let stride = ALPHA * tiles * p.c4;  // from one row of the ALPHA x ALPHA products to the next
${body}
}
