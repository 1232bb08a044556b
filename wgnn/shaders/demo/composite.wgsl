// The demo's picture, drawn as one full-screen triangle into the window (or an offscreen texture):
// the frame fitted into the target, the background blurred or replaced where the person mask is
// low (selfie), and the statistics overlay in the top-left corner (boxes and keypoints follow in
// the same pass, drawn by marks.wgsl). Everything it reads is already on the GPU: the frame texture, the segmentation model's
// output buffer, the blurred frame, the background and overlay textures.
#include "demo/frame.wgsl"

struct Params {
    mask_w: u32,
    mask_h: u32,
    small_w: u32,
    small_h: u32,
    mode: u32,  // 0: frame only, 1: blur the background, 2: replace it
    overlay: u32,  // 1: draw the overlay texture
    scale: f32,  // target pixels per frame pixel
    offset_x: f32,
    offset_y: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var frame: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> blurred: array<vec4<f32>>;
@group(0) @binding(4) var background: texture_2d<f32>;
@group(0) @binding(5) var overlay: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    return vec4<f32>(f32((i << 1u) & 2u) * 2.0 - 1.0, f32(i & 2u) * 2.0 - 1.0, 0.0, 1.0);
}

// The four neighbours of continuous coordinates `xy` (half-pixel) in a row-major `w` x `h` grid,
// edges clamped: their indices (top-left, top-right, bottom-left, bottom-right) and the weights.
struct Taps {
    index: vec4<u32>,
    f: vec2<f32>,
}

fn taps(xy: vec2<f32>, w: u32, h: u32) -> Taps {
    let p = clamp(xy, vec2<f32>(0.0), vec2<f32>(f32(w), f32(h)) - 1.0);
    let p0 = floor(p);
    let x0 = u32(p0.x);
    let y0 = u32(p0.y);
    let x1 = min(x0 + 1u, w - 1u);
    let y1 = min(y0 + 1u, h - 1u);
    return Taps(vec4<u32>(y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1), p - p0);
}

fn mask_at(xy: vec2<f32>) -> f32 {
    let t = taps(xy, params.mask_w, params.mask_h);
    let top = mix(mask[t.index.x], mask[t.index.y], t.f.x);
    let bottom = mix(mask[t.index.z], mask[t.index.w], t.f.x);
    return clamp(mix(top, bottom, t.f.y), 0.0, 1.0);
}

fn blurred_at(xy: vec2<f32>) -> vec3<f32> {
    let t = taps(xy, params.small_w, params.small_h);
    let top = mix(blurred[t.index.x], blurred[t.index.y], t.f.x);
    let bottom = mix(blurred[t.index.z], blurred[t.index.w], t.f.x);
    return mix(top, bottom, t.f.y).rgb;
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let target_px = pos.xy;
    let fsize = vec2<f32>(textureDimensions(frame));
    let p = (target_px - vec2<f32>(params.offset_x, params.offset_y)) / params.scale;  // frame pixels
    if (any(p < vec2<f32>(0.0)) || any(p >= fsize)) {
        return vec4<f32>(0.0, 0.0, 0.0, 1.0);
    }
    var rgb: vec3<f32>;
    if (params.scale == 1.0) {
        rgb = textureLoad(frame, vec2<u32>(p), 0).rgb;
    } else {
        rgb = frame_bilinear(frame, p - 0.5);
    }
    if (params.mode != 0u) {
        let m = mask_at((p * vec2<f32>(f32(params.mask_w), f32(params.mask_h)) / fsize) - 0.5);
        var back: vec3<f32>;
        if (params.mode == 1u) {
            back = blurred_at(p / 4.0 - 0.5);
        } else {
            let bsize = vec2<f32>(textureDimensions(background));
            back = textureLoad(background, vec2<u32>(min(p * bsize / fsize, bsize - 1.0)), 0).rgb;
        }
        rgb = mix(back, rgb, m);
    }
    if (params.overlay == 1u) {
        let osize = textureDimensions(overlay);
        let o = vec2<u32>(target_px);
        if (all(o < osize)) {
            let texel = textureLoad(overlay, o, 0);
            rgb = mix(rgb, texel.rgb, texel.a);
        }
    }
    return vec4<f32>(rgb, 1.0);
}
