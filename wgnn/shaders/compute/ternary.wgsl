// Three-operand element-wise kernel: out = ${fn}(a, b, c) over a RANK-dimensional index space,
// every operand addressed through its own per-axis strides (0 broadcasts), as in elementwise.wgsl.
//   where_select: a ? b : c (a a bool tensor stored as i32; b and c share out's dtype);
//   quantize:     saturate(round_half_even(a / b) + c) into [p.lo, p.hi] (a float, b the scale, c
//                 the zero point); quantize_shifted: that minus c, as a float;
//   requantize:   saturate(round_half_even(a * b) + c) (a an integer sum held in f32, b the
//                 multiplier); requantize_shifted: that minus c, as a float;
//                 requantize_dequantize: that times p.scale;
//   dequantize:   (a - c) * b;
//   muladd:       activation(a * (b * p.scale) + c) (p.scale 1, or a constant factor of b's; with
//                 ${factor}, b also times factor[0], a number computed at run time);
//   dequantize_sum: activation(f32(i32(a) + c) * s), s = b * p.scale (a an integer sum held in f32,
//                 c an int32 offset: a quantized product's bias; with ${bias_scaled}, c a float bias
//                 and the offset i32(floor(c / s)));
// the last two (ACTIVATED, their function ${combine}) take the activation's alpha and beta in p.lo
// and p.hi, and the lanes of an invocation go through the activation as one vec4.
#include "compute/common.wgsl"
#include "activation.wgsl"
#include "compute/strided.wgsl"  // axis_index()

const ACTIVATED: bool = ${activated};
const HAS_FACTOR: bool = ${factor};
const BIAS_SCALED: bool = ${bias_scaled};

fn muladd(a: a_elem, b: b_elem, c: c_elem) -> f32 {
    if (HAS_FACTOR) {
        return f32(a) * (f32(b) * p.scale * f32(factor[0])) + f32(c);
    }
    return f32(a) * (f32(b) * p.scale) + f32(c);
}

fn dequantize_sum(a: a_elem, b: b_elem, c: c_elem) -> f32 {
    let s = f32(b) * p.scale;
    if (BIAS_SCALED) {
        return f32(i32(a) + i32(floor(f32(c) / s))) * s;
    }
    return f32(i32(a) + i32(c)) * s;
}

fn activated(a: a_elem, b: b_elem, c: c_elem) -> y_elem {  // (the ${fn} of the ACTIVATED path, not reached)
    return y_elem(${combine}(a, b, c));
}

fn where_select(a: a_elem, b: b_elem, c: c_elem) -> y_elem {
    return select(y_elem(c), y_elem(b), a != a_elem(0));
}

fn quantize(a: a_elem, b: b_elem, c: c_elem) -> y_elem {
    let q = round(f32(a) / f32(b)) + f32(c);
    return y_elem(i32(clamp(q, p.lo, p.hi)));
}

fn quantize_shifted(a: a_elem, b: b_elem, c: c_elem) -> y_elem {
    let q = clamp(round(f32(a) / f32(b)) + f32(c), p.lo, p.hi);
    return y_elem(q - f32(c));
}

fn requantize(a: a_elem, b: b_elem, c: c_elem) -> y_elem {
    let q = round(f32(a) * f32(b)) + f32(c);
    return y_elem(i32(clamp(q, p.lo, p.hi)));
}

fn requantize_shifted(a: a_elem, b: b_elem, c: c_elem) -> y_elem {
    let q = clamp(round(f32(a) * f32(b)) + f32(c), p.lo, p.hi);
    return y_elem(q - f32(c));
}

fn requantize_dequantize(a: a_elem, b: b_elem, c: c_elem) -> y_elem {
    let q = clamp(round(f32(a) * f32(b)) + f32(c), p.lo, p.hi);
    return y_elem((q - f32(c)) * p.scale);
}

fn dequantize(a: a_elem, b: b_elem, c: c_elem) -> y_elem {
    return y_elem(f32(i32(a) - i32(c)) * f32(b));
}

struct Params {
    total: u32, out_base: u32, a_base: u32, b_base: u32, c_base: u32, lo: f32, hi: f32, scale: f32,
    out_step: i32, a_step: i32, b_step: i32, c_step: i32,
    shape: array<vec4<u32>, 2>,
    out_strides: array<vec4<i32>, 2>,
    a_strides: array<vec4<i32>, 2>,
    b_strides: array<vec4<i32>, 2>,
    c_strides: array<vec4<i32>, 2>,
}

const RANK: i32 = ${rank};
const LANES: i32 = ${lanes};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<a_elem>;
@group(0) @binding(2) var<storage, read_write> b: array<b_elem>;
@group(0) @binding(3) var<storage, read_write> c: array<c_elem>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;
@group(0) @binding(5) var<storage, read_write> factor: array<factor_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var i = id;
    var offsets = vec4<i32>(i32(p.out_base), i32(p.a_base), i32(p.b_base), i32(p.c_base));
    for (var d = RANK - 1; d >= 0; d--) {
        let idx = axis_index(&i, d);
        offsets += idx * vec4<i32>(p.out_strides[d / 4][d % 4], p.a_strides[d / 4][d % 4],
                                   p.b_strides[d / 4][d % 4], p.c_strides[d / 4][d % 4]);
    }
    if (ACTIVATED) {
        var v = vec4<f32>();
        for (var l = 0; l < LANES; l++) {
            v[l] = ${combine}(a[offsets.y + l * p.a_step], b[offsets.z + l * p.b_step], c[offsets.w + l * p.c_step]);
        }
        v = activate(v, p.lo, p.hi, vec4<f32>(0.0));
        for (var l = 0; l < LANES; l++) {
            y[offsets.x + l * p.out_step] = y_elem(v[l]);
        }
        return;
    }
    for (var l = 0; l < LANES; l++) {
        y[offsets.x + l * p.out_step] = ${fn}(a[offsets.y + l * p.a_step], b[offsets.z + l * p.b_step],
                                              c[offsets.w + l * p.c_step]);
    }
}
