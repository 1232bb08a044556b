// Shared by the subgroup variant's kernels (matmul_shared.wgsl, conv2d_shared.wgsl): an octet of
// lanes computes the same OCTET_TILE rows (the includer defines it: 8 or 16) for eight different
// vec4 columns, and hands round the rows' values that each lane loaded one of.

// How the octet shares: 0 as the subgroup size allows (the kernels' use); the tests force each
// way on any adapter: 1 shuffles (subgroups of 8 lanes or any multiple), 2 every lane loads its own.
const PATH: u32 = ${path}u;

// Whether the lanes of an octet hand their loads round (else each loads its own rows).
fn octets_share(sg_size: u32) -> bool {
    return (PATH == 0u && sg_size % 8u == 0u) || PATH == 1u;
}

// Whether the subgroup is one octet, so that broadcasts from fixed lanes serve (else shuffles).
fn octet_is_subgroup(sg_size: u32) -> bool {
    return PATH == 0u && sg_size == 8u;
}

fn madd(acc: vec4<f32>, v: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return fma(b0, vec4<f32>(v.x), fma(b1, vec4<f32>(v.y), fma(b2, vec4<f32>(v.z), fma(b3, vec4<f32>(v.w), acc))));
}

// Rows r0 .. r0 + 7 of the tile: `own` is this lane's row of them (A's values, or the input's at
// one pixel), b0..b3 this lane's four vec4s of weights (four of K, four columns).
fn octet_rows(acc: ptr<function, array<vec4<f32>, OCTET_TILE>>, r0: u32, own: vec4<f32>, b0: vec4<f32>,
              b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, first: u32, broadcast: bool) {
    if (broadcast) {  // the octet is the subgroup: broadcasts from fixed lanes
        (*acc)[r0] = madd((*acc)[r0], subgroupBroadcast(own, 0u), b0, b1, b2, b3);
        (*acc)[r0 + 1u] = madd((*acc)[r0 + 1u], subgroupBroadcast(own, 1u), b0, b1, b2, b3);
        (*acc)[r0 + 2u] = madd((*acc)[r0 + 2u], subgroupBroadcast(own, 2u), b0, b1, b2, b3);
        (*acc)[r0 + 3u] = madd((*acc)[r0 + 3u], subgroupBroadcast(own, 3u), b0, b1, b2, b3);
        (*acc)[r0 + 4u] = madd((*acc)[r0 + 4u], subgroupBroadcast(own, 4u), b0, b1, b2, b3);
        (*acc)[r0 + 5u] = madd((*acc)[r0 + 5u], subgroupBroadcast(own, 5u), b0, b1, b2, b3);
        (*acc)[r0 + 6u] = madd((*acc)[r0 + 6u], subgroupBroadcast(own, 6u), b0, b1, b2, b3);
        (*acc)[r0 + 7u] = madd((*acc)[r0 + 7u], subgroupBroadcast(own, 7u), b0, b1, b2, b3);
    } else {
        for (var r = 0u; r < 8u; r++) {
            (*acc)[r0 + r] = madd((*acc)[r0 + r], subgroupShuffle(own, first + r), b0, b1, b2, b3);
        }
    }
}

// The tile's rows r0 .. r0 + 7 through the epilogue's write_channel (c: the channels' constants,
// channel_at's, read once for both octets of a 16-row tile): row r's output vec4 at
// base + r * stride, stored while r < live. Written out row by row (not a loop), as octet_rows is:
// a loop whose body holds a quantized epilogue is left rolled by lavapipe's compiler, so it indexes
// acc at run time, and acc then lives in memory through the whole K loop (measured: twice the time
// of a quantized 1x1 convolution).
fn write_octet(acc: ptr<function, array<vec4<f32>, OCTET_TILE>>, r0: u32, base: u32, stride: u32, live: u32,
               c: Channel) {
    if (r0 < live) { write_channel(base + r0 * stride, c, (*acc)[r0]); }
    if (r0 + 1u < live) { write_channel(base + (r0 + 1u) * stride, c, (*acc)[r0 + 1u]); }
    if (r0 + 2u < live) { write_channel(base + (r0 + 2u) * stride, c, (*acc)[r0 + 2u]); }
    if (r0 + 3u < live) { write_channel(base + (r0 + 3u) * stride, c, (*acc)[r0 + 3u]); }
    if (r0 + 4u < live) { write_channel(base + (r0 + 4u) * stride, c, (*acc)[r0 + 4u]); }
    if (r0 + 5u < live) { write_channel(base + (r0 + 5u) * stride, c, (*acc)[r0 + 5u]); }
    if (r0 + 6u < live) { write_channel(base + (r0 + 6u) * stride, c, (*acc)[r0 + 6u]); }
    if (r0 + 7u < live) { write_channel(base + (r0 + 7u) * stride, c, (*acc)[r0 + 7u]); }
}
