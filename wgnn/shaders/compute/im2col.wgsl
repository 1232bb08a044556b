// A convolution's input as the rows of a matrix product: row p holds output pixel p's
// KH * KW * C4 input vec4s under the filter, in the order of the weights' rows (ky, kx, channels),
// zero in the padding. A convolution of few input channels (an image network's first layer, one
// vec4 a pixel) or of many multiply-adds (policy.columns_conv) then runs as the product of these
// rows and its weights [KH * KW * C][Cout] on the matrix kernel at its full tile, where
// conv2d_shared loads four vec4s of weights for every vec4 of input it multiplies, and pays its
// window bookkeeping per tap.
// An invocation per output pixel, which writes its row (the divisions that find the pixel, a
// software adapter's dearest instructions, once for all of its taps).
#include "compute/common.wgsl"

struct Params {
    pixels: u32, taps: u32, in_c4: u32, in_h: u32,
    in_w: u32, out_h: u32, out_w: u32, kernel_h: u32,
    kernel_w: u32, stride_h: u32, stride_w: u32, dil_h: u32,
    dil_w: u32, pad_top: i32, pad_left: i32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_word}>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<y_elem>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let pixel = flat_id(wid, lid, nwg);  // (n, oy, ox) of the output
    if (pixel >= p.pixels) {
        return;
    }
    let ox = pixel % p.out_w;
    let oy = (pixel / p.out_w) % p.out_h;
    let n = pixel / (p.out_w * p.out_h);
    let iy0 = i32(oy * p.stride_h) - p.pad_top;
    let ix0 = i32(ox * p.stride_w) - p.pad_left;
    var j = pixel * p.taps;
    for (var ky = 0u; ky < p.kernel_h; ky++) {
        let iy = iy0 + i32(ky * p.dil_h);
        let row = (n * p.in_h + u32(max(iy, 0))) * p.in_w;
        for (var kx = 0u; kx < p.kernel_w; kx++) {
            let ix = ix0 + i32(kx * p.dil_w);
            let inside = iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w);
            let at = (row + u32(max(ix, 0))) * p.in_c4;
            for (var c4 = 0u; c4 < p.in_c4; c4++) {
                y[j] = vec4<y_elem>(select(vec4<f32>(0.0), ${x_read}(x[at + c4]), inside));
                j++;
            }
        }
    }
}
