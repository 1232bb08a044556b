// An RGB frame as cameras and image files give it (three bytes a pixel, row after row, uploaded as
// they are into a storage buffer) into the frame texture's rgba8unorm pixels, alpha 1: the host then
// copies three quarters of the bytes and converts nothing. An invocation writes four pixels of a row:
// where they start on a word (widths divisible by 4), they are three whole words.
struct Params {
    width: u32,
    height: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rgb: array<u32>;
@group(0) @binding(2) var frame: texture_storage_2d<rgba8unorm, write>;

fn channel(i: u32) -> u32 {
    return (rgb[i / 4u] >> ((i % 4u) * 8u)) & 0xffu;
}

fn texel(r: u32, g: u32, b: u32) -> vec4<f32> {
    return vec4<f32>(f32(r), f32(g), f32(b), 255.0) / 255.0;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x0 = gid.x * 4u;
    let y = gid.y;
    if (x0 >= params.width || y >= params.height) {
        return;
    }
    let start = (y * params.width + x0) * 3u;
    if (params.width % 4u == 0u) {
        let w0 = rgb[start / 4u];
        let w1 = rgb[start / 4u + 1u];
        let w2 = rgb[start / 4u + 2u];
        let row = vec2<i32>(i32(x0), i32(y));
        textureStore(frame, row, texel(w0 & 0xffu, (w0 >> 8u) & 0xffu, (w0 >> 16u) & 0xffu));
        textureStore(frame, row + vec2<i32>(1, 0), texel(w0 >> 24u, w1 & 0xffu, (w1 >> 8u) & 0xffu));
        textureStore(frame, row + vec2<i32>(2, 0), texel((w1 >> 16u) & 0xffu, w1 >> 24u, w2 & 0xffu));
        textureStore(frame, row + vec2<i32>(3, 0), texel((w2 >> 8u) & 0xffu, (w2 >> 16u) & 0xffu, w2 >> 24u));
        return;
    }
    for (var k = 0u; k < 4u && x0 + k < params.width; k++) {
        let i = start + k * 3u;
        textureStore(frame, vec2<i32>(i32(x0 + k), i32(y)), texel(channel(i), channel(i + 1u), channel(i + 2u)));
    }
}
