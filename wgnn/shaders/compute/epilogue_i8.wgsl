// The epilogue of the packed-int8 convolution (conv2d_i8.wgsl) and of its split-K reduction
// (splitk_i8.wgsl): from a vec4 of integer sums (without the bias) to what the node writes. Declares
// bindings 3 to 6; the including kernel declares Params with y_zero, lo, hi, y_scale, r_zero,
// r_scale, q_scale, q_zero, q_lo and q_hi.
//
// MODE 0 "sums": the sums plus the bias, as floats (the conv2d node alone); 1 "requantize" and
// 2 "requantize_shifted": the requantize that reads them, fused, as ternary.wgsl computes it,
// clamp(round_half_even(f32(sum) * multiplier) + y_zero, lo, hi), less y_zero when shifted;
// 3 "dequantize": the requantize's own dequantize too, (q - y_zero) * y_scale; 4 "block": that
// plus the residual dequantized, (r - r_zero) * r_scale, quantized by q_scale and q_zero into
// [q_lo, q_hi] (the tail of a quantized residual block, as the dequantize, add and quantize
// kernels compute it, in f32).

const MODE: u32 = ${mode_id}u;

@group(0) @binding(3) var<storage, read> bias: array<vec4<i32>>;
@group(0) @binding(4) var<storage, read> multiplier: array<vec4<multiplier_elem>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<y_elem>>;
@group(0) @binding(6) var<storage, read_write> residual: array<vec4<residual_elem>>;

fn write_sums(index: u32, col4: u32, acc: vec4<i32>) {
    let sums = vec4<f32>(acc + bias[col4]);
    if (MODE == 0u) {
        y[index] = vec4<y_elem>(sums);
        return;
    }
    var q = clamp(round(sums * vec4<f32>(multiplier[col4])) + p.y_zero, vec4<f32>(p.lo), vec4<f32>(p.hi));
    if (MODE >= 2u) {
        q -= p.y_zero;
    }
    if (MODE >= 3u) {
        q *= p.y_scale;
    }
    if (MODE == 4u) {
        let v = q + (vec4<f32>(residual[index]) - p.r_zero) * p.r_scale;
        q = clamp(round(v / p.q_scale) + p.q_zero, vec4<f32>(p.q_lo), vec4<f32>(p.q_hi));
    }
    y[index] = vec4<y_elem>(q);
}
