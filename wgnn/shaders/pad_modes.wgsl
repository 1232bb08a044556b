// Where padding reads from, per axis, for pad's three modes (compute and texture backends): the
// input coordinate of output coordinate c shifted by the pad (input size n).
// Each returns the input coordinate, or -1 where the constant value goes.
fn map_constant(c: i32, n: i32) -> i32 { return select(-1, c, c >= 0 && c < n); }
fn map_edge(c: i32, n: i32) -> i32 { return clamp(c, 0, n - 1); }
// Reflection is symmetric about 0, so it folds |c| with unsigned arithmetic only: a signed
// remainder of a negative number came out as the unsigned one on one driver (NVIDIA, Vulkan).
fn map_reflect(c: i32, n: i32) -> i32 {
    if (n == 1) {
        return 0;
    }
    let period = u32(2 * (n - 1));
    let m = u32(abs(c)) % period;
    return i32(select(period - m, m, m < u32(n)));
}
