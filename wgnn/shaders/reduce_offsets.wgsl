// Both backends' reduce kernels: the offset of the j-th reduced value from an output's first, over
// the reduced axes (merged on the host) in p.red_shape and p.red_strides, RED_RANK of them.

fn offset_of(j: u32) -> i32 {
    var i = j;
    var off = 0;
    for (var d = RED_RANK - 1; d >= 0; d--) {
        let dim = p.red_shape[d / 4][d % 4];
        off += i32(i % dim) * p.red_strides[d / 4][d % 4];
        i = i / dim;
    }
    return off;
}
