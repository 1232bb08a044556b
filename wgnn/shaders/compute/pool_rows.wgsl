// Max and average pooling over NHWC, four channels as one vec4, with TX outputs of a row per
// invocation: for windows at most 3 wide, column stride 1 or 2, no column dilation. The TX outputs'
// windows overlap along the row, so the (TX - 1) * stride + width input columns they read are loaded
// once each (7 or 9 loads where pool.wgsl makes 12), and the index arithmetic is done once for all
// TX. The template parameter "body" is that unrolled work for one window row, written out by the
// lowering (WGSL has no compile-time loops, and an array indexed at run time would live in memory
// on a software adapter): loads col0, col1, ... of the row's columns, then each output's window
// state s0, s1, ... (declared by "states") takes its columns; "stores" writes the outputs that
// exist. TX is the lowering's POOL_ROW_TILE. ${mode} is "max" or "avg".
#include "compute/common.wgsl"
#include "pool_window.wgsl"

struct Params {
    batch: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32, kernel_h: u32, kernel_w: u32,
    stride_h: u32, stride_w: u32, dil_h: u32, dil_w: u32,
    pad_top: i32, pad_left: i32, pad_bottom: i32, pad_right: i32,
    count_include_pad: u32, tiles_w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<${x_type}>;
@group(0) @binding(2) var<storage, read_write> y: array<${y_type}>;

#include "compute/pool_ops.wgsl"  // V, Window, init_/add_/finish_ max and avg

const TX: u32 = ${tile}u;

struct Column { v: V, inside: bool }

// The input at column ix of the row starting at `row` (the channels' vec4 already added); outside
// the row, a column that no window state takes in.
fn column(row: u32, ix: i32) -> Column {
    return Column(V(x[row + u32(clamp(ix, 0, i32(p.in_w) - 1)) * p.c]), ix >= 0 && ix < i32(p.in_w));
}
fn take_max(s: Window, col: Column) -> Window { return add_max(s, select(V(-3.402823e38), col.v, col.inside)); }
fn take_avg(s: Window, col: Column) -> Window {
    return Window(s.acc + select(V(0.0), col.v, col.inside), s.count + select(0.0, 1.0, col.inside));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.batch * p.out_h * p.tiles_w * p.c) {
        return;
    }
    let c4 = id % p.c;
    var rest = id / p.c;
    let ox0 = (rest % p.tiles_w) * TX;
    rest = rest / p.tiles_w;
    let oy = rest % p.out_h;
    let n = rest / p.out_h;
    let ix0 = i32(ox0 * p.stride_w) - p.pad_left;

${states}
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        let iy = i32(oy * p.stride_h + kh * p.dil_h) - p.pad_top;
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        let row = (n * p.in_h + u32(iy)) * p.in_w * p.c + c4;
${body}
    }
    let out_row = (n * p.out_h + oy) * p.out_w;
${stores}
}
