// Max pooling that also returns where each maximum came from (ONNX MaxPool's Indices output):
// over NHWC, one output element per invocation. The index is the position in the input read as
// a flat NCHW array, row-major within each image plane, or column-major with storage_order = 1.
// The first maximum in row-major scan order wins, as in ONNX's reference.
#include "compute/common.wgsl"

struct Params {
    batch: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32, kernel_h: u32, kernel_w: u32,
    stride_h: u32, stride_w: u32, dil_h: u32, dil_w: u32,
    pad_top: i32, pad_left: i32, storage_order: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;
@group(0) @binding(3) var<storage, read_write> idx: array<idx_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.out_h * p.out_w * p.c) {
        return;
    }
    let at = nhwc_coords(id, p.out_h, p.out_w, p.c);
    var best = -3.402823e38;
    var best_y = 0u;
    var best_x = 0u;
    var found = false;
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(at.y * p.stride_h + kh * p.dil_h) - p.pad_top;
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let ix = i32(at.z * p.stride_w + kw * p.dil_w) - p.pad_left;
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            let v = f32(x[((at.x * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.c + at.w]);
            if (!found || v > best) {
                best = v;
                best_y = u32(iy);
                best_x = u32(ix);
                found = true;
            }
        }
    }
    let plane = (at.x * p.c + at.w) * p.in_h * p.in_w;
    let inside = select(best_y * p.in_w + best_x, best_x * p.in_h + best_y, p.storage_order != 0u);
    y[id] = y_elem(best);
    idx[id] = idx_elem(i32(plane + inside));
}
