// Strided element-wise kernel: out = activation(op(a, b)) over a RANK-dimensional index space.
// Every operand is addressed by its own per-axis strides (0 broadcasts, negative steps walk
// backwards), so broadcasting arithmetic, standalone activations, layout changes, transposes,
// slices and the pieces of a concat are all this one kernel. Axes are merged on the host first,
// so RANK is usually 1 to 3. With ${lanes} = 4 an invocation computes four neighbours along the
// innermost axis (whose extent the host divided by 4), stepping by that axis' own strides
// (*_step): the index arithmetic is paid once per four elements and the activation runs on a vec4.
// ${calc} is the arithmetic type: f32 (whatever the storage: f32 or f16), or i32 where every
// operand is an integer or bool tensor, u32 where they are uint32 (int_ops.wgsl; no activations
// there). store() narrows what is stored into a small integer type (wrap_none elsewhere).
#include "compute/common.wgsl"
#include "activation.wgsl"
#include "binary_ops.wgsl"
#include "compute/int_ops.wgsl"
#include "compute/strided.wgsl"  // axis_index()

alias calc = ${calc};

struct Params {
    total: u32, out_base: u32, a_base: u32, b_base: u32,
    alpha: f32, beta: f32, out_step: i32, a_step: i32, b_step: i32,
    shape: array<vec4<u32>, 2>,
    out_strides: array<vec4<i32>, 2>,
    a_strides: array<vec4<i32>, 2>,
    b_strides: array<vec4<i32>, 2>,
}

const RANK: i32 = ${rank};
const LANES: i32 = ${lanes};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<a_elem>;
@group(0) @binding(2) var<storage, read_write> b: array<b_elem>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    var i = id;
    var oo = i32(p.out_base);
    var ao = i32(p.a_base);
    var bo = i32(p.b_base);
    for (var d = RANK - 1; d >= 0; d--) {
        let q = d / 4;
        let r = d % 4;
        let idx = axis_index(&i, d);
        oo += idx * p.out_strides[q][r];
        ao += idx * p.a_strides[q][r];
        bo += idx * p.b_strides[q][r];
    }
    var v = vec4<calc>();
    for (var l = 0; l < LANES; l++) {
        v[l] = ${fn}(calc(a[ao + l * p.a_step]), calc(b[bo + l * p.b_step]));
    }
    v = activate_${calc}(v);
    for (var l = 0; l < LANES; l++) {
        y[oo + l * p.out_step] = store(v[l]);
    }
}

fn activate_f32(v: vec4<f32>) -> vec4<f32> { return activate(v, p.alpha, p.beta, vec4<f32>(0.0)); }
fn activate_i32(v: vec4<i32>) -> vec4<i32> { return v; }
fn activate_u32(v: vec4<u32>) -> vec4<u32> { return v; }

fn store(v: calc) -> y_elem {
    return ${store};
}
