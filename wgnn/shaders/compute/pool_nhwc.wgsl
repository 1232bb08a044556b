// What the pooling kernels over NHWC that read through a channel window and write into a slice
// share (pool.wgsl, pool_global.wgsl): their Params, bindings, x_at() and the window's state.
// Four channels as one vec4 when the channel count allows (${lanes} = 4: V is vec4<f32> and p.c
// counts vec4s). With four lanes, x may be a channel slice of a wider tensor, read in place
// (X_WINDOW: a pixel's p.c vec4s lie p.x_pitch4 apart from p.x_offset4 on;
// backends/compute/data.py: channel_windows), and y may be a concat's part written where it lies in
// the concat's result (y_slice.wgsl).
#include "compute/common.wgsl"
#include "pool_window.wgsl"

struct Params {
    batch: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32, kernel_h: u32, kernel_w: u32,
    stride_h: u32, stride_w: u32, dil_h: u32, dil_w: u32,
    pad_top: i32, pad_left: i32, pad_bottom: i32, pad_right: i32,
    count_include_pad: u32, x_pitch4: u32, x_offset4: u32, y_row4: u32, y_pitch4: u32, y_offset4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_type}>;
@group(0) @binding(2) var<storage, read_write> y: array<${y_type}>;

#include "compute/y_slice.wgsl"

const X_WINDOW: bool = ${x_window};

fn x_at(pixel: u32, c: u32) -> V {
    if (X_WINDOW) {
        return V(x[pixel * p.x_pitch4 + p.x_offset4 + c]);
    }
    return V(x[pixel * p.c + c]);
}

#include "compute/pool_ops.wgsl"  // V, Window, init_/add_/finish_ max and avg

