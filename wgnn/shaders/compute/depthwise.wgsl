// Depthwise convolution (one filter per channel) over NHWC, four channels per vec4.
// One invocation computes TILE_X neighbouring outputs of each of p.strip consecutive output rows
// (a strip). It walks the input rows under the strip once, top to bottom, STRIDE_H rows a step:
// each row's input columns under the tile ((TILE_X - 1) * STRIDE_W + (KW - 1) * DIL_W + 1) are
// loaded once into registers and added, with every filter row that covers them, to each output
// row still open (NF at a time, NF = ceil(filter span / STRIDE_H)); the oldest is then complete
// and stored, and the others move up a slot. A 3x3 stride-1 filter thus loads each input row once
// for the strip instead of three times, and each column once for TILE_X outputs (6 columns for 4
// outputs, not 12). The code per tap (weights, slots, steps, finish) is written out by the
// lowering (nn.py: _depthwise_code), every register named, so that a software adapter holds them
// as values rather than as an array it indexes lane by lane. Every output sums its taps in filter
// order (rows, then columns), whatever the strip and tile.
// Weights are packed [KH][KW][C]. In fp16 sessions f16 operands are read as u32 words (halves()).
// A quantized convolution may read its input's integers as they are stored (one per element, or
// packed four to a word: unpack_u8/unpack_i8) and subtract their zero point X_ZERO as it loads
// them; padding stays 0, which is x_zero in that shifted domain.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    batch: u32, in_h: u32, in_w: u32, c4: u32,
    out_h: u32, out_w: u32, tiles_w: u32, strip: u32,  // output rows per invocation
    strips: u32, steps: u32, pad_top: i32, pad_left: i32,  // steps: p.strip + NF - 1
    alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
}

const TILE_X: u32 = ${tile_x}u;
const STRIDE_W: u32 = ${stride_w}u;
const STRIDE_H: u32 = ${stride_h}u;
const X_ZERO: f32 = ${x_zero};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_word}>;
@group(0) @binding(2) var<storage, read> w: array<${w_word}>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.strips * p.tiles_w * p.c4) {
        return;
    }
    let c4 = id % p.c4;
    var rest = id / p.c4;
    let ox0 = (rest % p.tiles_w) * TILE_X;
    rest = rest / p.tiles_w;
    let oy0 = (rest % p.strips) * p.strip;
    let n = rest / p.strips;
    let ix0 = i32(ox0 * STRIDE_W) - p.pad_left;
    let iy0 = i32(oy0 * STRIDE_H) - p.pad_top;

${weights}
${slots}
    let channel = channel_at(c4);  // the epilogue's constants, read once (epilogue.wgsl)
    // step g: input rows iy0 + g * STRIDE_H + phase; slot i holds output row oy0 + g - i
    for (var g = 0u; g < p.steps; g++) {
${steps}
${finish}
    }
}

// The output's vec4 at (n, oy, ox) and channels c4 (their constants: channel), where that lies
// inside the output.
fn store_at(n: u32, oy: u32, ox: u32, c4: u32, channel: Channel, acc: vec4<f32>) {
    if (oy < p.out_h && ox < p.out_w) {
        write_channel(((n * p.out_h + oy) * p.out_w + ox) * p.c4 + c4, channel, acc);
    }
}

// The input's vec4 at column ix of the row that starts at pixel row, channels c4: 0 outside the
// row (padding).
fn x_at(row: u32, ix: i32, c4: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), ${x_read}(x[(row + u32(max(ix, 0))) * p.c4 + c4]) - X_ZERO,
                  ix >= 0 && ix < i32(p.in_w));
}
