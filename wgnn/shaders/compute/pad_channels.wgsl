// Channels padded with a constant to whole vec4s, into an NHWC output, one output vec4 per
// invocation: a network's first layer (an NCHW input of 3 colour channels), and the channel
// padding of residual blocks (BlazeFace's, NHWC to NHWC). Output channel c reads input channel
// c - c_begin where that exists. x is addressed through its channel, pixel and batch strides from
// element x_base on, so either layout serves, and a channel slice of a wider tensor too. (The general pad kernel maps every element back through each axis, two integer
// divisions an axis: on a software adapter that made one such copy cost as much as a convolution.)
// With QUANTIZE (a network's input quantized for its first integer convolution:
// passes.quantize_in_channel_pad) each value copied is quantized first, as ternary.wgsl's
// quantize_shifted does: clamp(round(v / q_scale) + q_zero, q_lo, q_hi) - q_zero.
#include "compute/common.wgsl"

const QUANTIZE: bool = ${quantize};

struct Params {
    total: u32, pixels: u32, c_in: u32, c4: u32, c_begin: u32, c_stride: u32, p_stride: u32, n_stride: u32,
    x_base: u32, value: f32, q_scale: f32, q_zero: f32, q_lo: f32, q_hi: f32,
}

fn copied(v: f32) -> f32 {
    if (QUANTIZE) {
        return clamp(round(v / p.q_scale) + p.q_zero, p.q_lo, p.q_hi) - p.q_zero;
    }
    return v;
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<y_elem>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let c0 = (id % p.c4) * 4u;
    let at = id / p.c4;  // the pixel, over N, H and W
    let n = at / p.pixels;
    let pixel = p.x_base + n * p.n_stride + (at % p.pixels) * p.p_stride;  // x[n][0][h][w]
    var v = vec4<f32>(p.value);
    for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if (c >= p.c_begin && c - p.c_begin < p.c_in) {
            v[j] = copied(f32(x[pixel + (c - p.c_begin) * p.c_stride]));
        }
    }
    y[id] = vec4<y_elem>(v);
}
