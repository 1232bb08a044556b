// Direct convolution (groups of 1) over NHWC, as conv2d.wgsl computes it, with the input shared
// across octets of lanes as matmul_shared.wgsl shares A: eight neighbouring lanes of one subgroup
// compute the same TILE_X output pixels of a row for eight neighbouring vec4s of output channels.
// Per input-channel step lane i loads the input of pixels i, i+8, ... (zero in the padding) and
// the octet passes them round, instead of each lane loading all TILE_X. Lanes whose channels are
// past the end still load and share; they only skip the store. On a subgroup size that is not a
// multiple of 8 every lane loads its own pixels. TILE_X is 8 or 16.
//
// Weights are [KH][KW][Cin][Cout] (4 output channels a vec4) in panels (nn._panels): each octet's
// eight vec4s of output channels, all KH * KW * Cin rows of them, together (rows 8 words apart),
// so that the octet reads its weights in order.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()
#include "compute/octet.wgsl"  // madd() and octet_rows()

struct Params {
    batch: u32, in_h: u32, in_w: u32, in_c4: u32,
    out_h: u32, out_w: u32, out_c4: u32, tiles_w: u32,
    c8: u32, kernel_h: u32, kernel_w: u32, stride_h: u32,
    stride_w: u32, dil_h: u32, dil_w: u32, pad_top: i32,
    pad_left: i32, alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    w_panel: u32,  // the weights' words per panel
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

const TILE_X: u32 = ${tile_x}u;
const OCTET_TILE: u32 = TILE_X;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_word}>;
@group(0) @binding(2) var<storage, read> w: array<${w_word}>;

// The input vec4 at row `row` (first pixel of the input row), column ix, channels ci4; zero outside.
fn input(row: u32, ix: i32, ci4: u32) -> vec4<f32> {
    let inside = ix >= 0 && ix < i32(p.in_w);
    return select(vec4<f32>(0.0), ${x_read}(x[(row + u32(max(ix, 0))) * p.in_c4 + ci4]), inside);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_size) sg_size: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32) {
    let id = flat_id(wid, sg * sg_size + sg_lane, nwg);  // numbered by subgroup: octets stay whole
    let octet = id / 8u;
    if (octet >= p.batch * p.out_h * p.tiles_w * p.c8) {
        return;
    }
    let lane = id % 8u;
    let first = sg_lane - lane;
    let c4 = (octet % p.c8) * 8u + lane;
    // this lane's column of its octet's panel (lanes past the end: the last column's, which they
    // read again rather than the panel's padding)
    let wc = min(c4, p.out_c4 - 1u);
    let w_col = (wc / 8u) * p.w_panel + wc % 8u;
    var rest = octet / p.c8;
    let ox0 = (rest % p.tiles_w) * TILE_X;
    rest = rest / p.tiles_w;
    let oy = rest % p.out_h;
    let n = rest / p.out_h;
    let share = octets_share(sg_size);
    let broadcast = octet_is_subgroup(sg_size);

    // Two sets of loops, not one with a branch inside: lavapipe keeps a branch on the subgroup size
    // inside the loop (as in matmul_shared.wgsl).
    var acc: array<vec4<f32>, TILE_X>;
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(oy * p.stride_h + kh * p.dil_h) - p.pad_top;
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;  // the same for the whole octet
        }
        let row = (n * p.in_h + u32(iy)) * p.in_w;
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let ix0 = i32(ox0 * p.stride_w + kw * p.dil_w) - p.pad_left;
            let w_row = (kh * p.kernel_w + kw) * p.in_c4 * 4u;
            if (share) {
                // This lane's pixels (lane and 8 + lane of the tile): their row offsets and whether
                // they lie inside, once per filter tap.
                let ix_a = ix0 + i32(lane * p.stride_w);
                let in_a = ix_a >= 0 && ix_a < i32(p.in_w);
                let xa = (row + u32(max(ix_a, 0))) * p.in_c4;
                let ix_b = ix0 + i32((8u + lane) * p.stride_w);
                let in_b = ix_b >= 0 && ix_b < i32(p.in_w);
                let xb = (row + u32(max(ix_b, 0))) * p.in_c4;
                for (var ci4 = 0u; ci4 < p.in_c4; ci4++) {
                    let wi = w_col + (w_row + ci4 * 4u) * 8u;
                    let w0 = ${w_read}(w[wi]);
                    let w1 = ${w_read}(w[wi + 8u]);
                    let w2 = ${w_read}(w[wi + 16u]);
                    let w3 = ${w_read}(w[wi + 24u]);
                    // Written out per octet of pixels (not a loop): the accumulators' indices stay constants.
                    octet_rows(&acc, 0u, select(vec4<f32>(0.0), ${x_read}(x[xa + ci4]), in_a), w0, w1, w2, w3, first,
                               broadcast);
                    if (TILE_X == 16u) {
                        octet_rows(&acc, 8u, select(vec4<f32>(0.0), ${x_read}(x[xb + ci4]), in_b), w0, w1, w2, w3,
                                   first, broadcast);
                    }
                }
            } else {
                for (var ci4 = 0u; ci4 < p.in_c4; ci4++) {
                    let wi = w_col + (w_row + ci4 * 4u) * 8u;
                    let w0 = ${w_read}(w[wi]);
                    let w1 = ${w_read}(w[wi + 8u]);
                    let w2 = ${w_read}(w[wi + 16u]);
                    let w3 = ${w_read}(w[wi + 24u]);
                    for (var t = 0u; t < TILE_X; t++) {
                        acc[t] = madd(acc[t], input(row, ix0 + i32(t * p.stride_w), ci4), w0, w1, w2, w3);
                    }
                }
            }
        }
    }

    if (c4 < p.out_c4) {
        let first_out = ((n * p.out_h + oy) * p.out_w + ox0) * p.out_c4 + c4;
        let live = min(p.out_w - ox0, TILE_X);
        let c = channel_at(c4);
        write_octet(&acc, 0u, first_out, p.out_c4, live, c);
        if (TILE_X == 16u) {
            write_octet(&acc, 8u, first_out, p.out_c4, live, c);
        }
    }
}
