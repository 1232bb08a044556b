// A reshape that moves the packing: each output value's row-major index is decoded again over the
// input's shape (the input is in logical order), then found among the input's padded elements.
#include "texture/common.wgsl"

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, out_last: u32,
    out_shape: array<vec4<u32>, 2>,
    in_shape: array<vec4<u32>, 2>,
    in_strides: array<vec4<u32>, 2>,
}

const OUT_RANK: i32 = ${out_rank};
const IN_RANK: i32 = ${in_rank};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_2d<f32>;

fn lane(e: u32) -> f32 {
    // Row-major index among the output's real elements (its last axis is padded in e).
    var i = e;
    var flat = 0u;
    var scale = 1u;
    for (var d = OUT_RANK - 1; d >= 0; d--) {
        let dim = p.out_shape[d / 4][d % 4];
        let idx = i % dim;
        i = i / dim;
        if (d == OUT_RANK - 1) {
            if (idx >= p.out_last) {
                return 0.0;
            }
            flat += idx;
            scale = p.out_last;
        } else {
            flat += idx * scale;
            scale *= dim;
        }
    }
    var src = 0u;
    for (var d = IN_RANK - 1; d >= 0; d--) {
        let dim = p.in_shape[d / 4][d % 4];
        src += (flat % dim) * p.in_strides[d / 4][d % 4];
        flat = flat / dim;
    }
    return element(x, src, p.x_width);
}

#include "texture/by_lanes.wgsl"  // fs_main: each texel as lane(e) x 4
