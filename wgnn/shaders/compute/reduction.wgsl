// Workgroup reductions shared by softmax and reduce: every invocation brings one partial value
// and all get the combined result. The kind is a constant at each call site, so the switch costs
// nothing where it matters.

#include "reduce_kinds.wgsl"  // COMBINE_*, combine()

var<workgroup> scratch: array<f32, WG>;

fn workgroup_reduce(v: f32, lid: u32, kind: u32) -> f32 {
    scratch[lid] = v;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step = step / 2u) {
        if (lid < step) {
            scratch[lid] = combine(scratch[lid], scratch[lid + step], kind);
        }
        workgroupBarrier();
    }
    let r = scratch[0];
    workgroupBarrier();
    return r;
}
