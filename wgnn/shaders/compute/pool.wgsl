// Max and average pooling over NHWC, one output element per invocation (channel fastest, so
// neighbouring invocations read neighbouring memory). A global pool is the same kernel with the
// window covering the image, or, where the kernel policy says so, pool_global.wgsl, which spreads
// each window over a workgroup. ${mode} is "max" or "avg". YOLO's SPPF pools chain and concatenate
// without copies (x through a channel window, y a concat's part: pool_nhwc.wgsl).
#include "compute/pool_nhwc.wgsl"  // Params, x, y, x_at(), y_index(), Window and its ops

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
