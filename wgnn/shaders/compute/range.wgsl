// DynamicQuantizeLinear's running range (dynamic_range.wgsl, range_parts.wgsl): min(x, 0) and
// max(x, 0) as a vec2 (minimum, maximum), NaN propagating as combine() propagates it.
#include "compute/reduction.wgsl"

fn widen(range: vec2<f32>, lo: f32, hi: f32) -> vec2<f32> {
    return vec2<f32>(combine(range.x, lo, COMBINE_MIN), combine(range.y, hi, COMBINE_MAX));
}

// The workgroup's range from each invocation's (every invocation gets it).
fn workgroup_range(range: vec2<f32>, lid: u32) -> vec2<f32> {
    return vec2<f32>(workgroup_reduce(range.x, lid, COMBINE_MIN), workgroup_reduce(range.y, lid, COMBINE_MAX));
}
