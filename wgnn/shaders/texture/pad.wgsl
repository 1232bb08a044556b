// Padding on the texture path: each output value's per-axis coordinates (over the padded physical
// shape, the last axis packed) map back to the input by ${mode} (pad_modes.wgsl), then to the
// input's padded element index; outside the input, the constant value.
#include "texture/common.wgsl"
#include "pad_modes.wgsl"

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, last: u32,
    value: f32,
    out_shape: array<vec4<u32>, 2>,
    in_shape: array<vec4<u32>, 2>,
    in_strides: array<vec4<i32>, 2>,
    begins: array<vec4<i32>, 2>,
}

const RANK: i32 = ${rank};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_2d<f32>;

fn lane(e: u32) -> f32 {
    var i = e;
    var src = 0;
    var inside = true;
    for (var d = RANK - 1; d >= 0; d--) {
        let q = d / 4;
        let r = d % 4;
        let dim = p.out_shape[q][r];
        let idx = i % dim;
        i = i / dim;
        if (d == RANK - 1 && idx >= p.last) {
            return 0.0;  // a padding lane of the packing
        }
        let c = map_${mode}(i32(idx) - p.begins[q][r], i32(p.in_shape[q][r]));
        inside = inside && c >= 0;
        src += max(c, 0) * p.in_strides[q][r];
    }
    return select(p.value, element(x, u32(src), p.x_width), inside);
}

#include "texture/by_lanes.wgsl"  // fs_main: each texel as lane(e) x 4
