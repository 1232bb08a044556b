// ArgMax / ArgMin along one axis of a tensor in logical order, viewed as [outer, axis_size, inner],
// as softmax.wgsl's rows (${per_row}): one invocation per output walks its axis, or a workgroup per
// output, whose invocations walk every WG-th element and then merge their (value, index) pairs
// in a tree (few outputs over a long axis: a classifier's or a text recognizer's ArgMax). Either
// gives what one walk from index 0 gives: ${better} is > (max) or < (min); ${or_equal} is = when
// ties take the last index, so a later equal value wins too. NaN never wins a comparison, so a NaN
// at index 0 stays the answer and any other NaN is passed over (${nan}: false for integer tensors).
#include "compute/common.wgsl"
#include "compute/rows.wgsl"
#include "nan.wgsl"

struct Params { total: u32, axis_size: u32, inner: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;

const LAST: bool = ${last};  // ties take the last index
const NONE: u32 = 0xffffffffu;  // an invocation whose share of the axis is empty

var<workgroup> part_value: array<x_elem, WG>;
var<workgroup> part_index: array<u32, WG>;

fn never_wins(v: x_elem) -> bool {
    return ${nan};
}

// Whether the pair (v, k) takes the place of (best, at), as a walk in order of index would decide.
// The only NaN a pair keeps is one at index 0 (see main), and that one stays the answer.
fn wins(v: x_elem, k: u32, best: x_elem, at: u32) -> bool {
    if (at == NONE) {
        return k != NONE;
    }
    if (k == NONE || never_wins(best)) {
        return false;
    }
    if (never_wins(v) || v == best) {
        return never_wins(v) || select((k < at), (k > at), LAST);
    }
    return v ${better} best;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = row_of(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let start = (id / p.inner) * p.axis_size * p.inner + id % p.inner;
    let first = row_first(lid);
    var best = x_elem(0);
    var index = NONE;
    for (var k = first; k < p.axis_size; k += row_step()) {
        let v = x[start + k * p.inner];
        if (index == NONE) {
            if (k == 0u || !never_wins(v)) {  // a NaN only at index 0, where a walk starts
                best = v;
                index = k;
            }
        } else if (!never_wins(v) && v ${better}${or_equal} best) {
            best = v;
            index = k;
        }
    }
    if (!PER_ROW) {
        part_value[lid] = best;
        part_index[lid] = index;
        workgroupBarrier();
        for (var step = WG / 2u; step > 0u; step = step / 2u) {
            if (lid < step && wins(part_value[lid + step], part_index[lid + step], part_value[lid], part_index[lid])) {
                part_value[lid] = part_value[lid + step];
                part_index[lid] = part_index[lid + step];
            }
            workgroupBarrier();
        }
        index = part_index[0];
    }
    if (PER_ROW || lid == 0u) {
        y[id] = y_elem(i32(index));
    }
}
