// Max and average pooling over NHWC, one output element per invocation (channel fastest, so
// neighbouring invocations read neighbouring memory); four channels as one vec4 when the channel
// count allows (${lanes} = 4: V is vec4<f32> and p.c counts vec4s). Global pooling is the same
// kernel with the window covering the image. ${mode} is "max" or "avg".
// With four lanes, x may be a channel slice of a wider tensor, read in place (X_WINDOW: a pixel's
// p.c vec4s lie p.x_pitch4 apart from p.x_offset4 on; backends/compute/data.py: channel_windows),
// and y may be a concat's part written where it lies in the concat's result (y_slice.wgsl): YOLO's
// SPPF pools chain and concatenate without copies.
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

    var s = init_${mode}();
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(oy * p.stride_h + kh * p.dil_h) - p.pad_top;
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let ix = i32(ox * p.stride_w + kw * p.dil_w) - p.pad_left;
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            s = add_${mode}(s, x_at((n * p.in_h + u32(iy)) * p.in_w + u32(ix), c));
        }
    }
    y[y_index(id)] = ${y_type}(finish_${mode}(s, padded_window_size(oy, ox)));
}
