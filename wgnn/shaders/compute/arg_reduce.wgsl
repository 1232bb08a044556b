// ArgMax / ArgMin along one axis of a tensor in logical order, viewed as [outer, axis_size, inner]:
// one invocation per output walks its axis. ${better} is > (max) or < (min); ${or_equal} is = when
// ties take the last index, so a later equal value wins too. NaN never wins a comparison.
#include "compute/common.wgsl"

struct Params { total: u32, axis_size: u32, inner: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let start = (id / p.inner) * p.axis_size * p.inner + id % p.inner;
    var best = x[start];
    var index = 0u;
    for (var k = 1u; k < p.axis_size; k++) {
        let v = x[start + k * p.inner];
        if (v ${better}${or_equal} best) {
            best = v;
            index = k;
        }
    }
    y[id] = y_elem(i32(index));
}
