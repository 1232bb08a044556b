// Workgroup reductions shared by softmax and reduce: every invocation brings one partial value
// and all get the combined result. The kind is a constant at each call site, so the switch costs
// nothing where it matters.

const COMBINE_SUM: u32 = 0u;
const COMBINE_MAX: u32 = 1u;
const COMBINE_MIN: u32 = 2u;
const COMBINE_PROD: u32 = 3u;

var<workgroup> scratch: array<f32, WG>;

fn combine(a: f32, b: f32, kind: u32) -> f32 {
    switch kind {
        case COMBINE_MAX: { return max(a, b); }
        case COMBINE_MIN: { return min(a, b); }
        case COMBINE_PROD: { return a * b; }
        default: { return a + b; }
    }
}

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
