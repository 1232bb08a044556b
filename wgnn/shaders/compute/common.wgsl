// Shared by every kernel. Dispatches are 2-D grids of 64-wide workgroups so that more than
// 65535 workgroups fit; flat_id turns the grid position back into one invocation index.
fn flat_id(wid: vec3<u32>, lid: u32, nwg: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// (n, y, x, channel) of flat index `id` in an NHWC tensor of height h, width w and c channels.
fn nhwc_coords(id: u32, h: u32, w: u32, c: u32) -> vec4<u32> {
    let rest = id / c;
    return vec4<u32>(rest / w / h, (rest / w) % h, rest % w, id % c);
}

// (n, channel, y, x) of flat index `id` in an NCHW tensor of c channels, height h and width w.
fn nchw_coords(id: u32, c: u32, h: u32, w: u32) -> vec4<u32> {
    return vec4<u32>(id / (w * h * c), (id / (w * h)) % c, (id / w) % h, id % w);
}

// Four f16 values read as two u32 words: a kernel may declare an f16 operand array<vec2<u32>>
// (nn.py's _words), so that a software adapter runs half the per-lane loads of vec4<f16>.
fn halves(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

// Four int16 values read as two u32 words, the first in the low half (an exact product's integer
// weights that pass int8's range: nn.py's _int16_weights), sign-extended by arithmetic shifts.
fn unpack_i16(w: vec2<u32>) -> vec4<f32> {
    let v = bitcast<vec2<i32>>(w);
    return vec4<f32>(f32((v.x << 16u) >> 16u), f32(v.x >> 16u), f32((v.y << 16u) >> 16u), f32(v.y >> 16u));
}
