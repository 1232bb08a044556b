// The element-wise kernel's arithmetic on i32: int32, int64 (stored as i32) and bool (0 or 1)
// tensors. Overflow wraps; division truncates toward zero, as ONNX's integer Div does, and a
// division by zero gives the dividend (WGSL defines it so) rather than trapping.

fn op_first_i32(x: i32, z: i32) -> i32 { return x; }
fn op_add_i32(x: i32, z: i32) -> i32 { return x + z; }
fn op_sub_i32(x: i32, z: i32) -> i32 { return x - z; }
fn op_mul_i32(x: i32, z: i32) -> i32 { return x * z; }
fn op_div_i32(x: i32, z: i32) -> i32 { return x / z; }
fn op_max_i32(x: i32, z: i32) -> i32 { return max(x, z); }
fn op_min_i32(x: i32, z: i32) -> i32 { return min(x, z); }
fn op_pow_i32(x: i32, z: i32) -> i32 {
    // Square and multiply; a negative exponent leaves 1 / x^n, which truncates to 0 unless |x| is 1.
    if (z < 0) {
        return select(0, select(1, select(-1, 1, (z & 1) == 0), x == -1), x == 1 || x == -1);
    }
    // Wrapping products keep the same 32 bits signed or unsigned: the u32 square-and-multiply serves.
    return bitcast<i32>(op_pow_u32(bitcast<u32>(x), u32(z)));
}
fn op_equal_i32(x: i32, z: i32) -> i32 { return select(0, 1, x == z); }
fn op_greater_i32(x: i32, z: i32) -> i32 { return select(0, 1, x > z); }
fn op_less_i32(x: i32, z: i32) -> i32 { return select(0, 1, x < z); }
fn op_greater_equal_i32(x: i32, z: i32) -> i32 { return select(0, 1, x >= z); }
fn op_less_equal_i32(x: i32, z: i32) -> i32 { return select(0, 1, x <= z); }
fn op_nonzero_i32(x: i32, z: i32) -> i32 { return select(0, 1, x != 0); }
fn op_and_i32(x: i32, z: i32) -> i32 { return select(0, 1, x != 0 && z != 0); }
fn op_or_i32(x: i32, z: i32) -> i32 { return select(0, 1, x != 0 || z != 0); }
fn op_xor_i32(x: i32, z: i32) -> i32 { return select(0, 1, (x != 0) != (z != 0)); }
fn op_not_i32(x: i32, z: i32) -> i32 { return select(1, 0, x != 0); }
fn op_fmod_i32(x: i32, z: i32) -> i32 { return select(x % z, x, z == 0); }
fn op_mod_i32(x: i32, z: i32) -> i32 {
    let r = op_fmod_i32(x, z);
    return select(r, r + z, r != 0 && (r < 0) != (z < 0));
}
fn op_bitwise_and_i32(x: i32, z: i32) -> i32 { return x & z; }
fn op_bitwise_or_i32(x: i32, z: i32) -> i32 { return x | z; }
fn op_bitwise_xor_i32(x: i32, z: i32) -> i32 { return x ^ z; }
// BitShift: a shift by a negative amount or by the type's width or more leaves 0 (right: -1 for a
// negative signed value). Narrow types are sign- or zero-extended in i32, so shifting the i32 (and
// wrapping as it is stored) gives their own results up to a shift of 31.
fn op_shift_left_i32(x: i32, z: i32) -> i32 { return select(x << u32(z), 0, z < 0 || z >= 32); }
fn op_shift_right_i32(x: i32, z: i32) -> i32 { return select(x >> u32(z), select(0, -1, x < 0), z < 0 || z >= 32); }
fn op_abs_i32(x: i32, z: i32) -> i32 { return abs(x); }
fn op_neg_i32(x: i32, z: i32) -> i32 { return -x; }
fn op_sign_i32(x: i32, z: i32) -> i32 { return sign(x); }
fn op_relu_i32(x: i32, z: i32) -> i32 { return max(x, 0); }

// uint32 tensors (stored as i32 bits, read as u32): the kinds whose results differ from i32's.
fn op_first_u32(x: u32, z: u32) -> u32 { return x; }
fn op_add_u32(x: u32, z: u32) -> u32 { return x + z; }
fn op_sub_u32(x: u32, z: u32) -> u32 { return x - z; }
fn op_mul_u32(x: u32, z: u32) -> u32 { return x * z; }
fn op_div_u32(x: u32, z: u32) -> u32 { return x / z; }
fn op_max_u32(x: u32, z: u32) -> u32 { return max(x, z); }
fn op_min_u32(x: u32, z: u32) -> u32 { return min(x, z); }
fn op_equal_u32(x: u32, z: u32) -> u32 { return select(0u, 1u, x == z); }
fn op_greater_u32(x: u32, z: u32) -> u32 { return select(0u, 1u, x > z); }
fn op_less_u32(x: u32, z: u32) -> u32 { return select(0u, 1u, x < z); }
fn op_greater_equal_u32(x: u32, z: u32) -> u32 { return select(0u, 1u, x >= z); }
fn op_less_equal_u32(x: u32, z: u32) -> u32 { return select(0u, 1u, x <= z); }
fn op_nonzero_u32(x: u32, z: u32) -> u32 { return select(0u, 1u, x != 0u); }
fn op_fmod_u32(x: u32, z: u32) -> u32 { return select(x % z, x, z == 0u); }
fn op_mod_u32(x: u32, z: u32) -> u32 { return op_fmod_u32(x, z); }
fn op_bitwise_and_u32(x: u32, z: u32) -> u32 { return x & z; }
fn op_bitwise_or_u32(x: u32, z: u32) -> u32 { return x | z; }
fn op_bitwise_xor_u32(x: u32, z: u32) -> u32 { return x ^ z; }
fn op_shift_left_u32(x: u32, z: u32) -> u32 { return select(x << z, 0u, z >= 32u); }
fn op_shift_right_u32(x: u32, z: u32) -> u32 { return select(x >> z, 0u, z >= 32u); }
fn op_abs_u32(x: u32, z: u32) -> u32 { return x; }
fn op_relu_u32(x: u32, z: u32) -> u32 { return x; }
fn op_neg_u32(x: u32, z: u32) -> u32 { return 0u - x; }
fn op_sign_u32(x: u32, z: u32) -> u32 { return select(0u, 1u, x != 0u); }

// Storing into a small integer type keeps the low bits of the i32 result, sign-extended for the
// signed types (int8 127 + 1 = -128, as numpy and ONNX Runtime wrap): shift = 32 - bits.
fn wrap_signed(v: i32, shift: u32) -> i32 { return (v << shift) >> shift; }
fn wrap_unsigned(v: i32, shift: u32) -> i32 { return i32((u32(v) << shift) >> shift); }
// A float stored into a 4- or 2-bit type: truncated, and 0 where that is out of [lo, hi] or NaN
// (what ONNX's reference, ml_dtypes, gives).
fn float_to_small(v: f32, lo: f32, hi: f32) -> i32 {
    let t = trunc(v);
    return select(0, i32(t), t >= lo && t <= hi);
}
fn op_pow_u32(x: u32, z: u32) -> u32 {
    var base = x;
    var n = z;
    var r = 1u;
    while (n != 0u) {
        if ((n & 1u) != 0u) {
            r *= base;
        }
        base *= base;
        n >>= 1u;
    }
    return r;
}
