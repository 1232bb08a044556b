// Shared by the texture path's fragment shaders. A tensor lives in a 2-D RGBA texture: its last
// physical axis is packed four values to a texel (zero-padded to a multiple of 4), and texels are
// laid out in order, row after row, wrapping at the texture's width, so a tensor wider than the
// largest texture simply takes more rows. Each op draws one full-screen triangle; the fragment at
// (x, y) computes texel y * width + x of its output.

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // (-1, -1), (3, -1), (-1, 3): one triangle covering the whole target.
    return vec4<f32>(f32((i << 1u) & 2u) * 2.0 - 1.0, f32(i & 2u) * 2.0 - 1.0, 0.0, 1.0);
}

fn out_texel(pos: vec4<f32>, width: u32) -> u32 {
    return u32(pos.y) * width + u32(pos.x);
}

fn texel(t: texture_2d<f32>, index: u32, width: u32) -> vec4<f32> {
    return textureLoad(t, vec2<u32>(index % width, index / width), 0);
}

// One value, by its index among the padded elements (texel * 4 + lane).
fn element(t: texture_2d<f32>, index: u32, width: u32) -> f32 {
    return texel(t, index / 4u, width)[index % 4u];
}

// Every fragment returns through this: the value rounded to the target's type (out_elem) here,
// to nearest, rather than by however the render target converts what it is given.
fn finish(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(vec4<out_elem>(v));
}

// Zero the lanes past the last real channel, so padding never carries values.
fn mask_lanes(v: vec4<f32>, first_channel: u32, channels: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, vec4<u32>(first_channel) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(channels));
}
