// The fragment entry of the shaders that compute each output value on its own: the including
// shader defines lane(e) -> f32, the value at padded element index e (texel * 4 + lane), and this
// draws texel t as its four lanes, rounded to the target's type.

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = out_texel(pos, p.out_width);
    if (t >= p.out_texels) {
        return vec4<f32>(0.0);
    }
    return finish(vec4<f32>(lane(t * 4u), lane(t * 4u + 1u), lane(t * 4u + 2u), lane(t * 4u + 3u)));
}
