// Resize on the texture path: NHWC, one texel (four channels) per fragment, each channel sampled
// as the compute path does (resize_filter.wgsl) from the source-position table, a constant texture
// laid out like compute/resize.wgsl's table.
#include "texture/common.wgsl"
#include "resize_filter.wgsl"

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, table_width: u32,
    in_h: u32, in_w: u32, c: u32, c4: u32,
    out_h: u32, out_w: u32,
    support_h: f32, support_w: f32, start_h: i32, start_w: i32, taps_h: u32, taps_w: u32,
    cubic_a: f32, exclude_outside: u32, extrapolate: u32, extrapolation: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_2d<f32>;
@group(0) @binding(2) var table: texture_2d<f32>;

fn load(n: u32, iy: u32, ix: u32, c: u32) -> f32 {
    return element(x, ((n * p.in_h + iy) * p.in_w + ix) * p.c4 * 4u + c, p.x_width);
}

fn position(i: u32) -> f32 {
    return element(table, i, p.table_width);
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    let q = t % p.c4;
    let ox = (t / p.c4) % p.out_w;
    let oy = (t / p.c4 / p.out_w) % p.out_h;
    let n = t / p.c4 / p.out_w / p.out_h;
    let flags = p.out_h + p.out_w;
    if (p.extrapolate != 0u && (position(flags + oy) != 0.0 || position(flags + p.out_h + ox) != 0.0)) {
        return finish(mask_lanes(vec4<f32>(p.extrapolation), q * 4u, p.c));
    }
    let sy = position(oy);
    let sx = position(p.out_h + ox);
    var v = vec4<f32>(0.0);
    for (var l = 0u; l < 4u; l++) {
        if (q * 4u + l < p.c) {
            v[l] = sample_${mode}(n, sy, sx, q * 4u + l);
        }
    }
    return finish(v);
}
