// Winograd F(M x M, 3x3) input transform (see ops/winograd.py; M 2 or 4): one invocation takes the
// ALPHA x ALPHA patch (ALPHA = M + 2) under one output tile, four channels at once, and writes
// V = B^T d B as ALPHA^2 rows of the [ALPHA^2, tiles, C] product input. Patch pixels outside the
// image are the convolution's zero padding. The body is written out by the lowering from B^T
// (ops/winograd.py; nn.py: _winograd_input_code), every value a named register.
#include "compute/common.wgsl"

struct Params {
    batch: u32, in_h: u32, in_w: u32, c4: u32,
    tiles_h: u32, tiles_w: u32, pad_top: i32, pad_left: i32,
    x_pitch4: u32, x_offset4: u32,  // with X_WINDOW: x's pixels are c4 vec4s x_pitch4 apart from x_offset4 on
}

// x a channel slice of a wider tensor, read in place (backends/compute/data.py: channel_windows); a
// template constant, so that other inputs keep the plain index (the window's costs 12% on lavapipe).
const X_WINDOW: bool = ${x_window};

fn x_at(pixel: u32, c4: u32) -> vec4<f32> {
    if (X_WINDOW) {
        return vec4<f32>(x[pixel * p.x_pitch4 + p.x_offset4 + c4]);
    }
    return vec4<f32>(x[pixel * p.c4 + c4]);
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<vec4<x_elem>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<v_elem>>;

const M: u32 = ${m}u;  // the output tile's side

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    let tiles = p.batch * p.tiles_h * p.tiles_w;
    if (id >= tiles * p.c4) {
        return;
    }
    let tile = nhwc_coords(id, p.tiles_h, p.tiles_w, p.c4);  // (n, tile row, tile column, c4)
    let n = tile.x;
    let ty = tile.y;
    let tx = tile.z;
    let c4 = tile.w;
    let t = id / p.c4;
    let y0 = i32(ty * M) - p.pad_top;
    let x0 = i32(tx * M) - p.pad_left;

${body}
}
