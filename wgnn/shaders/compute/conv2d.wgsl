// Direct convolution as an implicit GEMM over channels-last (NHWC) tensors.
// One invocation computes TILE_X neighbouring output pixels of one row for four output channels
// (a vec4): each weight 4x4 block is loaded once and reused TILE_X times, each input vec4 serves
// four output channels. Neighbouring invocations differ in output channel first, so they read the
// same input (a broadcast) and contiguous weights. Needs input and output channels per group
// divisible by 4; other convolutions use conv2d_generic.
//
// Weights are packed [KH][KW][Cin/group][Cout] so that 4 output channels are one vec4.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    batch: u32, in_h: u32, in_w: u32, in_c4: u32,
    out_h: u32, out_w: u32, out_c4: u32, tiles_w: u32,
    cin4_per_group: u32, cout4_per_group: u32, kernel_h: u32, kernel_w: u32,
    stride_h: u32, stride_w: u32, dil_h: u32, dil_w: u32,
    pad_top: i32, pad_left: i32, alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

const TILE_X: u32 = ${tile_x}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<vec4<x_elem>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<w_elem>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.out_h * p.tiles_w * p.out_c4) {
        return;
    }
    let c4 = id % p.out_c4;
    var rest = id / p.out_c4;
    let ox0 = (rest % p.tiles_w) * TILE_X;
    rest = rest / p.tiles_w;
    let oy = rest % p.out_h;
    let n = rest / p.out_h;
    let in_c4_base = (c4 / p.cout4_per_group) * p.cin4_per_group;

    var acc: array<vec4<f32>, TILE_X>;
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(oy * p.stride_h + kh * p.dil_h) - p.pad_top;
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        let row = (n * p.in_h + u32(iy)) * p.in_w;
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let ix0 = i32(ox0 * p.stride_w + kw * p.dil_w) - p.pad_left;
            let w_row = (kh * p.kernel_w + kw) * p.cin4_per_group * 4u;
            for (var ci4 = 0u; ci4 < p.cin4_per_group; ci4++) {
                let wi = (w_row + ci4 * 4u) * p.out_c4 + c4;
                let w0 = vec4<f32>(w[wi]);
                let w1 = vec4<f32>(w[wi + p.out_c4]);
                let w2 = vec4<f32>(w[wi + 2u * p.out_c4]);
                let w3 = vec4<f32>(w[wi + 3u * p.out_c4]);
                for (var t = 0u; t < TILE_X; t++) {
                    let ix = ix0 + i32(t * p.stride_w);
                    if (ix >= 0 && ix < i32(p.in_w)) {
                        let v = vec4<f32>(x[(row + u32(ix)) * p.in_c4 + in_c4_base + ci4]);
                        acc[t] = fma(w0, vec4<f32>(v.x), fma(w1, vec4<f32>(v.y),
                                 fma(w2, vec4<f32>(v.z), fma(w3, vec4<f32>(v.w), acc[t]))));
                    }
                }
            }
        }
    }

    let channel = channel_at(c4);
    for (var t = 0u; t < TILE_X; t++) {
        let ox = ox0 + t;
        if (ox < p.out_w) {
            write_channel(((n * p.out_h + oy) * p.out_w + ox) * p.out_c4 + c4, channel, acc[t]);
        }
    }
}
