// Resize's sampling, shared by both backends: the value at source position (sy, sx) of image n,
// channel c (or vec4 of channels c), nearest or through the separable ${filter} filter (see
// compute/resize.wgsl). Values are ${value}: f32, or vec4<f32> where four channels share one source
// position and its weights. The including kernel defines load(n, iy, ix, c) -> ${value} and Params
// with in_h, in_w, support_h/_w, start_h/_w, taps_h/_w, cubic_a and exclude_outside.

fn clamp_index(i: i32, size: u32) -> u32 {
    return u32(clamp(i, 0, i32(size) - 1));
}

fn sample_nearest(n: u32, sy: f32, sx: f32, c: u32) -> ${value} {
    return load(n, u32(sy), u32(sx), c);
}

// Linear over the two neighbouring pixels, edges repeated: what sample_filtered computes for the
// linear filter unstretched (taps 0 and 1, support 1), without its loops and normalization.
fn sample_bilinear(n: u32, sy: f32, sx: f32, c: u32) -> ${value} {
    let by = floor(sy);
    let bx = floor(sx);
    let y0 = clamp_index(i32(by), p.in_h);
    let y1 = clamp_index(i32(by) + 1, p.in_h);
    let x0 = clamp_index(i32(bx), p.in_w);
    let x1 = clamp_index(i32(bx) + 1, p.in_w);
    let fx = sx - bx;
    let top = load(n, y0, x0, c) * (1.0 - fx) + load(n, y0, x1, c) * fx;
    let bottom = load(n, y1, x0, c) * (1.0 - fx) + load(n, y1, x1, c) * fx;
    let fy = sy - by;
    return top * (1.0 - fy) + bottom * fy;
}

fn filter_linear(d: f32) -> f32 { return clamp(1.0 - abs(d), 0.0, 1.0); }
fn filter_cubic(d: f32) -> f32 {
    let t = abs(d);
    let a = p.cubic_a;
    if (t <= 1.0) {
        return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    }
    if (t < 2.0) {
        return ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
    }
    return 0.0;
}

// The weight of tap i along an axis whose source position is base + frac (0 when excluded).
fn tap_weight(i: i32, frac: f32, support: f32, index: i32, size: u32) -> f32 {
    if (p.exclude_outside != 0u && (index < 0 || index >= i32(size))) {
        return 0.0;
    }
    return filter_${filter}((f32(i) - frac) * support);
}

fn sample_filtered(n: u32, sy: f32, sx: f32, c: u32) -> ${value} {
    let by = floor(sy);
    let bx = floor(sx);
    var acc = ${value}(0.0);
    var wsum_y = 0.0;
    var wsum_x = 0.0;
    for (var ty = 0u; ty < p.taps_h; ty++) {
        let i = p.start_h + i32(ty);
        let iy = i32(by) + i;
        let wy = tap_weight(i, sy - by, p.support_h, iy, p.in_h);
        wsum_y += wy;
        var row = ${value}(0.0);
        wsum_x = 0.0;
        for (var tx = 0u; tx < p.taps_w; tx++) {
            let j = p.start_w + i32(tx);
            let ix = i32(bx) + j;
            let wx = tap_weight(j, sx - bx, p.support_w, ix, p.in_w);
            wsum_x += wx;
            row += wx * load(n, clamp_index(iy, p.in_h), clamp_index(ix, p.in_w), c);
        }
        acc += wy * row;
    }
    return acc / (wsum_y * wsum_x);
}
