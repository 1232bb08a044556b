// Split-K's second pass: each output vec4 is the sum of its SPLITS partial products (in split
// order, so the result is the same on every run), then the fused epilogue.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    total: u32, n4: u32, splits: u32, alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> unused: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var acc = vec4<f32>(0.0);
    for (var s = 0u; s < p.splits; s++) {
        acc += partial[s * p.total + id];
    }
    write_output(id, id % p.n4, acc);
}
