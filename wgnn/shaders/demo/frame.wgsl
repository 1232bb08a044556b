// Shared by the demo shaders: the camera frame is an rgba8unorm texture read with textureLoad, and
// bilinear sampling is done here by hand with half-pixel centres (the convention of
// wgnn.mediapipe.resize_bilinear), so the GPU pre-processing equals the numpy reference.

// The frame's colour at continuous pixel coordinates (x, y), edges clamped.
fn frame_bilinear(frame: texture_2d<f32>, xy: vec2<f32>) -> vec3<f32> {
    let size = vec2<f32>(textureDimensions(frame));
    let p = clamp(xy, vec2<f32>(0.0), size - 1.0);
    let p0 = floor(p);
    let f = p - p0;
    let i0 = vec2<u32>(p0);
    let i1 = vec2<u32>(min(p0 + 1.0, size - 1.0));
    let top = mix(textureLoad(frame, i0, 0).rgb, textureLoad(frame, vec2<u32>(i1.x, i0.y), 0).rgb, f.x);
    let bottom = mix(textureLoad(frame, vec2<u32>(i0.x, i1.y), 0).rgb, textureLoad(frame, i1, 0).rgb, f.x);
    return mix(top, bottom, f.y);
}
