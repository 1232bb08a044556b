// Matrix multiply [M, K] x [K, N] (+ bias, + residual, activation) as a fragment shader: one
// fragment makes four columns of one row. A's texels hold four consecutive k; B is a texture of
// [K padded to 4][N / 4] texels.
#include "texture/common.wgsl"
#include "activation.wgsl"

struct Params {
    out_width: u32, out_texels: u32, a_width: u32, b_width: u32,
    vec_width: u32, k4: u32, n4: u32, n: u32,
    alpha: f32, beta: f32,
}

const HAS_RESIDUAL: bool = ${residual};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var a: texture_2d<f32>;
@group(0) @binding(2) var b: texture_2d<f32>;
@group(0) @binding(3) var bias: texture_2d<f32>;
@group(0) @binding(4) var residual: texture_2d<f32>;
@group(0) @binding(5) var slope: texture_2d<f32>;

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    let col4 = t % p.n4;
    let row = t / p.n4;
    var acc = vec4<f32>(0.0);
    for (var k4 = 0u; k4 < p.k4; k4++) {
        let v = texel(a, row * p.k4 + k4, p.a_width);
        let bi = k4 * 4u * p.n4 + col4;
        acc += texel(b, bi, p.b_width) * v.x + texel(b, bi + p.n4, p.b_width) * v.y
             + texel(b, bi + 2u * p.n4, p.b_width) * v.z + texel(b, bi + 3u * p.n4, p.b_width) * v.w;
    }
    var v = acc + texel(bias, col4, p.vec_width);
    if (HAS_RESIDUAL) {
        v += texel(residual, t, p.out_width);
    }
    return finish(mask_lanes(activate(v, p.alpha, p.beta, texel(slope, col4, p.vec_width)), col4 * 4u, p.n));
}
