// The workgroup-tiled GEMM core of matmul_gemm and conv2d_gemm: C = A x B (batched), each workgroup
// computing a BM x BN block of C. Per step of BK = 16 along K, the workgroup stages A's BM x BK
// block and B's BK x BN block in workgroup memory (each invocation loads a few vec4s), then each
// invocation multiplies its TM rows x TN4 vec4s of columns out of workgroup memory: a value read
// from the buffers serves BN / 4 / TN4 invocations (A) or BM / TM (B) instead of one, and a value
// read from workgroup memory TN4 vec4 products (A) or TM (B). An invocation's columns lie WG_X
// vec4s apart, so that the invocations of a row read neighbouring vec4s of the B tile.
//
// Split-K (SPLITS > 1 in Params.splits): workgroups also divide K; each writes its partial block,
// without the epilogue, to `y` at [split][batch][M][N] (PARTIAL), and splitk_reduce.wgsl adds the
// partials in a fixed order and applies the epilogue, so results do not depend on scheduling.
//
// Arithmetic (math_elem, f32 or f16, the variant gemm or gemm_f16): the workgroup tiles hold
// math_elem and the multiply-adds run in it. In f16 (STEP_SUMS) they go into a per-step partial sum,
// which is added to an f32 running sum after each step of BK = 16 products: an output adds at most
// 16 rounded f16 products before reaching f32. In f32 the products go straight into the running
// sum. The split-K partials and the epilogue are always f32.
//
// The including kernel declares Params (m, k4, n4, m_tiles, n_tiles, batch, splits, k4_per_split,
// alpha, beta, and what its loaders need), the bindings, and how A is read, in three parts so that
// divisions stay out of the K loop (an invocation stages the same rows, at the same column of each
// step, every step):
//   a_origin(batch, row) -> vec4<i32>: where row `row` of A starts (w = 1; row < m only), once;
//   a_column(k4) -> vec4<i32>: where column k4 lies, once per step;
//   load_a(origin, column) -> vec4<math_elem>: A[row][4 k4 .. 4 k4 + 3];
//   load_b(batch, k, col4) -> vec4<math_elem>: B[k][4 col4 .. 4 col4 + 3] (k < 4 k4, col4 < n4 only).
// WG_X invocations along N (TN4 vec4s of columns each), WG / WG_X along M (TM rows each).

const WG_X: u32 = ${wg_x}u;
const WG_Y: u32 = WG / WG_X;
const TM: u32 = ${tile_m}u;
const TN4: u32 = ${tile_n4}u;
const BM: u32 = WG_Y * TM;     // rows per block
const BN4: u32 = WG_X * TN4;   // vec4 columns per block
const BK4: u32 = 4u;           // vec4s of K per step
const PARTIAL: bool = ${partial};
const STEP_SUMS: bool = ${step_sums};
const A_LOADS: u32 = (BM * BK4 + WG - 1u) / WG;  // vec4s of A each invocation stages per step

var<workgroup> a_tile: array<vec4<math_elem>, BM * BK4>;         // [BM][BK4]
var<workgroup> b_tile: array<vec4<math_elem>, BK4 * 4u * BN4>;   // [BK][BN4]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    var block = wid.y * nwg.x + wid.x;  // uniform across the workgroup: the early return is safe
    if (block >= p.batch * p.splits * p.m_tiles * p.n_tiles) {
        return;
    }
    let tile_n = block % p.n_tiles;
    block = block / p.n_tiles;
    let tile_m = block % p.m_tiles;
    block = block / p.m_tiles;
    let split = block % p.splits;
    let bi = block / p.splits;
    let tx = lid % WG_X;
    let ty = lid / WG_X;
    let row0 = tile_m * BM;
    let col0 = tile_n * BN4;
    let k4_begin = split * p.k4_per_split;
    let k4_end = min(k4_begin + p.k4_per_split, p.k4);

    // The rows of A this invocation stages: row0 + (lid + j WG) / BK4, at column lid % BK4 of each step.
    var origins: array<vec4<i32>, A_LOADS>;
    for (var j = 0u; j < A_LOADS; j++) {
        let row = row0 + (lid + j * WG) / BK4;
        if (lid + j * WG < BM * BK4 && row < p.m) {
            origins[j] = a_origin(bi, row);
        }
    }
    // sums[r * TN4 + j]: row ty TM + r, vec4 column tx + j WG_X of the block (per step in f16)
    var sums: array<vec4<math_elem>, TM * TN4>;
    var acc: array<vec4<f32>, TM * TN4>;
    for (var step = k4_begin; step < k4_end; step += BK4) {
        let k4 = step + lid % BK4;
        let column = a_column(k4);
        for (var j = 0u; j < A_LOADS; j++) {
            let i = lid + j * WG;
            if (i < BM * BK4) {
                var v = vec4<math_elem>(0.0);
                if (origins[j].w != 0 && k4 < k4_end) {
                    v = load_a(origins[j], column);
                }
                a_tile[i] = v;
            }
        }
        for (var i = lid; i < BK4 * 4u * BN4; i += WG) {
            let k = step * 4u + i / BN4;
            let col4 = col0 + i % BN4;
            var v = vec4<math_elem>(0.0);
            if (k < k4_end * 4u && col4 < p.n4) {
                v = load_b(bi, k, col4);
            }
            b_tile[i] = v;
        }
        workgroupBarrier();
        if (STEP_SUMS) {
            sums = array<vec4<math_elem>, TM * TN4>();
        }
        for (var kk4 = 0u; kk4 < BK4; kk4++) {
            var bv: array<vec4<math_elem>, 4u * TN4>;  // [K row 4 kk4 + q][the invocation's column j]
            for (var q = 0u; q < 4u; q++) {
                for (var j = 0u; j < TN4; j++) {
                    bv[q * TN4 + j] = b_tile[(kk4 * 4u + q) * BN4 + tx + j * WG_X];
                }
            }
            for (var r = 0u; r < TM; r++) {
                let a = a_tile[(ty * TM + r) * BK4 + kk4];
                for (var j = 0u; j < TN4; j++) {
                    let s = r * TN4 + j;
                    sums[s] = fma(bv[j], vec4<math_elem>(a.x), fma(bv[TN4 + j], vec4<math_elem>(a.y),
                              fma(bv[2u * TN4 + j], vec4<math_elem>(a.z), fma(bv[3u * TN4 + j], vec4<math_elem>(a.w),
                              sums[s]))));
                }
            }
        }
        if (STEP_SUMS) {
            for (var s = 0u; s < TM * TN4; s++) {
                acc[s] += vec4<f32>(sums[s]);
            }
        }
        workgroupBarrier();
    }
    if (!STEP_SUMS) {
        for (var s = 0u; s < TM * TN4; s++) {
            acc[s] = vec4<f32>(sums[s]);
        }
    }

    for (var j = 0u; j < TN4; j++) {
        let col4 = col0 + tx + j * WG_X;
        let channel = channel_at(min(col4, p.n4 - 1u));
        for (var r = 0u; r < TM; r++) {
            let row = row0 + ty * TM + r;
            if (row < p.m && col4 < p.n4) {
                let index = (bi * p.m + row) * p.n4 + col4;
                if (PARTIAL) {
                    y[split * p.batch * p.m * p.n4 + index] = store_y(acc[r * TN4 + j]);
                } else {
                    write_channel(index, channel, acc[r * TN4 + j]);
                }
            }
        }
    }
}
