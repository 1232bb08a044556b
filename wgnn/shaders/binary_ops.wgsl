// The binary arithmetic of the element-wise kernels (compute and texture paths), in f32.
// ``first`` returns its first operand: copies and standalone activations use it.

fn op_first(x: f32, z: f32) -> f32 { return x; }
fn op_add(x: f32, z: f32) -> f32 { return x + z; }
fn op_sub(x: f32, z: f32) -> f32 { return x - z; }
fn op_mul(x: f32, z: f32) -> f32 { return x * z; }
fn op_div(x: f32, z: f32) -> f32 { return x / z; }
fn op_max(x: f32, z: f32) -> f32 { return max(x, z); }
fn op_min(x: f32, z: f32) -> f32 { return min(x, z); }
fn op_prelu(x: f32, z: f32) -> f32 { return select(x * z, x, x >= 0.0); }
fn op_pow(x: f32, z: f32) -> f32 {
    // WGSL's pow is undefined for negative bases; integral exponents are what ONNX models use there.
    if (x >= 0.0 || floor(z) != z) {
        return pow(x, z);
    }
    let r = pow(-x, z);
    return select(r, -r, (i32(z) & 1) != 0);
}
