// Reductions (sum, mean, max, min, prod, sum_square, l1, l2, log_sum_exp) over any set of axes,
// as softmax.wgsl's rows (${per_row}): a workgroup per output element, whose invocations stride
// over the reduced elements, accumulate in f32 and combine through a workgroup tree; or an
// invocation per output element, alone, without barriers. Both the kept and the reduced axes are
// addressed by strides (merged on the host), so any layout and any axes work. log_sum_exp first
// finds the maximum, so exp cannot overflow.
#include "compute/common.wgsl"
#include "compute/rows.wgsl"
#include "reduce_offsets.wgsl"  // offset_of(j)

struct Params {
    outputs: u32, reduce_size: u32, inv_count: f32,
    out_shape: array<vec4<u32>, 2>,
    out_strides: array<vec4<i32>, 2>,
    red_shape: array<vec4<u32>, 2>,
    red_strides: array<vec4<i32>, 2>,
}

const OUT_RANK: i32 = ${out_rank};
const RED_RANK: i32 = ${red_rank};
const NEEDS_MAX: bool = ${needs_max};
const COMBINE: u32 = COMBINE_${combine_kind};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_of(wid, lid, nwg);
    if (row >= p.outputs) {
        return;
    }
    let first = row_first(lid);
    let step = row_step();
    var i = row;
    var base = 0;
    for (var d = OUT_RANK - 1; d >= 0; d--) {
        let dim = p.out_shape[d / 4][d % 4];
        base += i32(i % dim) * p.out_strides[d / 4][d % 4];
        i = i / dim;
    }
    var m = 0.0;
    if (NEEDS_MAX) {
        var local_max = -3.402823e38;
        for (var j = first; j < p.reduce_size; j += step) {
            local_max = max(local_max, f32(x[base + offset_of(j)]));
        }
        m = combined(local_max, lid, COMBINE_MAX);
    }
    var acc = init_${init}();
    for (var j = first; j < p.reduce_size; j += step) {
        acc = combine(acc, map_${map}(f32(x[base + offset_of(j)]), m), COMBINE);
    }
    acc = combined(acc, lid, COMBINE);
    if (PER_ROW || lid == 0u) {
        y[row] = y_elem(finish_${finish}(acc, m, p.inv_count));
    }
}
