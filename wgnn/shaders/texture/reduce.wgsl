// Reductions on the texture path: each output value walks its reduced input values (addressed by
// strides over the input's padded elements, both kept and reduced axes merged on the host) and
// combines them in f32 (reduce_kinds.wgsl); log_sum_exp first finds the maximum.
#include "texture/common.wgsl"
#include "reduce_kinds.wgsl"
#include "reduce_offsets.wgsl"  // offset_of(j)

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, last: u32,
    reduce_size: u32, inv_count: f32,
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
@group(0) @binding(1) var x: texture_2d<f32>;


fn lane(e: u32) -> f32 {
    var i = e;
    var base = 0;
    for (var d = OUT_RANK - 1; d >= 0; d--) {
        let dim = p.out_shape[d / 4][d % 4];
        let idx = i % dim;
        i = i / dim;
        if (d == OUT_RANK - 1 && idx >= p.last) {
            return 0.0;  // a padding lane of the packing
        }
        base += i32(idx) * p.out_strides[d / 4][d % 4];
    }
    var m = 0.0;
    if (NEEDS_MAX) {
        m = -3.402823e38;
        for (var j = 0u; j < p.reduce_size; j++) {
            m = max(m, element(x, u32(base + offset_of(j)), p.x_width));
        }
    }
    var acc = init_${init}();
    for (var j = 0u; j < p.reduce_size; j++) {
        acc = combine(acc, map_${map}(element(x, u32(base + offset_of(j)), p.x_width), m), COMBINE);
    }
    return finish_${finish}(acc, m, p.inv_count);
}

#include "texture/by_lanes.wgsl"  // fs_main: each texel as lane(e) x 4
