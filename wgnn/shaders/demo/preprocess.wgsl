// Camera frame -> a model's (1, H, W, 3) float input, on the GPU: the frame is resized (bilinear,
// half-pixel centres) into the rectangle [left, left + rw) x [top, top + rh) of the input, which
// either keeps the aspect ratio with a border (letterbox) or covers the whole input (stretch);
// values are mapped from [0, 1] to [lo, hi]; the border gets lo.
#include "demo/frame.wgsl"

struct Params {
    out_h: u32,
    out_w: u32,
    top: u32,
    left: u32,
    rh: u32,
    rw: u32,
    lo: f32,
    hi: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var frame: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= params.out_w || y >= params.out_h) {
        return;
    }
    var rgb = vec3<f32>(0.0);
    let inside = x >= params.left && x < params.left + params.rw && y >= params.top && y < params.top + params.rh;
    if (inside) {
        let size = vec2<f32>(textureDimensions(frame));
        let scale = size / vec2<f32>(f32(params.rw), f32(params.rh));
        let xy = (vec2<f32>(f32(x - params.left), f32(y - params.top)) + 0.5) * scale - 0.5;
        rgb = frame_bilinear(frame, xy);
    }
    let value = rgb * (params.hi - params.lo) + params.lo;
    let base = (y * params.out_w + x) * 3u;
    dst[base] = value.r;
    dst[base + 1u] = value.g;
    dst[base + 2u] = value.b;
}
