// GatherND: output row r (indices' leading axes) copies the slice of data that the index tuple
// indices[r] (q values; negative count from the end, past the axis clamped) picks within r's batch
// (the first batch_dims axes, shared by data and indices); a slice is `slice` elements.
#include "compute/common.wgsl"

struct Params {
    total: u32, slice: u32, q: u32, rows_per_batch: u32, batch_stride: u32,
    dims: array<vec4<u32>, 2>,     // the sizes of the q axes the tuples index
    strides: array<vec4<u32>, 2>,  // their strides within a batch
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> indices: array<indices_elem>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let row = id / p.slice;
    var src = (row / p.rows_per_batch) * p.batch_stride + id % p.slice;
    for (var m = 0u; m < p.q; m++) {
        let size = i32(p.dims[m / 4u][m % 4u]);
        var k = i32(indices[row * p.q + m]);
        k = clamp(select(k, k + size, k < 0), 0, size - 1);
        src += u32(k) * p.strides[m / 4u][m % 4u];
    }
    y[id] = y_elem(x[src]);
}
