// What a quantized convolution's epilogue does to four channels of its sums (bias included),
// shared by epilogue.wgsl (QUANT) and epilogue_i8.wgsl (MODE); the modes, as ternary.wgsl and the
// element-wise kernels compute the steps they fuse, in f32:
//   1 requantize: clamp(round_half_even(sums * multiplier) + y_zero, lo, hi);
//   2 shifted: that less y_zero; 3 dequantized: that times y_scale;
//   4 a residual block's tail: that plus the residual dequantized, (r - r_zero) * r_scale,
//     quantized by q_scale and q_zero into [q_lo, q_hi]; 5: that less q_zero.
// The constants come from a table: one multiplier vec4 per four channels, then (y_zero, lo, hi,
// y_scale), (r_zero, r_scale, q_scale, q_zero), (q_lo, q_hi, -, -).
fn requantize4(mode: u32, sums: vec4<f32>, multiplier: vec4<f32>, ends: vec4<f32>, tail: vec4<f32>,
               bounds: vec4<f32>, residual: vec4<f32>) -> vec4<f32> {
    var q = clamp(round(sums * multiplier) + ends.x, vec4<f32>(ends.y), vec4<f32>(ends.z));
    if (mode >= 2u) {
        q -= ends.x;
    }
    if (mode >= 3u) {
        q *= ends.w;
    }
    if (mode >= 4u) {
        let v = q + (residual - tail.x) * tail.y;
        q = clamp(round(v / tail.z) + tail.w, vec4<f32>(bounds.x), vec4<f32>(bounds.y));
    }
    if (mode == 5u) {
        q -= tail.w;
    }
    return q;
}

// Quantized tensors stored four to a word (storage "i8x4": NHWC, four channels' bytes per u32).
fn pack_u8(v: vec4<f32>) -> u32 { return pack4xU8(vec4<u32>(v)); }
fn pack_i8(v: vec4<f32>) -> u32 { return pack4xI8(vec4<i32>(v)); }
fn unpack_u8(w: u32) -> vec4<f32> { return vec4<f32>(unpack4xU8(w)); }
fn unpack_i8(w: u32) -> vec4<f32> { return vec4<f32>(unpack4xI8(w)); }
