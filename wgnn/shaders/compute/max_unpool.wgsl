// MaxUnpool in three passes over one claim per output place (STEP): 0 clears the claims, 1 lets
// each input element claim the place its index names (atomicMax: the last in input order wins,
// whatever order the invocations run in), 2 writes each output place from its claimant, or 0.
#include "compute/common.wgsl"

struct Params { total: u32, places: u32 }

const STEP: u32 = ${step};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<x_elem>;
@group(0) @binding(2) var<storage, read_write> indices: array<indices_elem>;
@group(0) @binding(3) var<storage, read_write> claims: array<atomic<i32>>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(wid, lid, nwg);
    if (id >= p.total) {
        return;
    }
    if (STEP == 0u) {
        atomicStore(&claims[id], -1);
    } else if (STEP == 1u) {
        let place = i32(indices[id]);
        if (place >= 0 && u32(place) < p.places) {
            atomicMax(&claims[place], i32(id));
        }
    } else {
        let owner = atomicLoad(&claims[id]);
        y[id] = select(y_elem(0), y_elem(x[max(owner, 0)]), owner >= 0);
    }
}
