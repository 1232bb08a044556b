// The first of two passes of DynamicQuantizeLinear's range over a large tensor: dynamic_range.wgsl
// alone is one workgroup, which on a GPU leaves a tensor of 10^5 values to one core walking it
// thousands of steps deep. Here each of many workgroups takes the elements wid * WG + lid, stepping
// by all invocations (neighbouring invocations read neighbouring values), and writes its
// min(x, 0) and max(x, 0) to parts[2 wid] and parts[2 wid + 1]; dynamic_range.wgsl (PARTS) then
// combines those pairs. NaN propagates through both passes as through one.
#include "compute/common.wgsl"
#include "compute/reduction.wgsl"

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> parts: array<parts_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    var lo = 0.0;
    var hi = 0.0;
    for (var i = wid.x * WG + lid; i < p.total; i += nwg.x * WG) {
        let v = f32(x[i]);
        lo = combine(lo, v, COMBINE_MIN);
        hi = combine(hi, v, COMBINE_MAX);
    }
    lo = workgroup_reduce(lo, lid, COMBINE_MIN);
    hi = workgroup_reduce(hi, lid, COMBINE_MAX);
    if (lid == 0u) {
        parts[2u * wid.x] = parts_elem(lo);
        parts[2u * wid.x + 1u] = parts_elem(hi);
    }
}
