// Global max or average pooling (the window the whole unpadded image, one output pixel) with each
// window spread over a workgroup: a workgroup per image and vec4 of channels (or channel), whose
// invocations stride over the pixels and then combine their partial windows through workgroup
// memory in a tree. pool.wgsl gives each window to one invocation, so a global pool of few channels
// over a large image (selfie segmentation's 16 channels of 128 x 128) ran on a handful of
// invocations; here it fills the workgroups. ${mode} is "max" or "avg".
#include "compute/pool_nhwc.wgsl"  // Params, x, y, x_at(), y_index(), Window and its ops

var<workgroup> part_acc: array<V, WG>;
var<workgroup> part_count: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = wid.y * nwg.x + wid.x;  // the output element: (image, channel group); uniform across the group
    if (id >= p.batch * p.c) {
        return;
    }
    let n = id / p.c;
    let c = id % p.c;
    let pixels = p.in_h * p.in_w;
    var s = init_${mode}();
    for (var j = lid; j < pixels; j += WG) {
        s = add_${mode}(s, x_at(n * pixels + j, c));
    }
    part_acc[lid] = s.acc;
    part_count[lid] = s.count;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step = step / 2u) {
        if (lid < step) {
            let merged = merge_${mode}(Window(part_acc[lid], part_count[lid]),
                                       Window(part_acc[lid + step], part_count[lid + step]));
            part_acc[lid] = merged.acc;
            part_count[lid] = merged.count;
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        y[y_index(id)] = ${y_type}(finish_${mode}(Window(part_acc[0], part_count[0]), f32(pixels)));
    }
}
