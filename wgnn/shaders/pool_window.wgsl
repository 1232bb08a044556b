// Shared by the compute and texture pooling shaders (whose Params use these field names): how
// many window positions fall inside the padded input, the divisor of average pooling with
// count_include_pad. Positions past the end padding (ceil_mode's overhang) do not count.
fn padded_window_size(oy: u32, ox: u32) -> f32 {
    var rows = 0.0;
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(oy * p.stride_h + kh * p.dil_h) - p.pad_top;
        rows += select(0.0, 1.0, iy < i32(p.in_h) + p.pad_bottom);
    }
    var cols = 0.0;
    for (var kw = 0u; kw < p.kernel_w; kw++) {
        let ix = i32(ox * p.stride_w + kw * p.dil_w) - p.pad_left;
        cols += select(0.0, 1.0, ix < i32(p.in_w) + p.pad_right);
    }
    return rows * cols;
}
