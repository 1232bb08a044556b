// Cumulative sum (or, with PRODUCT, product) along one axis of a row-major tensor seen as
// [outer, length, inner]: output (o, j, i) combines the inputs (o, t, i) for t up to j (from j on
// with REVERSE; EXCLUSIVE leaves out j itself), in ${acc} (i32 for integer tensors: exact,
// wrapping as int32 does).
//
// The axis is cut into `blocks` blocks of `block` values (one block of the whole length where it
// is short). A long one takes two dispatches: stage 0 combines each block into `part`
// ([outer, blocks, inner]), stage 1 each output the blocks before its own (after, with REVERSE)
// from `part`, then its own block's values up to it, in order. An invocation then loops about
// 2 sqrt(length) times, not up to length times (lavapipe ends an invocation's loops after 65,535).
#include "compute/common.wgsl"

struct Params { total: u32, inner: u32, length: u32, block: u32, blocks: u32, stage: u32 }

const EXCLUSIVE: bool = ${exclusive};
const REVERSE: bool = ${reverse};
const PRODUCT: bool = ${product};

fn combine(acc: ${acc}, v: ${acc}) -> ${acc} {
    return select(acc + v, acc * v, PRODUCT);
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;
@group(0) @binding(3) var<storage, read_write> part: array<part_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let i = id % p.inner;
    var acc = select(${acc}(0), ${acc}(1), PRODUCT);
    if (p.stage == 0u) {  // block b of row (o, i): id is (o, b, i)
        let b = (id / p.inner) % p.blocks;
        let row = id / (p.inner * p.blocks) * p.length * p.inner + i;  // (o, 0, i)
        for (var t = b * p.block; t < min(b * p.block + p.block, p.length); t++) {
            acc = combine(acc, ${acc}(x[row + t * p.inner]));
        }
        part[id] = part_elem(acc);
        return;
    }
    let j = (id / p.inner) % p.length;
    let base = id - j * p.inner;  // (o, 0, i)
    let b = j / p.block;
    let parts = id / (p.inner * p.length) * p.blocks * p.inner + i;  // (o, 0, i) of part
    if (REVERSE) {
        for (var c = p.blocks; c > b + 1u; c--) {
            acc = combine(acc, ${acc}(part[parts + (c - 1u) * p.inner]));
        }
        for (var t = min(b * p.block + p.block, p.length); t > select(j, j + 1u, EXCLUSIVE); t--) {
            acc = combine(acc, ${acc}(x[base + (t - 1u) * p.inner]));
        }
    } else {
        for (var c = 0u; c < b; c++) {
            acc = combine(acc, ${acc}(part[parts + c * p.inner]));
        }
        for (var t = b * p.block; t < select(j + 1u, j, EXCLUSIVE); t++) {
            acc = combine(acc, ${acc}(x[base + t * p.inner]));
        }
    }
    y[id] = y_elem(acc);
}
