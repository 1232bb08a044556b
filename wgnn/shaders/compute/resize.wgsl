// Resize of NHWC tensors, one output element per invocation, or (${value} vec4<f32>: channels in
// whole vec4s) one vec4 of channels, which share the source position and filter weights; p.c then
// counts vec4s. The source position of each output
// row and column comes from a table made on the host (see wgnn/ops/resize.py): pos[out_h + out_w]
// (rows, then columns; nearest mode holds the chosen, clamped index), then outside[out_h + out_w]
// (1 where the position lies outside the input). ${mode}: nearest, or filtered: the separable
// ${filter} filter (linear or cubic) over taps floor(src) + start .. + taps - 1 of each axis,
// stretched by support (antialiasing), weights normalized; taps past the edge read the edge pixel
// or, with exclude_outside, drop out. With extrapolate, an output whose source position lies
// outside the image gives p.extrapolation (tf_crop_and_resize). With vec4s of channels the result
// may be a concat's part, written where it lies in the concat's result (an FPN's upsampled map),
// and x a concat's part or a channel slice read where it lies (X_WINDOW).
#include "compute/common.wgsl"
#include "resize_filter.wgsl"  // sample_nearest, sample_filtered over load() below

struct Params {
    batch: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32,
    support_h: f32, support_w: f32, start_h: i32, start_w: i32, taps_h: u32, taps_w: u32,
    cubic_a: f32, exclude_outside: u32, extrapolate: u32, extrapolation: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32,  // y a concat's part, where it lies in the concat (y_slice.wgsl)
    x_pitch4: u32, x_offset4: u32,  // X_WINDOW: a pixel's p.c vec4s lie p.x_pitch4 apart from p.x_offset4 on
}

const X_WINDOW: bool = ${x_window};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_type}>;
@group(0) @binding(2) var<storage, read_write> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<${y_type}>;

#include "compute/y_slice.wgsl"  // y_index(): with vec4s of channels, y may be a slice of a concat's result

fn load(n: u32, iy: u32, ix: u32, c: u32) -> ${value} {
    if (X_WINDOW) {
        return ${value}(x[((n * p.in_h + iy) * p.in_w + ix) * p.x_pitch4 + p.x_offset4 + c]);
    }
    return ${value}(x[((n * p.in_h + iy) * p.in_w + ix) * p.c + c]);
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
        y[y_index(id)] = ${y_type}(${value}(p.extrapolation));
        return;
    }
    y[y_index(id)] = ${y_type}(sample_${mode}(n, sy, sx, c));
}
