// Batched matrix multiply for any K and N: one output element per invocation, scalar loads.
// Bias and slope are indexed by column; A and B batch strides may be 0 (broadcast).
#include "compute/common.wgsl"
#include "compute/epilogue_scalar.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    m: u32, k: u32, n: u32, batch: u32,
    a_batch_stride: u32, b_batch_stride: u32, alpha: f32, beta: f32,
    post_scale: f32, post_shift: f32,
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<a_elem>;
@group(0) @binding(2) var<storage, ${b_access}> b: array<b_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.m * p.n) {
        return;
    }
    let col = id % p.n;
    let rest = id / p.n;
    let row = rest % p.m;
    let bi = rest / p.m;
    let a_row = bi * p.a_batch_stride + row * p.k;
    let b_col = bi * p.b_batch_stride + col;
    var acc = 0.0;
    for (var k = 0u; k < p.k; k++) {
        acc = fma(f32(a[a_row + k]), f32(b[b_col + k * p.n]), acc);
    }
    write_output(id, col, acc);
}
