// A fused chain of float element-wise ops (passes/fuse_elementwise.py): each invocation reads its
// element of every input (x0 .. x${last}, each from its first element through its own per-axis
// strides: 0 broadcasts; a slice is read inside the sliced tensor), runs the chain's steps on them
// in registers and stores the last step's result. As in
// elementwise.wgsl the axes are merged on the host and, with LANES = 4, an invocation takes four
// neighbours along the innermost axis (each operand stepping by its *step*): the steps then run on
// vec4s. The chain's numbers (its constants and activation parameters) are uniforms (p.k), so one
// pipeline serves every chain of the same form. Arithmetic in f32 whatever the storage.
#include "compute/common.wgsl"
#include "activation.wgsl"
#include "binary_ops.wgsl"
#include "compute/strided.wgsl"  // axis_index()

struct Params {
    total: u32, out_step: i32,
    shape: array<vec4<u32>, 2>,
    out_strides: array<vec4<i32>, 2>,
    steps: array<vec4<i32>, 2>,      // input k's step between lanes: [k / 4][k % 4]
    bases: array<vec4<i32>, 2>,      // input k's first element (a slice read inside its tensor)
    strides: array<vec4<i32>, 12>,   // input k's strides: [2 k] and [2 k + 1]
    k: array<vec4<f32>, 4>,          // the chain's numbers
}

const RANK: i32 = ${rank};
const LANES: i32 = ${lanes};

@group(0) @binding(0) var<uniform> p: Params;
${inputs}
@group(0) @binding(${out_binding}) var<storage, read_write> y: array<y_elem>;

// The chain's binary kinds on vec4s (binary_ops.wgsl's scalar functions, lane by lane).
${functions}

fn number(i: u32) -> vec4<f32> {
    return vec4<f32>(p.k[i / 4u][i % 4u]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var i = id;
    var oo = 0;
    ${offsets_init}
    for (var d = RANK - 1; d >= 0; d--) {
        let q = d / 4;
        let r = d % 4;
        let idx = axis_index(&i, d);
        oo += idx * p.out_strides[q][r];
        ${offsets}
    }
    ${loads}
    ${program}
    for (var l = 0; l < LANES; l++) {
        y[oo + l * p.out_step] = y_elem(${result}[l]);
    }
}
