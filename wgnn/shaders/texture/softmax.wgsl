// Softmax a texel at a time, as WebGL backends did it: no shared memory in a fragment shader, so
// every fragment redoes its rows' reductions (the maximum, then the sum of exp) itself. Along the
// last axis a texel's four lanes share one row, walked a texel (four values) at a time; along
// another axis they are four rows side by side, walked together, a texel a step.
#include "texture/common.wgsl"

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, last: u32,
    last_padded: u32, axis_size: u32, axis_stride: u32, axis_is_last: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_2d<f32>;

const LANES = vec4<u32>(0u, 1u, 2u, 3u);
const LOWEST = -3.402823e38;

fn result(v: vec4<f32>, m: vec4<f32>, s: vec4<f32>) -> vec4<f32> {
    if (${log}) {
        return v - m - log(s);
    }
    return exp(v - m) / s;
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    let e = t * 4u;
    let real = vec4<u32>(e % p.last_padded) + LANES < vec4<u32>(p.last);  // (the packing's padding lanes: 0)
    let v = texel(x, t, p.x_width);
    if (p.axis_is_last != 0u) {
        let first = (e - e % p.last_padded) / 4u;
        let texels = p.last_padded / 4u;
        var mv = vec4<f32>(LOWEST);
        for (var j = 0u; j < texels; j++) {
            let in_row = vec4<u32>(4u * j) + LANES < vec4<u32>(p.last);
            mv = max(mv, select(vec4<f32>(LOWEST), texel(x, first + j, p.x_width), in_row));
        }
        let m = max(max(mv.x, mv.y), max(mv.z, mv.w));
        var sv = vec4<f32>(0.0);
        for (var j = 0u; j < texels; j++) {
            let in_row = vec4<u32>(4u * j) + LANES < vec4<u32>(p.last);
            sv += select(vec4<f32>(0.0), exp(texel(x, first + j, p.x_width) - m), in_row);
        }
        let s = (sv.x + sv.y) + (sv.z + sv.w);
        return finish(select(vec4<f32>(0.0), result(v, vec4<f32>(m), vec4<f32>(s)), real));
    }
    let first = (e - ((e / p.axis_stride) % p.axis_size) * p.axis_stride) / 4u;  // (the stride: whole texels)
    let step = p.axis_stride / 4u;
    var m = vec4<f32>(LOWEST);
    for (var j = 0u; j < p.axis_size; j++) {
        m = max(m, texel(x, first + j * step, p.x_width));
    }
    var s = vec4<f32>(0.0);
    for (var j = 0u; j < p.axis_size; j++) {
        s += exp(texel(x, first + j * step, p.x_width) - m);
    }
    return finish(select(vec4<f32>(0.0), result(v, m, s), real));
}
