// Nearest or bilinear resize of NHWC tensors, one output element per invocation. Each axis maps
// an output index to a source position as src = (dst + in_off) * scale - out_off (see
// wgnn/ops/resize.py); positions past the edge clamp to it. ${mode}: nearest | linear;
// ${nearest}: how nearest mode rounds.
#include "common.wgsl"

struct Params {
    batch: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32,
    scale_h: f32, scale_w: f32, in_off_h: f32, in_off_w: f32, out_off_h: f32, out_off_w: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;

fn round_floor(s: f32) -> f32 { return floor(s); }
fn round_ceil(s: f32) -> f32 { return ceil(s); }
fn round_round_prefer_ceil(s: f32) -> f32 { return floor(s + 0.5); }
fn round_round_prefer_floor(s: f32) -> f32 { return ceil(s - 0.5); }

fn clamp_index(i: f32, size: u32) -> u32 {
    return u32(clamp(i32(i), 0, i32(size) - 1));
}

fn load(n: u32, iy: u32, ix: u32, c: u32) -> f32 {
    return f32(x[((n * p.in_h + iy) * p.in_w + ix) * p.c + c]);
}

fn sample_nearest(n: u32, sy: f32, sx: f32, c: u32) -> f32 {
    return load(n, clamp_index(round_${nearest}(sy), p.in_h), clamp_index(round_${nearest}(sx), p.in_w), c);
}

fn sample_linear(n: u32, sy: f32, sx: f32, c: u32) -> f32 {
    let fy = floor(sy);
    let fx = floor(sx);
    let y0 = clamp_index(fy, p.in_h);
    let y1 = clamp_index(fy + 1.0, p.in_h);
    let x0 = clamp_index(fx, p.in_w);
    let x1 = clamp_index(fx + 1.0, p.in_w);
    let wy = sy - fy;
    let wx = sx - fx;
    let top = mix(load(n, y0, x0, c), load(n, y0, x1, c), wx);
    let bottom = mix(load(n, y1, x0, c), load(n, y1, x1, c), wx);
    return mix(top, bottom, wy);
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
    let sy = (f32(oy) + p.in_off_h) * p.scale_h - p.out_off_h;
    let sx = (f32(ox) + p.in_off_w) * p.scale_w - p.out_off_w;
    y[id] = y_elem(sample_${mode}(n, sy, sx, c));
}
