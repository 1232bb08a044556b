// Winograd F(2x2, 3x3) output transform (see ops/winograd.py): one invocation reads the 16
// products of one tile, four channels at once, forms the 2x2 output block A^T M A and stores each
// pixel inside the output through the convolution's fused epilogue.
//
// With acc4 = vec4<i32> (a quantized convolution's integer sums, passes/winograd.py:
// exact_in_f32): the products are exact multiples of 1/4 in f32; A^T M A runs on 4 M in i32, exact
// in any order, and the block, four times the convolution's sums, is divided by 4 exactly before it
// goes to f32.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

alias acc4 = ${acc4};  // vec4<i32> for integer sums, else vec4<f32>

struct Params {
    batch: u32, out_h: u32, out_w: u32, c4: u32,
    tiles_h: u32, tiles_w: u32, alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> m: array<vec4<m_elem>>;
// Binding 2 is a convolution's filter slot, unused here: the filter went into the products.
@group(0) @binding(2) var<storage, read> unused: array<vec4<unused_elem>>;

// A^T applied to four rows (or columns).
fn at(m0: acc4, m1: acc4, m2: acc4, m3: acc4) -> array<acc4, 2> {
    return array<acc4, 2>(m0 + m1 + m2, m1 - m2 - m3);
}

fn m_at(i: u32) -> acc4 {
    return acc4(vec4<f32>(m[i]) * f32(${unit}));  // (${unit}: 4 with i32, else 1)
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    let tiles = p.batch * p.tiles_h * p.tiles_w;
    if (id >= tiles * p.c4) {
        return;
    }
    let tile = nhwc_coords(id, p.tiles_h, p.tiles_w, p.c4);  // (n, tile row, tile column, c4)
    let n = tile.x;
    let ty = tile.y;
    let tx = tile.z;
    let c4 = tile.w;
    let t = id / p.c4;

    let stride = 4u * tiles * p.c4;  // from one row of the 4x4 products to the next
    var cols: array<array<acc4, 2>, 4>;  // (A^T M)[row][column], stored by column
    for (var j = 0u; j < 4u; j++) {
        let base = (j * tiles + t) * p.c4 + c4;
        cols[j] = at(m_at(base), m_at(base + stride), m_at(base + 2u * stride), m_at(base + 3u * stride));
    }
    for (var i = 0u; i < 2u; i++) {
        let oy = ty * 2u + i;
        let out = at(cols[0][i], cols[1][i], cols[2][i], cols[3][i]);
        for (var j = 0u; j < 2u; j++) {
            let ox = tx * 2u + j;
            if (oy < p.out_h && ox < p.out_w) {
                write_output(((n * p.out_h + oy) * p.out_w + ox) * p.c4 + c4, c4, vec4<f32>(out[j] / acc4(${unit})));
            }
        }
    }
}
