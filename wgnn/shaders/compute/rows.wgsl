// The two shapes of a row kernel (softmax.wgsl, layer_norm.wgsl, reduce.wgsl), as the kernel policy
// chose (${per_row}): a workgroup per row, whose invocations stride along it and combine through
// a workgroup tree (reduction.wgsl), or an invocation per row, alone and without barriers. The
// includer returns early where row_of() >= its rows: a workgroup's row is uniform across it, so
// that is safe before its barriers.
#include "compute/reduction.wgsl"

const PER_ROW: bool = ${per_row};

fn row_of(wid: vec3<u32>, lid: u32, nwg: vec3<u32>) -> u32 {
    return ${row};
}

// Where this invocation starts along its row, and its step.
fn row_first(lid: u32) -> u32 {
    return select(lid, 0u, PER_ROW);
}

fn row_step() -> u32 {
    return select(WG, 1u, PER_ROW);
}

// The row's combined value from each invocation's part (in an invocation per row: its own).
fn combined(v: f32, lid: u32, kind: u32) -> f32 {
    return ${combine};
}
