// Any convolution (grouped, channel counts not divisible by 4, depth multipliers) over NHWC
// tensors: one output element per invocation, scalar loads. Used where conv2d and depthwise
// cannot be, typically only a network's first layer (3 input channels).
// Weights stay in ONNX order [Cout][Cin/group][KH][KW].
#include "compute/common.wgsl"
#include "compute/epilogue_scalar.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    batch: u32, in_h: u32, in_w: u32, in_c: u32,
    out_h: u32, out_w: u32, out_c: u32, groups: u32,
    kernel_h: u32, kernel_w: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_top: i32, pad_left: i32,
    alpha: f32, beta: f32, post_scale: f32, post_shift: f32,
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue_scalar.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, ${w_access}> w: array<w_elem>;  // read_write when computed at run time (in the arena)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.out_h * p.out_w * p.out_c) {
        return;
    }
    let at = nhwc_coords(id, p.out_h, p.out_w, p.out_c);
    let n = at.x;
    let oy = at.y;
    let ox = at.z;
    let oc = at.w;
    let cin = p.in_c / p.groups;
    let ci0 = (oc / (p.out_c / p.groups)) * cin;

    var acc = 0.0;
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
            let xi = ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_c + ci0;
            let wi = (oc * cin * p.kernel_h + kh) * p.kernel_w + kw;
            for (var ci = 0u; ci < cin; ci++) {
                acc = fma(f32(x[xi + ci]), f32(w[wi + ci * p.kernel_h * p.kernel_w]), acc);
            }
        }
    }
    write_output(id, oc, acc);
}
