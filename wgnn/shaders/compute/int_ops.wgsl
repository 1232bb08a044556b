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
    var base = x;
    var n = u32(z);
    var r = 1;
    while (n != 0u) {
        if ((n & 1u) != 0u) {
            r *= base;
        }
        base *= base;
        n >>= 1u;
    }
    return r;
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
fn op_abs_i32(x: i32, z: i32) -> i32 { return abs(x); }
fn op_neg_i32(x: i32, z: i32) -> i32 { return -x; }
fn op_sign_i32(x: i32, z: i32) -> i32 { return sign(x); }
fn op_relu_i32(x: i32, z: i32) -> i32 { return max(x, 0); }
