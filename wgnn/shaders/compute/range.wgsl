// DynamicQuantizeLinear's running range (dynamic_range.wgsl, range_parts.wgsl, lstm_layer.wgsl):
// min(x, 0) and max(x, 0) as a vec2 (minimum, maximum), NaN propagating as combine() propagates it.
#include "reduce_kinds.wgsl"  // COMBINE_*, combine()

var<workgroup> ranges: array<vec2<f32>, WG>;

fn widen(range: vec2<f32>, lo: f32, hi: f32) -> vec2<f32> {
    return vec2<f32>(combine(range.x, lo, COMBINE_MIN), combine(range.y, hi, COMBINE_MAX));
}

// The workgroup's range from each invocation's (every invocation gets it): one tree of (minimum,
// maximum) pairs, half the barriers of a tree each (a software adapter pays for every one).
fn workgroup_range(range: vec2<f32>, lid: u32) -> vec2<f32> {
    ranges[lid] = range;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step = step / 2u) {
        if (lid < step) {
            let other = ranges[lid + step];
            ranges[lid] = widen(ranges[lid], other.x, other.y);
        }
        workgroupBarrier();
    }
    let found = ranges[0];
    workgroupBarrier();
    return found;
}
