// Resize of NHWC tensors, one output element per invocation. The source position of each output
// row and column comes from a table made on the host (see wgnn/ops/resize.py): pos[out_h + out_w]
// (rows, then columns; nearest mode holds the chosen, clamped index), then outside[out_h + out_w]
// (1 where the position lies outside the input). ${mode}: nearest, or filtered: the separable
// ${filter} filter (linear or cubic) over taps floor(src) + start .. + taps - 1 of each axis,
// stretched by support (antialiasing), weights normalized; taps past the edge read the edge pixel
// or, with exclude_outside, drop out. With extrapolate, an output whose source position lies
// outside the image gives p.extrapolation (tf_crop_and_resize).
#include "compute/common.wgsl"

struct Params {
    batch: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32,
    support_h: f32, support_w: f32, start_h: i32, start_w: i32, taps_h: u32, taps_w: u32,
    cubic_a: f32, exclude_outside: u32, extrapolate: u32, extrapolation: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

fn clamp_index(i: i32, size: u32) -> u32 {
    return u32(clamp(i, 0, i32(size) - 1));
}

fn load(n: u32, iy: u32, ix: u32, c: u32) -> f32 {
    return f32(x[((n * p.in_h + iy) * p.in_w + ix) * p.c + c]);
}

fn sample_nearest(n: u32, sy: f32, sx: f32, c: u32) -> f32 {
    return load(n, u32(sy), u32(sx), c);
}

fn filter_linear(d: f32) -> f32 { return clamp(1.0 - abs(d), 0.0, 1.0); }
fn filter_cubic(d: f32) -> f32 {
    let t = abs(d);
    let a = p.cubic_a;
    if (t <= 1.0) {
        return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    }
    if (t < 2.0) {
        return ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
    }
    return 0.0;
}

// The weight of tap i along an axis whose source position is base + frac (0 when excluded).
fn tap_weight(i: i32, frac: f32, support: f32, index: i32, size: u32) -> f32 {
    if (p.exclude_outside != 0u && (index < 0 || index >= i32(size))) {
        return 0.0;
    }
    return filter_${filter}((f32(i) - frac) * support);
}

fn sample_filtered(n: u32, sy: f32, sx: f32, c: u32) -> f32 {
    let by = floor(sy);
    let bx = floor(sx);
    var acc = 0.0;
    var wsum_y = 0.0;
    var wsum_x = 0.0;
    for (var ty = 0u; ty < p.taps_h; ty++) {
        let i = p.start_h + i32(ty);
        let iy = i32(by) + i;
        let wy = tap_weight(i, sy - by, p.support_h, iy, p.in_h);
        wsum_y += wy;
        var row = 0.0;
        wsum_x = 0.0;
        for (var tx = 0u; tx < p.taps_w; tx++) {
            let j = p.start_w + i32(tx);
            let ix = i32(bx) + j;
            let wx = tap_weight(j, sx - bx, p.support_w, ix, p.in_w);
            wsum_x += wx;
            row += wx * load(n, clamp_index(iy, p.in_h), clamp_index(ix, p.in_w), c);
        }
        acc += wy * row;
    }
    return acc / (wsum_y * wsum_x);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.out_h * p.out_w * p.c) {
        return;
    }
    let at = nhwc_coords(id, p.out_h, p.out_w, p.c);
    let n = at.x;
    let oy = at.y;
    let ox = at.z;
    let c = at.w;
    let sy = table[oy];
    let sx = table[p.out_h + ox];
    let flags = p.out_h + p.out_w;
    if (p.extrapolate != 0u && (table[flags + oy] != 0.0 || table[flags + p.out_h + ox] != 0.0)) {
        y[id] = y_elem(p.extrapolation);
        return;
    }
    y[id] = y_elem(sample_${mode}(n, sy, sx, c));
}
