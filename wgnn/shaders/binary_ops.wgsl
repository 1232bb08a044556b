// The binary arithmetic of the element-wise kernels (compute and texture paths), in f32.
// ``first`` returns its first operand: copies and standalone activations use it.

fn op_first(x: f32, z: f32) -> f32 { return x; }
fn op_add(x: f32, z: f32) -> f32 { return x + z; }
fn op_sub(x: f32, z: f32) -> f32 { return x - z; }
fn op_mul(x: f32, z: f32) -> f32 { return x * z; }
fn op_div(x: f32, z: f32) -> f32 { return x / z; }
#include "nan.wgsl"

// max and min with NaN propagated, as ONNX Runtime does.
fn op_max(x: f32, z: f32) -> f32 { return select(max(x, z), x + z, is_nan(x) || is_nan(z)); }
fn op_min(x: f32, z: f32) -> f32 { return select(min(x, z), x + z, is_nan(x) || is_nan(z)); }
fn op_prelu(x: f32, z: f32) -> f32 { return select(x * z, x, x >= 0.0); }
fn op_pow(x: f32, z: f32) -> f32 {
    // Integral exponents by squaring: exact where the result is representable (2^3 is 8, not
    // 7.9999995, which matters when an integer tensor is raised to a float power) and defined for
    // negative bases, where WGSL's pow is not. Other exponents go through pow.
    if (floor(z) != z || abs(z) > 2147483647.0) {
        return pow(x, z);
    }
    var base = select(x, 1.0 / x, z < 0.0);
    var n = u32(abs(z));
    var r = 1.0;
    while (n != 0u) {
        if ((n & 1u) != 0u) {
            r *= base;
        }
        base *= base;
        n >>= 1u;
    }
    return r;
}
// Remainders: mod takes the divisor's sign (Python's), fmod the dividend's (C's).
fn op_fmod(x: f32, z: f32) -> f32 {
    // x itself for a finite x over an infinite z (the formula would give NaN there)
    let finite_x = (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
    let infinite_z = (bitcast<u32>(z) & 0x7fffffffu) == 0x7f800000u;
    return select(x - z * trunc(x / z), x, finite_x && infinite_z);
}
fn op_mod(x: f32, z: f32) -> f32 {
    let r = op_fmod(x, z);
    return select(r, r + z, r != 0.0 && (r < 0.0) != (z < 0.0));
}
// Classes of floats, found by their bits (the second operand unused): 1 or 0, stored as a bool.
fn op_is_nan(x: f32, z: f32) -> f32 { return select(0.0, 1.0, is_nan(x)); }
fn op_is_inf(x: f32, z: f32) -> f32 { return select(0.0, 1.0, (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u); }
fn op_is_pos_inf(x: f32, z: f32) -> f32 { return select(0.0, 1.0, bitcast<u32>(x) == 0x7f800000u); }
fn op_is_neg_inf(x: f32, z: f32) -> f32 { return select(0.0, 1.0, bitcast<u32>(x) == 0xff800000u); }
// Comparisons give 1 or 0 (stored as a bool); nonzero is the cast to bool.
fn op_equal(x: f32, z: f32) -> f32 { return select(0.0, 1.0, x == z); }
fn op_greater(x: f32, z: f32) -> f32 { return select(0.0, 1.0, x > z); }
fn op_less(x: f32, z: f32) -> f32 { return select(0.0, 1.0, x < z); }
fn op_greater_equal(x: f32, z: f32) -> f32 { return select(0.0, 1.0, x >= z); }
fn op_less_equal(x: f32, z: f32) -> f32 { return select(0.0, 1.0, x <= z); }
fn op_nonzero(x: f32, z: f32) -> f32 { return select(0.0, 1.0, x != 0.0); }
