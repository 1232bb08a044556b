// MaxRoiPool (Caffe's ROIPool): output (r, c, ph, pw) is the largest x[batch, c] value of bin
// (ph, pw) of region r = (batch, x1, y1, x2, y2) scaled and rounded to pixels (half away from 0); bins start at the
// floor and end at the ceiling of their share of the region, clipped to the image; empty: 0.
#include "compute/common.wgsl"

// Rounded half away from zero, as C's round() (WGSL's round() goes to even).
fn to_pixel(v: f32) -> i32 {
    return i32(sign(v) * floor(abs(v) + 0.5));
}

struct Params { total: u32, channels: u32, height: u32, width: u32, out_h: u32, out_w: u32, spatial_scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> rois: array<rois_elem>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let at = nchw_coords(id, p.channels, p.out_h, p.out_w);  // (region, channel, bin row, bin column)
    let r = at.x;
    let c = at.y;
    let ph = at.z;
    let pw = at.w;
    let batch = u32(f32(rois[r * 5u]));
    let sx = to_pixel(f32(rois[r * 5u + 1u]) * p.spatial_scale);
    let sy = to_pixel(f32(rois[r * 5u + 2u]) * p.spatial_scale);
    let ex = to_pixel(f32(rois[r * 5u + 3u]) * p.spatial_scale);
    let ey = to_pixel(f32(rois[r * 5u + 4u]) * p.spatial_scale);
    let bin_h = f32(max(ey - sy + 1, 1)) / f32(p.out_h);
    let bin_w = f32(max(ex - sx + 1, 1)) / f32(p.out_w);
    let h0 = clamp(i32(floor(f32(ph) * bin_h)) + sy, 0, i32(p.height));
    let h1 = clamp(i32(ceil(f32(ph + 1u) * bin_h)) + sy, 0, i32(p.height));
    let w0 = clamp(i32(floor(f32(pw) * bin_w)) + sx, 0, i32(p.width));
    let w1 = clamp(i32(ceil(f32(pw + 1u) * bin_w)) + sx, 0, i32(p.width));
    var best = 0.0;
    if (h1 > h0 && w1 > w0) {
        best = -3.4028235e38;
        let base = (batch * p.channels + c) * p.height * p.width;
        for (var hh = h0; hh < h1; hh++) {
            for (var ww = w0; ww < w1; ww++) {
                best = max(best, f32(x[base + u32(hh) * p.width + u32(ww)]));
            }
        }
    }
    y[id] = y_elem(best);
}
