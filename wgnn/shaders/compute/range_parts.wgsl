// The first of two passes of DynamicQuantizeLinear's range over a large tensor: dynamic_range.wgsl
// alone is one workgroup, which on a GPU leaves a tensor of 10^5 values to one core walking it
// thousands of steps deep. Here each of many workgroups takes the elements wid * WG + lid, stepping
// by all invocations (neighbouring invocations read neighbouring values), and writes its
// min(x, 0) and max(x, 0) to parts[2 wid] and parts[2 wid + 1]; dynamic_range.wgsl (PARTS) then
// combines those pairs. NaN propagates through both passes as through one.
#include "compute/common.wgsl"
#include "compute/range.wgsl"  // widen(), workgroup_range()

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> parts: array<parts_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    var range = vec2<f32>(0.0);
    for (var i = wid.x * WG + lid; i < p.total; i += nwg.x * WG) {
        let v = f32(x[i]);
        range = widen(range, v, v);
    }
    range = workgroup_range(range, lid);
    if (lid == 0u) {
        parts[2u * wid.x] = parts_elem(range.x);
        parts[2u * wid.x + 1u] = parts_elem(range.y);
    }
}
