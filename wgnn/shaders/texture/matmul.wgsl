// Matrix multiply [..., M, K] x [..., K, N] (+ bias, + residual, activation) as a fragment shader:
// one fragment makes four columns of one row. A's texels hold four consecutive k; B's four
// consecutive n, B_ROWS rows of them (K, or K padded to 4 for a constant packed with zero rows).
// Batch axes (BATCH_RANK of them, broadcast where a stride is 0) find each product's A and B
// through per-axis texel strides.
#include "texture/common.wgsl"
#include "activation.wgsl"

struct Params {
    out_width: u32, out_texels: u32, a_width: u32, b_width: u32,
    vec_width: u32, k4: u32, n4: u32, n: u32,
    m: u32, b_rows: u32, alpha: f32, beta: f32,
    batch: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

const HAS_RESIDUAL: bool = ${residual};
const BATCH_RANK: i32 = ${batch_rank};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var a: texture_2d<f32>;
@group(0) @binding(2) var b: texture_2d<f32>;
@group(0) @binding(3) var bias: texture_2d<f32>;
@group(0) @binding(4) var residual: texture_2d<f32>;
@group(0) @binding(5) var slope: texture_2d<f32>;

// Row k of B at texel `index` (zero past B's rows: A's padding lanes never meet other values).
fn b_row(index: u32, k: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), texel(b, index, p.b_width), k < p.b_rows);
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    let col4 = t % p.n4;
    let rest = t / p.n4;
    let row = rest % p.m;
    var product = rest / p.m;
    var a_base = 0u;
    var b_base = col4;
    for (var d = BATCH_RANK - 1; d >= 0; d--) {
        let idx = product % p.batch[d / 4][d % 4];
        product = product / p.batch[d / 4][d % 4];
        a_base += idx * p.a_strides[d / 4][d % 4];
        b_base += idx * p.b_strides[d / 4][d % 4];
    }
    a_base += row * p.k4;
    var acc = vec4<f32>(0.0);
    for (var k4 = 0u; k4 < p.k4; k4++) {
        let v = texel(a, a_base + k4, p.a_width);
        let k = k4 * 4u;
        let bi = b_base + k * p.n4;
        acc += b_row(bi, k) * v.x + b_row(bi + p.n4, k + 1u) * v.y
             + b_row(bi + 2u * p.n4, k + 2u) * v.z + b_row(bi + 3u * p.n4, k + 3u) * v.w;
    }
    var v = acc + texel(bias, col4, p.vec_width);
    if (HAS_RESIDUAL) {
        v += texel(residual, t, p.out_width);
    }
    return finish(mask_lanes(activate(v, p.alpha, p.beta, texel(slope, col4, p.vec_width)), col4 * 4u, p.n));
}
