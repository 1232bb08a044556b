// Transposed convolution over NHWC tensors, as a gather: each invocation computes one output
// element by visiting the input pixels whose stride-spaced footprint covers it. Weights are packed
// [Cout][KH][KW][Cin/group] so the inner loop reads both tensors contiguously; weights computed at
// run time (${packed} false) are read in ONNX's own [Cin][Cout/group][KH][KW] order instead.
#include "compute/common.wgsl"
#include "compute/epilogue_scalar.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    batch: u32, in_h: u32, in_w: u32, in_c: u32,
    out_h: u32, out_w: u32, out_c: u32, groups: u32,
    kernel_h: u32, kernel_w: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_top: i32, pad_left: i32,
    alpha: f32, beta: f32, post_scale: f32, post_shift: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, ${w_access}> w: array<w_elem>;  // read_write when computed at run time (in the arena)

// The input index along one axis that output position `o` takes from tap `k`, or -1 if none.
fn source_index(o: u32, k: u32, stride: u32, dil: u32, pad: i32, size: u32) -> i32 {
    let t = i32(o) + pad - i32(k * dil);
    if (t < 0 || t % i32(stride) != 0) {
        return -1;
    }
    let i = t / i32(stride);
    return select(-1, i, i < i32(size));
}

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
        let iy = source_index(oy, kh, p.stride_h, p.dil_h, p.pad_top, p.in_h);
        if (iy < 0) {
            continue;
        }
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let ix = source_index(ox, kw, p.stride_w, p.dil_w, p.pad_left, p.in_w);
            if (ix < 0) {
                continue;
            }
            let xi = ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_c + ci0;
            if (${packed}) {
                let wi = ((oc * p.kernel_h + kh) * p.kernel_w + kw) * cin;
                for (var ci = 0u; ci < cin; ci++) {
                    acc = fma(f32(x[xi + ci]), f32(w[wi + ci]), acc);
                }
            } else {
                let opg = p.out_c / p.groups;
                let taps = p.kernel_h * p.kernel_w;
                let wi = (ci0 * opg + oc % opg) * taps + kh * p.kernel_w + kw;  // [ci0][oc % opg][kh][kw]
                for (var ci = 0u; ci < cin; ci++) {
                    acc = fma(f32(x[xi + ci]), f32(w[wi + ci * opg * taps]), acc);
                }
            }
        }
    }
    write_output(id, oc, acc);
}
