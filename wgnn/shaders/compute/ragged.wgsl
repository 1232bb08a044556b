// Ragged columns of a matrix product (N not a multiple of 4: matmul.wgsl's and matmul_shared.wgsl's
// N_RAGGED): the includer's Params has n (N) and y_slice.wgsl's fields, its B binding b (scalars
// where B_COL = 4), its y scalars (the epilogue's y_type y_elem).

// B's row from word i (its first column's) on: the vec4 of columns col, its lanes from four
// scalar words, zero past column N (${b_lane} reads lane j).
fn b_lanes(i: u32, col: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        if (col * 4u + j < p.n) {
            v[j] = f32(${b_lane});
        }
    }
    return v;
}

// A row's values from column 4 col on (``finished``'s), up to column N, from the output's element
// base on; in a concat's result (Y_SLICE) where its rows lie there (whole vec4s: y_slice.wgsl).
fn store_ragged(base: u32, col: u32, v: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        if (col * 4u + j < p.n) {
            var e = base + j;
            if (Y_SLICE) {
                e += e / (4u * p.y_row4) * 4u * (p.y_pitch4 - p.y_row4) + 4u * p.y_offset4;
            }
            y[e] = lane_y(v[j]);
        }
    }
}

// Row r of a product's output (its batch's row, counted over the batch) at vec4 column col, its
// sums acc: bias and the float epilogue (``finished``; c: the columns' constants, channel_at(col)),
// stored up to column N.
fn write_ragged(row: u32, col: u32, c: Channel, acc: vec4<f32>) {
    store_ragged(row * p.n + col * 4u, col, finished(row * p.n4 + col, c.slope, factored(acc) + c.bias));
}
