// RoiAlign: output (r, c, ph, pw) samples bin (ph, pw) of region r of channel c of image
// batch[r] at a grid of points (sampling_ratio per side, or adaptive: the bin's size rounded up),
// each bilinearly (a point more than a pixel outside gives 0; others clamp to the edge), and
// averages them, or (MAX_MODE) keeps the largest weighted neighbour of any point.
#include "compute/common.wgsl"

struct Params {
    total: u32, channels: u32, height: u32, width: u32, out_h: u32, out_w: u32,
    sampling_ratio: u32, spatial_scale: f32, offset: f32, min_size: f32,
}

const MAX_MODE: bool = ${max_mode};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> rois: array<rois_elem>;
@group(0) @binding(3) var<storage, read_write> batch: array<batch_elem>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;

// The four weighted neighbours of (yy, xx) in the plane starting at `base`.
fn terms(base: u32, yy_in: f32, xx_in: f32) -> vec4<f32> {
    let h = f32(p.height);
    let w = f32(p.width);
    if (yy_in < -1.0 || yy_in > h || xx_in < -1.0 || xx_in > w) {
        return vec4<f32>(0.0);
    }
    var yy = max(yy_in, 0.0);
    var xx = max(xx_in, 0.0);
    var y0 = u32(yy);
    var x0 = u32(xx);
    var y1 = y0 + 1u;
    var x1 = x0 + 1u;
    if (y0 >= p.height - 1u) {
        y0 = p.height - 1u;
        y1 = y0;
        yy = f32(y0);
    }
    if (x0 >= p.width - 1u) {
        x0 = p.width - 1u;
        x1 = x0;
        xx = f32(x0);
    }
    let ly = yy - f32(y0);
    let lx = xx - f32(x0);
    let hy = 1.0 - ly;
    let hx = 1.0 - lx;
    return vec4<f32>(hy * hx * f32(x[base + y0 * p.width + x0]), hy * lx * f32(x[base + y0 * p.width + x1]),
                     ly * hx * f32(x[base + y1 * p.width + x0]), ly * lx * f32(x[base + y1 * p.width + x1]));
}

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
    let start_w = f32(rois[r * 4u]) * p.spatial_scale - p.offset;
    let start_h = f32(rois[r * 4u + 1u]) * p.spatial_scale - p.offset;
    let roi_w = max(f32(rois[r * 4u + 2u]) * p.spatial_scale - p.offset - start_w, p.min_size);
    let roi_h = max(f32(rois[r * 4u + 3u]) * p.spatial_scale - p.offset - start_h, p.min_size);
    let bin_h = roi_h / f32(p.out_h);
    let bin_w = roi_w / f32(p.out_w);
    var grid_h = p.sampling_ratio;
    var grid_w = p.sampling_ratio;
    if (p.sampling_ratio == 0u) {
        grid_h = u32(max(ceil(roi_h / f32(p.out_h)), 0.0));
        grid_w = u32(max(ceil(roi_w / f32(p.out_w)), 0.0));
    }
    let base = (u32(batch[r]) * p.channels + c) * p.height * p.width;
    var acc = 0.0;
    var first = true;
    for (var iy = 0u; iy < grid_h; iy++) {
        let yy = start_h + f32(ph) * bin_h + (f32(iy) + 0.5) * bin_h / f32(grid_h);
        for (var ix = 0u; ix < grid_w; ix++) {
            let xx = start_w + f32(pw) * bin_w + (f32(ix) + 0.5) * bin_w / f32(grid_w);
            let t = terms(base, yy, xx);
            if (MAX_MODE) {
                let m = max(max(t.x, t.y), max(t.z, t.w));
                acc = select(max(acc, m), m, first);
                first = false;
            } else {
                acc += t.x + t.y + t.z + t.w;
            }
        }
    }
    if (!MAX_MODE) {
        acc /= f32(max(grid_h * grid_w, 1u));
    }
    y[id] = y_elem(acc);
}
