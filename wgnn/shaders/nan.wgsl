// NaN, found by its bits (exponent all ones, mantissa not zero): WGSL leaves what max, min and
// clamp make of NaN to the driver, and compilers may fold x != x to false. The kernels that clamp
// or compare use these to propagate NaN as IEEE and ONNX Runtime do.
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn nan4(v: vec4<f32>) -> vec4<bool> { return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u); }
