// The reductions' building blocks, shared by both backends' reduce kernels and softmax: how
// partial values combine, and each kind's start value, map and finish (ops/reduce.py KINDS names
// them); finish takes 1 / the count of reduced values, for the mean.

const COMBINE_SUM: u32 = 0u;
const COMBINE_MAX: u32 = 1u;
const COMBINE_MIN: u32 = 2u;
const COMBINE_PROD: u32 = 3u;

#include "nan.wgsl"

fn either_nan(a: f32, b: f32) -> bool { return is_nan(a) || is_nan(b); }

fn combine(a: f32, b: f32, kind: u32) -> f32 {
    switch kind {
        case COMBINE_MAX: { return select(max(a, b), a + b, either_nan(a, b)); }  // NaN propagates
        case COMBINE_MIN: { return select(min(a, b), a + b, either_nan(a, b)); }
        case COMBINE_PROD: { return a * b; }
        default: { return a + b; }
    }
}

fn init_sum() -> f32 { return 0.0; }
// Infinity of the sign bit given, made at run time (a constant expression may not be infinite): the
// max of values that are all -inf is -inf (ONNX Runtime's), not the largest finite negative float.
fn infinity(sign: u32) -> f32 { return bitcast<f32>(0x7f800000u | sign); }
fn init_max() -> f32 { return infinity(0x80000000u); }
fn init_min() -> f32 { return infinity(0u); }
fn init_prod() -> f32 { return 1.0; }
fn map_plain(v: f32, m: f32) -> f32 { return v; }
fn map_square(v: f32, m: f32) -> f32 { return v * v; }
fn map_abs(v: f32, m: f32) -> f32 { return abs(v); }
fn map_exp(v: f32, m: f32) -> f32 { return exp(v - m); }
fn finish_plain(a: f32, m: f32, inv_count: f32) -> f32 { return a; }
fn finish_mean(a: f32, m: f32, inv_count: f32) -> f32 { return a * inv_count; }
fn finish_sqrt(a: f32, m: f32, inv_count: f32) -> f32 { return sqrt(a); }
fn finish_log(a: f32, m: f32, inv_count: f32) -> f32 { return log(a) + m; }
