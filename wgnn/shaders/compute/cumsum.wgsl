// Cumulative sum (or, with PRODUCT, product) along one axis of a row-major tensor seen as
// [outer, length, inner]: output (o, j, i) combines the inputs (o, t, i) for t up to j (from j on
// with REVERSE; EXCLUSIVE leaves out j itself), in that order, in ${acc} (i32 for integer tensors:
// exact, wrapping as int32 does).
#include "compute/common.wgsl"

struct Params { total: u32, inner: u32, length: u32 }

const EXCLUSIVE: bool = ${exclusive};
const REVERSE: bool = ${reverse};
const PRODUCT: bool = ${product};

fn combine(acc: ${acc}, v: ${acc}) -> ${acc} {
    return select(acc + v, acc * v, PRODUCT);
}

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
    let i = id % p.inner;
    let j = (id / p.inner) % p.length;
    let base = id - j * p.inner;  // (o, 0, i)
    var acc = select(${acc}(0), ${acc}(1), PRODUCT);
    if (REVERSE) {
        for (var t = p.length; t > select(j, j + 1u, EXCLUSIVE); t--) {
            acc = combine(acc, ${acc}(x[base + (t - 1u) * p.inner]));
        }
    } else {
        for (var t = 0u; t < select(j + 1u, j, EXCLUSIVE); t++) {
            acc = combine(acc, ${acc}(x[base + t * p.inner]));
        }
    }
    y[id] = y_elem(acc);
}
