// ScatterElements and ScatterND written as gathers: output element c starts as data[c] and takes,
// in the order ONNX lists them, every update aimed at it, combined by the reduction (none: the last
// one wins), so duplicates give the same result on every run. An index past its axis (after
// negative ones count from the end) aims at nothing.
//   ELEMENTS: the updates aimed at c lie along the axis at c's other coordinates (those inside the
//     indices' shape): indices[c'] == c[axis] for c' = c with c'[axis] = t, t < the indices' length.
//   ND: update row u (of `rows`, each q indices) is aimed at c if its q indices are c's first q
//     coordinates; c's element within the slice is c % slice.
#include "compute/common.wgsl"

struct Params {
    total: u32, axis: u32, rows: u32, q: u32, slice: u32,
    shape: array<vec4<u32>, 2>,        // data's (and the output's) shape
    idx_shape: array<vec4<u32>, 2>,    // ELEMENTS: the indices' shape
    idx_strides: array<vec4<u32>, 2>,  // ELEMENTS: their row-major strides
}

const RANK: i32 = ${rank};
const ELEMENTS: bool = ${elements};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> indices: array<indices_elem>;
@group(0) @binding(3) var<storage, read_write> updates: array<updates_elem>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;

fn combine(a: x_elem, b: x_elem) -> x_elem {
    return ${combine};
}

fn wrapped(k: i32, size: u32) -> i32 {
    return select(k, k + i32(size), k < 0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var value = x[id];
    // c's coordinates, last axis first
    var coords: array<u32, 8>;
    var rest = id;
    for (var d = RANK - 1; d >= 0; d--) {
        let dim = p.shape[d / 4][d % 4];
        coords[d] = rest % dim;
        rest = rest / dim;
    }
    if (ELEMENTS) {
        var base = 0u;  // c' with c'[axis] = 0, in the indices' strides
        var inside = true;
        for (var d = 0; d < RANK; d++) {
            if (u32(d) != p.axis) {
                inside = inside && coords[d] < p.idx_shape[d / 4][d % 4];
                base += coords[d] * p.idx_strides[d / 4][d % 4];
            }
        }
        if (inside) {
            let axis = p.axis;
            let step = p.idx_strides[axis / 4u][axis % 4u];
            let size = p.shape[axis / 4u][axis % 4u];
            for (var t = 0u; t < p.idx_shape[axis / 4u][axis % 4u]; t++) {
                let at = base + t * step;
                if (wrapped(i32(indices[at]), size) == i32(coords[axis])) {
                    value = combine(value, x_elem(updates[at]));
                }
            }
        }
    } else {
        for (var u = 0u; u < p.rows; u++) {
            var hit = true;
            for (var m = 0u; m < p.q; m++) {
                hit = hit && wrapped(i32(indices[u * p.q + m]), p.shape[m / 4u][m % 4u]) == i32(coords[m]);
            }
            if (hit) {
                value = combine(value, x_elem(updates[u * p.slice + id % p.slice]));
            }
        }
    }
    y[id] = value;
}
