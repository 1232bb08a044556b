// One step of an LSTM cell after its gates' pre-activations, every hidden unit of every batch row
// in its own invocation: c = f(gf) * c_prev + f(gi) * g(gc), h = f(go) * h(c), the gates side by
// side in each row of `pre` in ONNX's order i, o, f, c. The unrolled layer (wgnn/recurrent.py)
// writes this as four slices, five activations, three products and a sum: one pass here
// (passes/fuse_lstm_cell.py), the update itself in lstm_update.wgsl.
#include "compute/common.wgsl"
#include "compute/lstm_update.wgsl"

struct Params {
    total: u32, hidden: u32, has_c: u32, f_alpha: f32,
    f_beta: f32, g_alpha: f32, g_beta: f32, h_alpha: f32,
    h_beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> pre: array<pre_elem>;
@group(0) @binding(2) var<storage, read_write> c_prev: array<c_prev_elem>;
@group(0) @binding(3) var<storage, read_write> h_out: array<h_out_elem>;
@group(0) @binding(4) var<storage, read_write> c_out: array<c_out_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let j = id % p.hidden;
    let row = (id / p.hidden) * 4u * p.hidden + j;
    let gates = vec4<f32>(f32(pre[row]), f32(pre[row + p.hidden]), f32(pre[row + 2u * p.hidden]),
                          f32(pre[row + 3u * p.hidden]));
    lstm_update(gates, id);
}
