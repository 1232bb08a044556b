// DynamicQuantizeLinear's uint8 scale and zero point from a whole tensor's range, in one workgroup:
// its invocations stride over x keeping min(x, 0) and max(x, 0), combine them through a workgroup
// tree (range.wgsl), and the first writes scale = (max - min) / 255 (1 where the range is 0) and
// zero_point = clamp(round_half_even((0 - min) / scale), 0, 255): the same f32 operations as the
// quantize kernel applies, so the results are the ones the op written out gives. With QUANTIZE (a
// small x: dynamic_quantize) the same workgroup then quantizes x into y as ternary.wgsl's quantize
// (SHIFTED: quantize_shifted) does, from the scale and zero point it has just found. With PARTS, x
// is range_parts.wgsl's p.total pairs (a minimum, a maximum) of a large tensor's parts instead.
// With several workgroups (attr rows), workgroup w does the same for x's w-th p.total values (a
// row), writing scale[w] and zero_point[w]. With WORDS (an LSTM's packed state, fuse_lstm_step.py)
// y holds q - 128 as int8, four values of x to a u32 word (pack4xI8), the zero point then apart.
#include "compute/common.wgsl"
#include "compute/range.wgsl"  // widen(), workgroup_range()

struct Params { total: u32 }

const QUANTIZE: bool = ${quantize};
const SHIFTED: bool = ${shifted};
const PARTS: bool = ${parts};
const WORDS: bool = ${words};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> scale: array<scale_elem>;
@group(0) @binding(3) var<storage, read_write> zero_point: array<zero_point_elem>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;

var<workgroup> found: vec2<f32>;  // (scale, zero point)

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.x;
    let base = row * p.total;
    var range = vec2<f32>(0.0);
    for (var i = lid; i < p.total; i += WG) {
        if (PARTS) {
            range = widen(range, f32(x[2u * i]), f32(x[2u * i + 1u]));
        } else {
            let v = f32(x[base + i]);
            range = widen(range, v, v);
        }
    }
    range = workgroup_range(range, lid);
    let lo = range.x;
    let hi = range.y;
    if (lid == 0u) {
        let spread = hi - lo;
        var s = 1.0;
        if (spread > 0.0) {
            s = spread / 255.0;
        }
        let zero = clamp(round((0.0 - lo) / s), 0.0, 255.0);
        scale[row] = scale_elem(s);
        zero_point[row] = zero_point_elem(zero);
        found = vec2<f32>(f32(scale_elem(s)), zero);
    }
    if (QUANTIZE) {
        workgroupBarrier();
        let s = found.x;
        let zero = found.y;
        if (WORDS) {  // (p.total a multiple of 4: a row is whole words)
            let words = p.total / 4u;
            for (var w = lid; w < words; w += WG) {
                let at = base + 4u * w;
                let v = vec4<f32>(f32(x[at]), f32(x[at + 1u]), f32(x[at + 2u]), f32(x[at + 3u]));
                let q = clamp(round(v / s) + zero, vec4<f32>(0.0), vec4<f32>(255.0));
                y[row * words + w] = y_elem(pack4xI8(vec4<i32>(q) - vec4<i32>(128)));
            }
            return;
        }
        for (var i = base + lid; i < base + p.total; i += WG) {
            let q = clamp(round(f32(x[i]) / s) + zero, 0.0, 255.0);
            if (SHIFTED) {
                y[i] = y_elem(q - zero);
            } else {
                y[i] = y_elem(i32(q));
            }
        }
    }
}
