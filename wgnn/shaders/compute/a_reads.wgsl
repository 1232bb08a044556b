// A of the register-tiled matrix kernels (matmul.wgsl, matmul_shared.wgsl; backends/compute/nn.py's
// _scalar_a_template): vec4 words, or where K is not a multiple of 4 scalars, four of K read one at a
// time. The includer declares the binding a.
const A_STEP: u32 = ${a_step}u;  // A's words per four values of K: 1 (vec4s) or 4 (scalars)

// Four values of K from word i of A on, and the value at word i (the last K % 4 of a scalar A).
fn a_four(i: u32) -> vec4<f32> {
    return ${a_four};
}
fn a_one(i: u32) -> f32 {
    return ${a_one};
}
