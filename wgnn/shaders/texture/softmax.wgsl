// Softmax by lanes: each output value loops over its row (max, then the sum of exp) through the
// row's stride in padded element indices, as WebGL backends did it: no shared memory in a
// fragment shader, so every lane redoes its row's reductions.
#include "texture/common.wgsl"

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, last: u32,
    last_padded: u32, axis_size: u32, axis_stride: u32, axis_is_last: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_2d<f32>;

fn lane(e: u32) -> f32 {
    if (e % p.last_padded >= p.last) {
        return 0.0;
    }
    let idx = select((e / p.axis_stride) % p.axis_size, e % p.last_padded, p.axis_is_last != 0u);
    let base = e - idx * p.axis_stride;
    var m = -3.402823e38;
    for (var j = 0u; j < p.axis_size; j++) {
        m = max(m, element(x, base + j * p.axis_stride, p.x_width));
    }
    var s = 0.0;
    for (var j = 0u; j < p.axis_size; j++) {
        s += exp(element(x, base + j * p.axis_stride, p.x_width) - m);
    }
    if (${log}) {
        return element(x, e, p.x_width) - m - log(s);
    }
    return exp(element(x, e, p.x_width) - m) / s;
}

#include "texture/by_lanes.wgsl"  // fs_main: each texel as lane(e) x 4
