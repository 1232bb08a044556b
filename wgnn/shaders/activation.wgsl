// The fused epilogue shared by conv2d, depthwise, matmul and the element-wise kernel.
// Every activation has the same signature so that ${act} picks one by name; alpha and beta come
// from the kernel's uniforms, slope is PRelu's per-channel slope (unused by the others).

#include "nan.wgsl"

// The clamping activations put a NaN input back (ONNX Runtime keeps NaN).
fn keep_nan(v: vec4<f32>, r: vec4<f32>) -> vec4<f32> { return select(r, v, nan4(v)); }

fn act_none(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return v; }
fn act_relu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return keep_nan(v, max(v, vec4<f32>(0.0)));
}
fn act_clip(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return keep_nan(v, min(max(v, vec4<f32>(alpha)), vec4<f32>(beta)));
}
fn act_sigmoid(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return 1.0 / (1.0 + exp(-v));
}
fn act_tanh(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    // Clamped: some drivers compute tanh through exp and return NaN for large |v|; and through
    // (e^2v - 1) / (e^2v + 1), which loses the relative precision of small |v|: a series there.
    let v2 = v * v;
    let series = v * (1.0 + v2 * (-1.0 / 3.0 + v2 * (2.0 / 15.0 + v2 * (-17.0 / 315.0))));
    return select(tanh(clamp(v, vec4<f32>(-15.0), vec4<f32>(15.0))), series, abs(v) < vec4<f32>(0.2));
}
fn act_leaky_relu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return select(v * alpha, v, v >= vec4<f32>(0.0));
}
fn act_leaky_relu_max(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return keep_nan(v, max(select(v * alpha, v, v >= vec4<f32>(0.0)), vec4<f32>(beta)));
}
fn act_hard_sigmoid(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return clamp(v * alpha + beta, vec4<f32>(0.0), vec4<f32>(1.0));
}
fn act_hard_swish(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return v * clamp(v * alpha + beta, vec4<f32>(0.0), vec4<f32>(1.0));
}
fn act_prelu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return select(v * slope, v, v >= vec4<f32>(0.0));
}

// Element-wise functions (ONNX's unary ops). alpha and beta are the op's attributes where it has any.
fn act_abs(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return abs(v); }
fn act_neg(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return -v; }
fn act_exp(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return exp(v); }
fn act_log(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return log(v); }
fn act_sqrt(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return sqrt(v); }
fn act_reciprocal(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return 1.0 / v; }
fn act_floor(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return floor(v); }
fn act_ceil(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return ceil(v); }
fn act_round(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return round(v); }  // half to even
fn act_sin(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return sin(v); }
fn act_cos(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return cos(v); }
fn act_sign(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return sign(v); }
fn act_softsign(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return v / (1.0 + abs(v)); }
fn act_softplus(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    // log(1 + e^v) = max(v, 0) + log(1 + u), u = e^-|v|: no overflow, and log(1 + u) by its series
    // where u is small (1 + u would round u away).
    let u = exp(-abs(v));
    let log1p = select(log(1.0 + u), u * (1.0 - u * (0.5 - u / 3.0)), u < vec4<f32>(1e-3));
    return max(v, vec4<f32>(0.0)) + log1p;
}
fn act_elu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return select(alpha * (exp(v) - 1.0), v, v > vec4<f32>(0.0));
}
fn act_selu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {  // beta: gamma
    return beta * select(alpha * (exp(v) - 1.0), v, v > vec4<f32>(0.0));
}
fn act_tan(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return tan(v); }
// asin and acos through atan2 (some drivers' own are a polynomial good to 3e-4 only)
fn act_asin(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return atan2(v, sqrt((1.0 - v) * (1.0 + v)));
}
fn act_acos(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return atan2(sqrt((1.0 - v) * (1.0 + v)), v);
}
fn act_atan(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return atan(v); }
// The hyperbolic functions written out (WGSL defines them through exp and log, which cancel near 0
// and, for asinh of large negative values, lose everything): odd series near 0.
fn act_sinh(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    let v2 = v * v;
    let series = v * (1.0 + v2 * (1.0 / 6.0 + v2 * (1.0 / 120.0 + v2 / 5040.0)));
    let e = exp(abs(v));
    return select(sign(v) * 0.5 * (e - 1.0 / e), series, abs(v) < vec4<f32>(0.25));
}
fn act_cosh(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    let e = exp(abs(v));
    return 0.5 * (e + 1.0 / e);
}
fn act_asinh(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    let a = abs(v);
    let v2 = v * v;
    let series = v * (1.0 + v2 * (-1.0 / 6.0 + v2 * (3.0 / 40.0 + v2 * (-5.0 / 112.0))));
    // |v| + sqrt(v^2 + 1), for |v| past 2^12 where v^2 + 1 rounds to v^2 (and v^2 past f32's range): 2|v|
    let big = a > vec4<f32>(4096.0);
    let root = select(a + sqrt(v2 + 1.0), 2.0 * a, big);
    let far = select(log(root), log(2.0) + log(a), big);
    return select(sign(v) * far, series, a < vec4<f32>(0.125));
}
fn act_acosh(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    let big = v > vec4<f32>(4096.0);
    return select(log(v + sqrt((v - 1.0) * (v + 1.0))), log(2.0) + log(v), big);
}
fn act_atanh(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    let v2 = v * v;
    let series = v * (1.0 + v2 * (1.0 / 3.0 + v2 * (1.0 / 5.0 + v2 * (1.0 / 7.0 + v2 / 9.0))));
    return select(0.5 * log((1.0 + v) / (1.0 - v)), series, abs(v) < vec4<f32>(0.125));
}
fn act_mish(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return v * act_tanh(act_softplus(v, alpha, beta, slope), alpha, beta, slope);
}
fn act_swish(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return v / (1.0 + exp(-alpha * v));
}
fn act_thresholded_relu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, v > vec4<f32>(alpha));
}
fn act_shrink(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {  // alpha: lambd, beta: bias
    return select(select(vec4<f32>(0.0), v - beta, v > vec4<f32>(alpha)), v + beta, v < vec4<f32>(-alpha));
}
fn act_celu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return max(v, vec4<f32>(0.0)) + min(vec4<f32>(0.0), alpha * (exp(v / alpha) - 1.0));
}

// erf: a series near 0, where 1 - erfc would cancel; elsewhere erfc by the Chebyshev fit of
// Numerical Recipes (relative error below 1.2e-7).
fn erf4(v: vec4<f32>) -> vec4<f32> {
    let x2 = v * v;
    let series = v * 1.1283791671 * (1.0 + x2 * (-1.0 / 3.0 + x2 * (0.1 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0
                 + x2 * (-1.0 / 1320.0))))));
    let z = abs(v);
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
               + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * exp(-z * z + poly);
    return select(sign(v) * (1.0 - erfc), series, z < vec4<f32>(0.5));
}
fn act_erf(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return erf4(v); }
fn act_gelu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {  // alpha 1: tanh form
    if (alpha != 0.0) {
        let inner = clamp(0.7978845608 * (v + 0.044715 * v * v * v), vec4<f32>(-15.0), vec4<f32>(15.0));
        return 0.5 * v * (1.0 + tanh(inner));
    }
    return 0.5 * v * (1.0 + erf4(v * 0.7071067812));
}

fn activate(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return act_${act}(v, alpha, beta, slope);
}
