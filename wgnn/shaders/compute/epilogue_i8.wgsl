// The epilogue of the packed-int8 convolution (conv2d_i8.wgsl) and of its split-K reduction
// (splitk_i8.wgsl): from a vec4 of integer sums (without the bias) to what the node writes.
// Declares bindings 3 to 6. MODE 0 writes the sums plus the bias as floats (the conv2d node alone);
// 1 to 5 requantize them (requantize4 in requantize.wgsl, its table in the multiplier binding). y
// and the residual are vec4s of their element type, or quantized and packed, a u32 per four
// channels (the templates y_store and residual_load convert). y may be a slice of a larger tensor
// (y_slice.wgsl); the residual is read at the output's own index.
#include "compute/requantize.wgsl"
#include "compute/y_slice.wgsl"

const MODE: u32 = ${mode_id}u;
const HAS_RESIDUAL: bool = ${has_residual};

@group(0) @binding(3) var<storage, read> bias: array<vec4<i32>>;
@group(0) @binding(4) var<storage, read> multiplier: array<vec4<multiplier_elem>>;
@group(0) @binding(5) var<storage, read_write> y: array<${y_type}>;
@group(0) @binding(6) var<storage, read_write> residual: array<${residual_type}>;

// What the epilogue reads for one vec4 of channels (col4): the bias and the table's multipliers,
// then its ends (channels_at); a lane that writes several rows of the same channels reads them once.
struct Channels {
    bias: vec4<i32>, multiplier: vec4<f32>, ends: vec4<f32>, tail: vec4<f32>, bounds: vec4<f32>,
}

fn channels_at(col4: u32) -> Channels {
    var c: Channels;
    c.bias = bias[col4];
    if (MODE != 0u) {
        let n = arrayLength(&multiplier) - 3u;
        c.multiplier = vec4<f32>(multiplier[col4]);
        c.ends = vec4<f32>(multiplier[n]);
        c.tail = vec4<f32>(multiplier[n + 1u]);
        c.bounds = vec4<f32>(multiplier[n + 2u]);
    }
    return c;
}

fn write_sums(index: u32, c: Channels, acc: vec4<i32>) {
    let sums = vec4<f32>(acc + c.bias);
    if (MODE == 0u) {
        y[y_index(index)] = ${y_store}(sums);
        return;
    }
    var r = vec4<f32>(0.0);
    if (MODE >= 4u && HAS_RESIDUAL) {
        r = ${residual_load}(residual[index]);
    }
    y[y_index(index)] = ${y_store}(requantize4(MODE, sums, c.multiplier, c.ends, c.tail, c.bounds, r));
}
