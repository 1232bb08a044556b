// The fused epilogue shared by conv2d, depthwise, matmul and the element-wise kernel.
// Every activation has the same signature so that ${act} picks one by name; alpha and beta come
// from the kernel's uniforms, slope is PRelu's per-channel slope (unused by the others).

fn act_none(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return v; }
fn act_relu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> { return max(v, vec4<f32>(0.0)); }
fn act_clip(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return min(max(v, vec4<f32>(alpha)), vec4<f32>(beta));
}
fn act_sigmoid(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return 1.0 / (1.0 + exp(-v));
}
fn act_tanh(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    // Clamped: some drivers compute tanh through exp and return NaN for large |v|.
    return tanh(clamp(v, vec4<f32>(-15.0), vec4<f32>(15.0)));
}
fn act_leaky_relu(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return select(v * alpha, v, v >= vec4<f32>(0.0));
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

fn activate(v: vec4<f32>, alpha: f32, beta: f32, slope: vec4<f32>) -> vec4<f32> {
    return act_${act}(v, alpha, beta, slope);
}
