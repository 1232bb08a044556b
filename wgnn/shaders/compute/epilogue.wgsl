// The fused epilogue of conv2d, depthwise and matmul (four channels per vec4): factored(), a
// product's sums first times a number computed at run time (binding 7, ``factor``: dynamic
// quantization's x_scale) and the includer's p.factor_scale, then the bias (biased(); a
// dynamically quantized convolution's bias goes into its integer sums before the factor,
// offset_sums()), then the residual when one was fused (${residual}), then the activation, then the store; with
// ${residual_after}, the residual after the activation (x + SiLU(conv): YOLO's bottlenecks), then with
// ${affine} a scale and shift by single numbers (PP-LCNetV3's affine blocks). Declares the
// output-side bindings 3 to 6; the including kernel declares Params (with alpha, beta and
// y_slice.wgsl's fields) and bindings 0 to 2.
//
// A quantized convolution's epilogue (QUANT > 0): the sums plus the bias through requantize4
// (requantize.wgsl), its table in the slope binding. Every store goes through store_y(): y is
// vec4s of its element type, or (a quantized result stored packed) one u32 per four channels.
// y may be a slice of a larger tensor (y_index in y_slice.wgsl). The residual is read at the
// output's own index, or (R_WINDOW, a convolution's) through a window: per pixel, p.r_row4 vec4s
// p.r_pitch4 apart from vec4 p.r_offset4 on, where the output has p.r_out4; the channels beyond
// p.r_row4 add zero. That reads a residual narrower than the output (a zero channel pad folded into
// its reader: passes.fuse_residual.narrow_padded_residuals) and one that is a channel slice of a
// wider tensor, in place (backends/compute/data.py: channel_windows). The including kernel's
// Params has the fields.
#include "activation.wgsl"
#include "compute/requantize.wgsl"
#include "compute/y_slice.wgsl"

const HAS_RESIDUAL: bool = ${residual};
const RESIDUAL_AFTER: bool = ${residual_after};
const QUANT: u32 = ${quant}u;
const R_WINDOW: bool = ${r_window};
const AFFINE: bool = ${affine};  // act(v) * p.post_scale + p.post_shift, last (passes.fuse_affine)

@group(0) @binding(3) var<storage, read> bias: array<vec4<bias_elem>>;
@group(0) @binding(4) var<storage, read_write> residual: array<vec4<residual_elem>>;
@group(0) @binding(5) var<storage, read> slope: array<vec4<slope_elem>>;
@group(0) @binding(6) var<storage, read_write> y: array<${y_type}>;
${factor_binding}

// The sums as the epilogue takes them: acc, or acc * (factor[0] * p.factor_scale) (the order of
// ternary.wgsl's muladd, so that the fused product rounds as the two dispatches did).
fn factored(acc: vec4<f32>) -> vec4<f32> {
    return ${factor_times};
}

// Integer sums plus an integer offset, times s (ternary.wgsl's dequantize_sum's operations).
fn offset_sums(acc: vec4<f32>, offset: vec4<f32>, s: f32) -> vec4<f32> {
    return vec4<f32>(vec4<i32>(acc) + vec4<i32>(offset)) * s;
}

// The sums with the bias b: factored(acc) + b, or (a dynamically quantized convolution's, whose
// bias joins its integer sums before the factor) offset_sums().
fn biased(acc: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return ${biased};
}

fn store_y(v: vec4<f32>) -> ${y_type} {
    return ${y_store}(v);
}

fn scattered_lane(v: vec4<f32>) -> y_elem {  // (store_y's form where y is scalars: Y_SCATTER)
    return y_elem(v.x);
}

// One value as y holds it (what Y_SCATTER stores; valid for every y type, as the untaken branch
// must be).
fn lane_y(v: f32) -> ${y_type} {
    return ${y_type}(y_elem(v));
}

fn quantized(out_index: u32, c: Channel, sums: vec4<f32>) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    if (QUANT >= 4u && HAS_RESIDUAL) {
        r = vec4<f32>(residual[out_index]);
    }
    return requantize4(QUANT, sums, c.slope, c.ends, c.tail, c.bounds, r);
}

fn residual_at(out_index: u32) -> vec4<f32> {
    if (!R_WINDOW) {
        return vec4<f32>(residual[out_index]);
    }
    let c4 = out_index % p.r_out4;
    if (c4 >= p.r_row4) {
        return vec4<f32>(0.0);
    }
    return vec4<f32>(residual[out_index / p.r_out4 * p.r_pitch4 + p.r_offset4 + c4]);
}

// The float epilogue's value of the output's vec4 out_index from its sums plus bias (v): the
// residual, the activation, the affine (write_output's; matmul.wgsl's ragged store's too).
fn finished(out_index: u32, s: vec4<f32>, biased: vec4<f32>) -> vec4<f32> {
    var v = biased;
    if (HAS_RESIDUAL && !RESIDUAL_AFTER) {
        v += residual_at(out_index);
    }
    var r = activate(v, p.alpha, p.beta, s);
    if (HAS_RESIDUAL && RESIDUAL_AFTER) {
        r += residual_at(out_index);
    }
    if (AFFINE) {
        r = r * p.post_scale + p.post_shift;
    }
    return r;
}

// What the epilogue reads for one vec4 of channels: the bias, the slope binding's row (an
// activation's per-channel slope, or a quantized epilogue's multipliers) and a quantized epilogue's
// table ends. A kernel that writes several outputs of the same channels reads them once
// (channel_at) and writes each through write_channel: the loads are not repeated in every
// conditional store, where a software adapter's compiler cannot hoist them.
struct Channel {
    bias: vec4<f32>, slope: vec4<f32>, ends: vec4<f32>, tail: vec4<f32>, bounds: vec4<f32>,
}

fn channel_at(channel4: u32) -> Channel {
    var c: Channel;
    c.bias = vec4<f32>(bias[channel4]);
    c.slope = vec4<f32>(slope[channel4]);
    if (QUANT != 0u) {
        let n = arrayLength(&slope) - 3u;
        c.ends = vec4<f32>(slope[n]);
        c.tail = vec4<f32>(slope[n + 1u]);
        c.bounds = vec4<f32>(slope[n + 2u]);
    }
    return c;
}

// out_index: the vec4 of the output to write; c: its channels' constants (channel_at).
fn write_channel(out_index: u32, c: Channel, acc: vec4<f32>) {
    let v = biased(acc, c.bias);
    if (QUANT != 0u) {
        y[y_index(out_index)] = store_y(quantized(out_index, c, v));
        return;
    }
    let r = finished(out_index, c.slope, v);
    if (Y_SCATTER) {
        let base = y_scatter_base(out_index);
        y[base] = lane_y(r.x);
        y[base + p.y_offset4] = lane_y(r.y);
        y[base + 2u * p.y_offset4] = lane_y(r.z);
        y[base + 3u * p.y_offset4] = lane_y(r.w);
        return;
    }
    y[y_index(out_index)] = store_y(r);
}

// out_index: the vec4 of the output to write; channel4: which vec4 of channels it holds.
fn write_output(out_index: u32, channel4: u32, acc: vec4<f32>) {
    write_channel(out_index, channel_at(channel4), acc);
}
