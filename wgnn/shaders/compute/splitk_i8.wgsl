// Split-K's second pass for the packed-int8 convolution: each output vec4 is the i32 sum of its
// SPLITS partial sums (exact, so the order does not matter), then the int8 epilogue.
#include "compute/common.wgsl"

struct Params { total: u32, n4: u32, splits: u32, y_row4: u32, y_pitch4: u32, y_offset4: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<vec4<i32>>;
@group(0) @binding(2) var<storage, read> unused: array<vec4<u32>>;

#include "compute/epilogue_i8.wgsl"  // bindings 3-6 (bias, multiplier, y, residual) and write_sums()

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var acc = vec4<i32>(0);
    for (var s = 0u; s < p.splits; s++) {
        acc += partial[s * p.total + id];
    }
    write_sums(id, channels_at(id % p.n4), acc);
}
