// A matrix kernel's input scaled per value of K (${x_scaled}): x * s, s one value per channel of a
// single image (a squeeze-and-excitation block's gate before its 1x1 convolution,
// passes/fold_channel_scale.py). The kernels scale B's rows instead, as they load them: s[k] B[k]
// gives the same products. Declares binding 7 where scaled; x_scale4(k4) is s at 4 k4 .. 4 k4 + 3,
// scaled_rows() the four rows of B from 4 k4 on, scaled.
const X_SCALED: bool = ${x_scaled};
${x_scale_binding}

fn x_scale4(k4: u32) -> vec4<f32> {
    return ${x_scale4};
}

fn scaled_rows(k4: u32, rows: mat4x4<f32>) -> mat4x4<f32> {
    if (!X_SCALED) {
        return rows;
    }
    let s = x_scale4(k4);
    return mat4x4<f32>(rows[0] * s.x, rows[1] * s.y, rows[2] * s.z, rows[3] * s.w);
}
