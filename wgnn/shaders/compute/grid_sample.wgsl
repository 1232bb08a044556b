// GridSample: output (n, c, [oz,] oy, ox) samples x[n, c] where grid[n, [oz,] oy, ox] = (gx, gy[, gz])
// points, in [-1, 1] across the image (to the corner pixels' centres with ALIGN, else to the
// image's edges), as ONNX defines it: nearest (rounded half to even), linear (2 taps an axis) or
// cubic (4, Keys' A = -0.75); a position past the borders is clamped in (PADDING 1) or reflected
// (2), and a tap outside the image reads 0 (PADDING 0), the edge (1) or its reflection (2). A
// 2-D image is a volume of depth 1 (DIMS 2: no z coordinate in the grid). With PIXELS the grid holds
// pixel coordinates themselves (DeformConv's sampling points), with no rounding of a normalization.
#include "compute/common.wgsl"

struct Params { total: u32, channels: u32, in_d: u32, in_h: u32, in_w: u32, out_d: u32, out_h: u32, out_w: u32 }

const MODE: u32 = ${mode};        // 0 nearest, 1 linear, 2 cubic
const PADDING: u32 = ${padding};  // 0 zeros, 1 border, 2 reflection
const ALIGN: bool = ${align};
const DIMS: u32 = ${dims};        // 2 or 3 spatial axes
const PIXELS: bool = ${pixels};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> grid: array<grid_elem>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

fn low() -> f32 { return select(-0.5, 0.0, ALIGN); }
fn high(size: u32) -> f32 { return select(f32(size) - 0.5, f32(size) - 1.0, ALIGN); }

fn reflect(v: f32, lo: f32, hi: f32) -> f32 {
    let span = hi - lo;
    if (v >= lo && v <= hi) {
        return v;
    }
    let below = v < lo;
    let d = select(v - hi, lo - v, below);
    let n = select(0.0, trunc(d / span), span > 0.0);
    let r = d - n * span;
    let even = (i32(n) % 2) == 0;
    return select(select(lo + r, hi - r, even), select(hi - r, lo + r, even), below);
}

// The image coordinate of grid value g along an axis of `size`, after the padding's clamp or reflection.
fn coordinate(g: f32, size: u32) -> f32 {
    var v = select(((g + 1.0) * f32(size) - 1.0) * 0.5, (g + 1.0) * 0.5 * f32(size - 1u), ALIGN);
    if (PIXELS) {
        v = g;
    }
    if (MODE == 0u) {
        v = round(v);
    }
    let lo = low();
    let hi = high(size);
    if (v < lo || v > hi) {
        if (PADDING == 1u) {
            v = clamp(v, 0.0, f32(size) - 1.0);
        } else if (PADDING == 2u) {
            v = reflect(v, lo, hi);
        }
    }
    return v;
}

// A tap's index along an axis of `size`, and whether it reads the image (zeros padding: not outside).
fn tap(i: i32, size: u32) -> vec2<i32> {
    if (PADDING == 0u) {
        return vec2<i32>(clamp(i, 0, i32(size) - 1), select(0, 1, i >= 0 && i < i32(size)));
    }
    if (PADDING == 1u) {
        return vec2<i32>(clamp(i, 0, i32(size) - 1), 1);
    }
    return vec2<i32>(i32(trunc(reflect(f32(i), low(), high(size)))), 1);
}

fn pixel(base: u32, iz: i32, iy: i32, ix: i32) -> f32 {
    let tz = tap(iz, p.in_d);
    let ty = tap(iy, p.in_h);
    let tx = tap(ix, p.in_w);
    if (tz.y == 0 || ty.y == 0 || tx.y == 0) {
        return 0.0;
    }
    return f32(x[base + (u32(tz.x) * p.in_h + u32(ty.x)) * p.in_w + u32(tx.x)]);
}

// The weights of an axis's taps at fraction t past the first whole position: linear's two, or
// cubic's four (from one before it).
fn weights(t: f32) -> vec4<f32> {
    if (MODE == 1u) {
        return vec4<f32>(1.0 - t, t, 0.0, 0.0);
    }
    let a = -0.75;
    let u = 1.0 - t;
    let f0 = t + 1.0;
    let f1 = 2.0 - t;
    return vec4<f32>(((a * f0 - 5.0 * a) * f0 + 8.0 * a) * f0 - 4.0 * a, ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0,
                     ((a + 2.0) * u - (a + 3.0)) * u * u + 1.0, ((a * f1 - 5.0 * a) * f1 + 8.0 * a) * f1 - 4.0 * a);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let plane = p.out_d * p.out_h * p.out_w;
    let at = id % plane;  // (oz, oy, ox) flat
    let nc = id / plane;
    let n = nc / p.channels;
    let g = (n * plane + at) * DIMS;
    let fx = coordinate(f32(grid[g]), p.in_w);
    let fy = coordinate(f32(grid[g + 1u]), p.in_h);
    var fz = 0.0;
    if (DIMS == 3u) {
        fz = coordinate(f32(grid[g + 2u]), p.in_d);
    }
    let base = nc * p.in_d * p.in_h * p.in_w;
    var value = 0.0;
    if (MODE == 0u) {
        value = pixel(base, i32(trunc(fz)), i32(trunc(fy)), i32(trunc(fx)));
    } else {
        let taps = select(4, 2, MODE == 1u);
        let first = select(-1, 0, MODE == 1u);
        let x0 = floor(fx);
        let y0 = floor(fy);
        let z0 = floor(fz);
        let wx = weights(fx - x0);
        let wy = weights(fy - y0);
        let wz = select(vec4<f32>(1.0, 0.0, 0.0, 0.0), weights(fz - z0), DIMS == 3u);
        let depth = select(1, taps, DIMS == 3u);
        for (var k = 0; k < depth; k++) {
            var plane_sum = 0.0;
            for (var j = 0; j < taps; j++) {
                var row = 0.0;
                for (var i = 0; i < taps; i++) {
                    row += wx[i] * pixel(base, i32(z0) + select(k + first, 0, DIMS == 2u), i32(y0) + j + first,
                                         i32(x0) + i + first);
                }
                plane_sum += wy[j] * row;
            }
            value += wz[k] * plane_sum;
        }
    }
    y[id] = y_elem(value);
}
