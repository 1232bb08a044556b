// Background blur for the selfie demo, at a quarter of the frame's resolution: pass "down" averages
// each 4x4 block of the frame into `small`; passes "x" and "y" then apply a box filter of
// 2 * radius + 1 taps along one axis (two box passes of each axis approximate a Gaussian well
// enough for a blurred background, and cost 4 * (2r + 1) reads per pixel rather than (2r + 1)^2).
#include "demo/frame.wgsl"

struct Params {
    width: u32,
    height: u32,
    radius: u32,
    step_x: u32,  // 1 for the x pass, 0 for the y pass
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var frame: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= params.width || y >= params.height) {
        return;
    }
    var sum = vec4<f32>(0.0);
    if (${down}) {
        let fsize = textureDimensions(frame);
        for (var dy = 0u; dy < 4u; dy++) {
            for (var dx = 0u; dx < 4u; dx++) {
                let p = min(vec2<u32>(x * 4u + dx, y * 4u + dy), fsize - 1u);
                sum += vec4<f32>(textureLoad(frame, p, 0).rgb, 1.0);
            }
        }
        dst[y * params.width + x] = sum / 16.0;
        return;
    }
    let r = i32(params.radius);
    for (var k = -r; k <= r; k++) {
        let sx = clamp(i32(x) + k * i32(params.step_x), 0, i32(params.width) - 1);
        let sy = clamp(i32(y) + k * i32(1u - params.step_x), 0, i32(params.height) - 1);
        sum += src[u32(sy) * params.width + u32(sx)];
    }
    dst[y * params.width + x] = sum / f32(2 * r + 1);
}
