// Element-wise work by lanes: out = activation(op(a, b)) where every output value finds its inputs
// through per-axis strides over padded element indices (texel * 4 + lane). Broadcasting, layout
// changes, reshapes that move the packing, slices and two-input concats are all this shader.
// ${mode} is "apply" (${op}: "first" or an arithmetic op) or "concat" (a below SPLIT along the
// concat axis, b from there on).
#include "texture/common.wgsl"
#include "activation.wgsl"
#include "binary_ops.wgsl"

struct Params {
    out_width: u32, out_texels: u32, a_width: u32, b_width: u32,
    last: u32, a_base: i32, b_base: i32, split: u32,
    concat_axis: u32, alpha: f32, beta: f32,
    shape: array<vec4<u32>, 2>,
    a_strides: array<vec4<i32>, 2>,
    b_strides: array<vec4<i32>, 2>,
}

const RANK: i32 = ${rank};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var a: texture_2d<f32>;
@group(0) @binding(2) var b: texture_2d<f32>;

fn value_apply(ao: i32, bo: i32, along: u32) -> f32 {
    return op_${op}(element(a, u32(ao), p.a_width), element(b, u32(bo), p.b_width));
}

// Two-input concat: b's base already subtracts SPLIT along the axis.
fn value_concat(ao: i32, bo: i32, along: u32) -> f32 {
    if (along < p.split) {
        return element(a, u32(ao), p.a_width);
    }
    return element(b, u32(bo), p.b_width);
}

fn lane(e: u32) -> f32 {
    // Decode the padded element index e into per-axis indices (the last axis is padded).
    var i = e;
    var ao = p.a_base;
    var bo = p.b_base;
    var along = 0u;
    for (var d = RANK - 1; d >= 0; d--) {
        let dim = p.shape[d / 4][d % 4];
        let idx = i % dim;
        i = i / dim;
        if (d == RANK - 1 && idx >= p.last) {
            return 0.0;  // a padding lane
        }
        if (u32(d) == p.concat_axis) {
            along = idx;
        }
        ao += i32(idx) * p.a_strides[d / 4][d % 4];
        bo += i32(idx) * p.b_strides[d / 4][d % 4];
    }
    return value_${mode}(ao, bo, along);
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    let v = vec4<f32>(lane(t * 4u), lane(t * 4u + 1u), lane(t * 4u + 2u), lane(t * 4u + 3u));
    let valid = vec4<u32>(t * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    let r = activate(v, p.alpha, p.beta, vec4<f32>(0.0));
    // Padding lanes stay zero whatever the activation makes of zero.
    return finish(select(vec4<f32>(0.0), r, valid % vec4<u32>(p.shape[(RANK - 1) / 4][(RANK - 1) % 4]) < vec4<u32>(p.last)));
}
