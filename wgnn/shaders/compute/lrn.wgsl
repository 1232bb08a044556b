// Local response normalization across channels over NHWC: the channel window is contiguous.
#include "compute/common.wgsl"

struct Params { total: u32, c: u32, size: u32, alpha: f32, beta: f32, bias: f32 }

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
    let c = i32(id % p.c);
    let base = id - u32(c);
    let lo = max(c - i32((p.size - 1u) / 2u), 0);
    let hi = min(c + i32(p.size / 2u), i32(p.c) - 1);
    var sq = 0.0;
    for (var k = lo; k <= hi; k++) {
        let v = f32(x[base + u32(k)]);
        sq = fma(v, v, sq);
    }
    let v = f32(x[id]);
    y[id] = y_elem(v / pow(p.bias + p.alpha / f32(p.size) * sq, p.beta));
}
