// Matrix-vector product y[N] = x[K] . B[K, N] (+ bias, + residual, activation) for a single row,
// such as a classifier's last layer: one workgroup per four outputs (a vec4), its invocations
// striding along K, then a workgroup tree reduction. B is packed transposed, [N][K], so that
// neighbouring invocations read neighbouring memory. Needs K and N divisible by 4. A quantized
// product's integer weights are packed a byte each, four of K to a u32 (${bt_read} = unpack_i8):
// a quarter of the bytes this memory-bound kernel reads.
#include "compute/common.wgsl"
#include "compute/epilogue.wgsl"  // bindings 3-6 (bias, residual, slope, y) and write_output()

struct Params {
    k4: u32, n4: u32, alpha: f32, beta: f32,
    y_row4: u32, y_pitch4: u32, y_offset4: u32, r_out4: u32, r_row4: u32, r_pitch4: u32,
    r_offset4: u32, post_scale: f32, post_shift: f32,  // y a slice, the residual a window, the affine (epilogue.wgsl)
    ${factor_field}  // factor_scale: f32, with a run-time factor (epilogue.wgsl)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<vec4<a_elem>>;
@group(0) @binding(2) var<storage, read> bt: array<${bt_word}>;

var<workgroup> sums: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let col4 = wid.y * nwg.x + wid.x;  // uniform across the workgroup: the early return is safe
    if (col4 >= p.n4) {
        return;
    }
    let row0 = col4 * 4u * p.k4;
    var acc = vec4<f32>(0.0);
    for (var k4 = lid; k4 < p.k4; k4 += WG) {
        let v = vec4<f32>(a[k4]);
        acc += vec4<f32>(dot(v, ${bt_read}(bt[row0 + k4])), dot(v, ${bt_read}(bt[row0 + p.k4 + k4])),
                         dot(v, ${bt_read}(bt[row0 + 2u * p.k4 + k4])), dot(v, ${bt_read}(bt[row0 + 3u * p.k4 + k4])));
    }
    sums[lid] = acc;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step = step / 2u) {
        if (lid < step) {
            sums[lid] += sums[lid + step];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        write_output(col4, col4, sums[0]);
    }
}
