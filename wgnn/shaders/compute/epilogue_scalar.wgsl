// The fused epilogue of the scalar kernels (conv2d_generic, matmul_generic): the same steps as
// epilogue.wgsl, one element at a time. Declares bindings 3 to 6 (and 7 with a run-time factor).
#include "activation.wgsl"

const HAS_RESIDUAL: bool = ${residual};
const RESIDUAL_AFTER: bool = ${residual_after};  // the residual after the activation
const AFFINE: bool = ${affine};  // then r * p.post_scale + p.post_shift

@group(0) @binding(3) var<storage, read> bias: array<bias_elem>;
@group(0) @binding(4) var<storage, read_write> residual: array<residual_elem>;
@group(0) @binding(5) var<storage, read> slope: array<slope_elem>;
@group(0) @binding(6) var<storage, read_write> y: array<y_elem>;
${factor_binding}

fn factored(acc: f32) -> f32 {  // (epilogue.wgsl's, on one value)
    return ${factor_times};
}

fn offset_sums(acc: f32, offset: f32, s: f32) -> f32 {  // (epilogue.wgsl's, on one value)
    return f32(i32(acc) + i32(offset)) * s;
}

fn biased(acc: f32, b: f32) -> f32 {  // (epilogue.wgsl's, on one value)
    return ${biased};
}

fn write_output(out_index: u32, channel: u32, acc: f32) {
    var v = biased(acc, f32(bias[channel]));
    if (HAS_RESIDUAL && !RESIDUAL_AFTER) {
        v += f32(residual[out_index]);
    }
    var r = activate(vec4<f32>(v), p.alpha, p.beta, vec4<f32>(f32(slope[channel]))).x;
    if (HAS_RESIDUAL && RESIDUAL_AFTER) {
        r += f32(residual[out_index]);
    }
    if (AFFINE) {
        r = r * p.post_scale + p.post_shift;
    }
    y[out_index] = y_elem(r);
}
