// Det: one invocation per n x n matrix. Gaussian elimination with partial pivoting on an f32 copy
// of the matrix (work): the determinant is the product of the pivots, its sign flipped per row swap;
// a zero pivot column gives 0.
#include "compute/common.wgsl"

struct Params { total: u32, n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    let n = p.n;
    let base = id * n * n;
    for (var e = 0u; e < n * n; e++) {
        work[base + e] = f32(x[base + e]);
    }
    var det = 1.0;
    for (var k = 0u; k < n; k++) {
        var pivot = k;
        for (var i = k + 1u; i < n; i++) {
            if (abs(work[base + i * n + k]) > abs(work[base + pivot * n + k])) {
                pivot = i;
            }
        }
        let top = work[base + pivot * n + k];
        if (top == 0.0) {
            det = 0.0;
            break;
        }
        if (pivot != k) {
            for (var j = k; j < n; j++) {
                let t = work[base + k * n + j];
                work[base + k * n + j] = work[base + pivot * n + j];
                work[base + pivot * n + j] = t;
            }
            det = -det;
        }
        det *= top;
        for (var i = k + 1u; i < n; i++) {
            let f = work[base + i * n + k] / top;
            for (var j = k + 1u; j < n; j++) {
                work[base + i * n + j] -= f * work[base + k * n + j];
            }
        }
    }
    y[id] = y_elem(det);
}
