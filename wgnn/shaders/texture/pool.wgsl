// Max and average pooling over channels-last textures, four channels per fragment.
#include "texture/common.wgsl"
#include "nan.wgsl"
#include "pool_window.wgsl"

struct Params {
    out_width: u32, out_texels: u32, x_width: u32, in_h: u32,
    in_w: u32, c4: u32, c: u32, out_h: u32,
    out_w: u32, kernel_h: u32, kernel_w: u32, stride_h: u32,
    stride_w: u32, dil_h: u32, dil_w: u32, pad_top: i32,
    pad_left: i32, pad_bottom: i32, pad_right: i32, count_include_pad: u32,
}

const IS_MAX: bool = ${is_max};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_2d<f32>;

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    let c4 = t % p.c4;
    var rest = t / p.c4;
    let ox = rest % p.out_w;
    rest = rest / p.out_w;
    let oy = rest % p.out_h;
    let n = rest / p.out_h;

    var acc = select(vec4<f32>(0.0), vec4<f32>(-3.402823e38), IS_MAX);
    var count = 0.0;
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(oy * p.stride_h + kh * p.dil_h) - p.pad_top;
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let ix = i32(ox * p.stride_w + kw * p.dil_w) - p.pad_left;
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            let v = texel(x, ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.c4 + c4, p.x_width);
            let top = select(max(acc, v), acc + v, nan4(acc) | nan4(v));  // NaN propagates (nan.wgsl)
            acc = select(acc + v, top, IS_MAX);
            count += 1.0;
        }
    }
    let divisor = select(count, padded_window_size(oy, ox), p.count_include_pad != 0u);
    return finish(mask_lanes(select(acc / divisor, acc, IS_MAX), c4 * 4u, p.c));
}
