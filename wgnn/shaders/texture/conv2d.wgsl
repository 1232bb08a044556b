// Convolution (groups = 1) as a fragment shader over channels-last textures: one fragment makes
// one output texel, four output channels of one pixel, reading input texels (four input channels)
// and 4x4 weight blocks. Weights are a texture of [KH][KW][Cin padded to 4][Cout / 4] texels.
// Depthwise convolutions set DEPTHWISE: each output texel then reads only its own channels.
// Transposed convolutions (groups = 1) set TRANSPOSED: the same product, gathered from the input
// pixels whose stride-spaced footprint covers the output pixel.
#include "texture/common.wgsl"
#include "activation.wgsl"

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, w_width: u32,
    vec_width: u32, in_h: u32, in_w: u32, in_c4: u32,
    out_h: u32, out_w: u32, out_c4: u32, out_c: u32,
    kernel_h: u32, kernel_w: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_top: i32, pad_left: i32,
    alpha: f32, beta: f32,
}

const HAS_RESIDUAL: bool = ${residual};
const DEPTHWISE: bool = ${depthwise};
const TRANSPOSED: bool = ${transposed};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_2d<f32>;
@group(0) @binding(2) var w: texture_2d<f32>;
@group(0) @binding(3) var bias: texture_2d<f32>;
@group(0) @binding(4) var residual: texture_2d<f32>;
@group(0) @binding(5) var slope: texture_2d<f32>;

// The input index along one axis that output position o reads through tap k, or -1 if none.
fn source_index(o: u32, k: u32, stride: u32, dil: u32, pad: i32, size: u32) -> i32 {
    var i = i32(o * stride + k * dil) - pad;
    if (TRANSPOSED) {
        let t = i32(o) + pad - i32(k * dil);
        if (t < 0 || t % i32(stride) != 0) {
            return -1;
        }
        i = t / i32(stride);
    }
    return select(-1, i, i >= 0 && i < i32(size));
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    let c4 = t % p.out_c4;
    var rest = t / p.out_c4;
    let ox = rest % p.out_w;
    rest = rest / p.out_w;
    let oy = rest % p.out_h;
    let n = rest / p.out_h;

    var acc = vec4<f32>(0.0);
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = source_index(oy, kh, p.stride_h, p.dil_h, p.pad_top, p.in_h);
        if (iy < 0) {
            continue;
        }
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let ix = source_index(ox, kw, p.stride_w, p.dil_w, p.pad_left, p.in_w);
            if (ix < 0) {
                continue;
            }
            let pixel = ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_c4;
            if (DEPTHWISE) {
                acc += texel(x, pixel + c4, p.x_width) * texel(w, (kh * p.kernel_w + kw) * p.out_c4 + c4, p.w_width);
                continue;
            }
            let w_row = (kh * p.kernel_w + kw) * p.in_c4 * 4u;
            for (var ci4 = 0u; ci4 < p.in_c4; ci4++) {
                let v = texel(x, pixel + ci4, p.x_width);
                let wi = (w_row + ci4 * 4u) * p.out_c4 + c4;
                acc += texel(w, wi, p.w_width) * v.x + texel(w, wi + p.out_c4, p.w_width) * v.y
                     + texel(w, wi + 2u * p.out_c4, p.w_width) * v.z + texel(w, wi + 3u * p.out_c4, p.w_width) * v.w;
            }
        }
    }
    var v = acc + texel(bias, c4, p.vec_width);
    if (HAS_RESIDUAL) {
        v += texel(residual, t, p.out_width);
    }
    return finish(mask_lanes(activate(v, p.alpha, p.beta, texel(slope, c4, p.vec_width)), c4 * 4u, p.out_c));
}
