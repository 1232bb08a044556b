// A whole dynamically quantized LSTM layer (passes/lstm_layers.py): workgroup d runs direction d
// through every step, its state and cell state in workgroup memory, the steps apart by barriers.
// A step is what the dispatches it replaces compute, the same f32 operations in the same order:
// the state's quantization (dynamic_range.wgsl with WORDS: its range, scale and zero point, then
// q - 128 packed four to a word), and lstm_step.wgsl's integer sums over R^T (exact in f32, in any
// order), made sums over q - zero, dequantized, the input projection added, then the cell
// (lstm_gates.wgsl); the first step, without an initial state (INITIAL), is lstm_cell.wgsl's on the
// projection alone. State and cell state are rounded to the type the steps stored them in (y's and
// c_out's), so the next step reads what it read from memory before.
//
// A dispatch runs steps first .. first + count - 1: a long sequence is several dispatches on an
// adapter that cuts long loops short (``lstm_layer_chunk``, policy.py). A later one (first > 0)
// starts where the one before left: step first - 1's state from y, its cell state from c_out
// (which each dispatch writes at its last step), the values the workgroup held, rounded as it
// rounded them.
//
// r holds per direction R^T's words as lstm_step.wgsl's R_WORDS layout (r[k * hidden + j]: unit
// j's four gates at row k, int8 each), read here as vec4<u32>: four neighbouring units a load, an
// invocation computing their sixteen sums. Then the bias, the weights' scales and R^T's column sums
// as rows of f32 bits (a unit's four gates a vec4), then the initial cell state c0 (batch, hidden).
#include "compute/common.wgsl"
#include "compute/lstm_gates.wgsl"
#include "compute/range.wgsl"  // widen(), workgroup_range()

struct Params {
    hidden: u32, batch: u32, steps: u32, dirs: u32,
    whole: u32, forward: u32, has_c0: u32, block: u32,
    f_alpha: f32, f_beta: f32, g_alpha: f32, g_beta: f32,
    h_alpha: f32, h_beta: f32, first: u32, count: u32,
}

const MAX_STATE: u32 = ${max_state}u;  // batch * hidden
const MAX_ROWS: u32 = ${max_rows}u;
// CACHED (a software adapter; 512 units at most, four an invocation): each invocation copies its
// four units' column of R^T into a private array once, before the steps. A software adapter runs
// a load from a storage buffer lane by lane (Mesa 22's lavapipe: a loop over the lanes, each
// bounds checked), but a private array at an index every lane shares as one vector load: rawi-v2's
// layers about 0.65x the time (Mesa 22 and 25).
const CACHED: bool = ${cached};
const KEPT: u32 = ${kept}u;  // R^T's rows with CACHED, else 1
// INITIAL (a layer of one direction whose first step had an initial hidden state, h0, and cell
// state c0 where p.has_c0): the first step quantizes h0 and computes the product as every other;
// else the first is lstm_cell.wgsl's on the projection alone, c0 (where p.has_c0) a constant after r
const INITIAL: bool = ${initial};
// PARTS invocations share each block of four units' K (every PARTS-th four rows of R^T), their
// partial sums added in workgroup memory (a GPU's: a step's product then waits on a quarter of the
// loads one after another); 1: an invocation walks a block's K alone (a software adapter, whose
// barriers cost). SPAN blocks are computed at a time.
const PARTS: u32 = ${parts}u;
const SPAN: u32 = WG / PARTS;
const PARTIAL: u32 = ${partial}u;  // WG where PARTS > 1, else 1

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> p0: array<p0_elem>;
@group(0) @binding(2) var<storage, read_write> p1: array<p1_elem>;
@group(0) @binding(3) var<storage, read> r: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> y: array<y_elem>;
@group(0) @binding(5) var<storage, read_write> c_out: array<c_out_elem>;
@group(0) @binding(6) var<storage, read_write> h0: array<h0_elem>;
@group(0) @binding(7) var<storage, read_write> c0: array<c0_elem>;

var<workgroup> state: array<f32, MAX_STATE>;  // h as stored
var<workgroup> words: array<u32, MAX_STATE / 4u>;  // its q - 128, packed
var<workgroup> cells: array<f32, MAX_STATE>;  // c as stored
var<workgroup> partial: array<array<vec4<f32>, 4>, PARTIAL>;
var<private> scales: array<vec2<f32>, MAX_ROWS>;  // (scale, zero point) of the state, per row (or one)

// The projection of direction d, batch row `row`, unit j at time t: its four gates
fn proj(d: u32, t: u32, row: u32, j: u32) -> vec4<f32> {
    let at = (t * p.batch + row) * 4u * p.hidden + j;
    let h = p.hidden;
    if (d == 0u) {
        return vec4<f32>(f32(p0[at]), f32(p0[at + h]), f32(p0[at + 2u * h]), f32(p0[at + 3u * h]));
    }
    return vec4<f32>(f32(p1[at]), f32(p1[at + h]), f32(p1[at + 2u * h]), f32(p1[at + 3u * h]));
}

// Row `tail` after R^T (0: bias, 1: the weights' scales, 2: column sums) of unit j, direction base `base`
fn tail(base: u32, tail: u32, j: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(r[base + p.hidden * p.hidden / 4u + tail * p.hidden + j]);
}

// The range of state[first .. first + count) over the workgroup (every invocation gets it)
fn state_range(first: u32, count: u32, lid: u32) -> vec2<f32> {
    var range = vec2<f32>(0.0);
    for (var i = lid; i < count; i += WG) {
        let v = state[first + i];
        range = widen(range, v, v);
    }
    return workgroup_range(range, lid);
}

// The state's quantization for the next step, as dynamic_range.wgsl's (WORDS): its range, scale
// and zero point (in scales), then its words
fn quantize_state(lid: u32) {
    let rows = select(p.batch, 1u, p.whole != 0u);
    let width = select(p.hidden, p.batch * p.hidden, p.whole != 0u);
    for (var row = 0u; row < rows; row++) {
        let range = state_range(row * width, width, lid);
        let spread = range.y - range.x;
        var scale = 1.0;
        if (spread > 0.0) {
            scale = spread / 255.0;
        }
        let zero = clamp(round((0.0 - range.x) / scale), 0.0, 255.0);
        scales[row] = vec2<f32>(scale, zero);
        for (var w = lid; w < width / 4u; w += WG) {
            let at = row * width + 4u * w;
            let v = vec4<f32>(state[at], state[at + 1u], state[at + 2u], state[at + 3u]);
            let qv = clamp(round(v / scale) + zero, vec4<f32>(0.0), vec4<f32>(255.0));
            words[at / 4u] = pack4xI8(vec4<i32>(qv) - vec4<i32>(128));
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let d = wid.x;
    let base = d * p.block;  // (vec4s)
    let forward = ((p.forward >> d) & 1u) != 0u;
    let has_c0 = ((p.has_c0 >> d) & 1u) != 0u;
    let h = p.hidden;
    let blocks = h / 4u;
    let total = p.batch * h;
    var kept: array<vec4<u32>, KEPT>;
    if (CACHED && lid < blocks) {  // (CACHED: one block of units an invocation, lid's)
        for (var k = 0u; k < h; k++) {
            kept[k] = r[base + k * blocks + lid];
        }
    }
    // The initial states as the first step reads them (a later dispatch's: where the one before left)
    let resume = p.first > 0u;
    let before = select(p.steps - p.first, p.first - 1u, forward);  // (step first - 1's time, where resume)
    for (var i = lid; i < total; i += WG) {
        var c = 0.0;
        if (resume) {
            c = f32(c_out[d * total + i]);
            state[i] = f32(y[(before * p.dirs + d) * total + i]);
        } else if (has_c0 && INITIAL) {
            c = f32(c0[i]);
        } else if (has_c0) {
            c = bitcast<f32>(r[base + blocks * h + 3u * h + i / 4u][i % 4u]);
        }
        cells[i] = c;
        if (INITIAL && !resume) {
            state[i] = f32(h0[i]);
        }
    }
    workgroupBarrier();
    if (INITIAL || resume) {
        quantize_state(lid);
    }
    let last = p.first + p.count - 1u;
    for (var s = p.first; s <= last; s++) {
        let t = select(p.steps - 1u - s, s, forward);
        let product = INITIAL || s > 0u;
        for (var row = 0u; row < p.batch; row++) {
            let q = scales[select(row, 0u, p.whole != 0u)];
            for (var first = 0u; first < blocks; first += SPAN) {  // (the same passes for every invocation)
                let jb = first + lid % SPAN;
                let valid = jb < blocks;
                let part = select(lid / SPAN, 0u, PARTS == 1u);
                var sums: array<vec4<f32>, 4>;  // units 4 jb .. 4 jb + 3, four gates each
                if (product) {
                    var a0 = vec4<f32>(0.0);
                    var a1 = vec4<f32>(0.0);
                    var a2 = vec4<f32>(0.0);
                    var a3 = vec4<f32>(0.0);
                    for (var k4 = part; valid && k4 < blocks; k4 += PARTS) {
                        let hv = vec4<f32>(unpack4xI8(words[row * blocks + k4]));
                        let at = base + k4 * 4u * blocks + jb;
                        for (var i = 0u; i < 4u; i++) {
                            var w: vec4<u32>;
                            if (CACHED) {
                                w = kept[k4 * 4u + i];
                            } else {
                                w = r[at + i * blocks];
                            }
                            let hk = hv[i];
                            a0 += hk * vec4<f32>(unpack4xI8(w.x));
                            a1 += hk * vec4<f32>(unpack4xI8(w.y));
                            a2 += hk * vec4<f32>(unpack4xI8(w.z));
                            a3 += hk * vec4<f32>(unpack4xI8(w.w));
                        }
                    }
                    sums[0] = a0;
                    sums[1] = a1;
                    sums[2] = a2;
                    sums[3] = a3;
                    if (PARTS > 1u) {  // (integer sums: exact in any order)
                        partial[lid] = sums;
                        workgroupBarrier();
                        if (part == 0u) {
                            for (var other = lid + SPAN; other < WG; other += SPAN) {
                                sums[0] += partial[other][0];
                                sums[1] += partial[other][1];
                                sums[2] += partial[other][2];
                                sums[3] += partial[other][3];
                            }
                        }
                        workgroupBarrier();
                    }
                }
                for (var u = 0u; valid && part == 0u && u < 4u; u++) {  // (the block's first part finishes)
                    let j = jb * 4u + u;
                    var pre = proj(d, t, row, j);
                    if (product) {  // lstm_step.wgsl's finish()
                        var acc = sums[u];
                        acc += (128.0 - q.y) * tail(base, 2u, j);
                        acc = acc * (q.x * tail(base, 1u, j));
                        pre = acc + tail(base, 0u, j) + pre;
                    }
                    let v = lstm_values(pre, cells[row * h + j], has_c0 || s > 0u);
                    let stored = vec2<f32>(f32(c_out_elem(v.x)), f32(y_elem(v.y)));
                    cells[row * h + j] = stored.x;
                    state[row * h + j] = stored.y;
                    y[((t * p.dirs + d) * p.batch + row) * h + j] = y_elem(v.y);
                    if (s == last) {
                        c_out[(d * p.batch + row) * h + j] = c_out_elem(v.x);
                    }
                }
            }
        }
        if (s == last) {
            break;
        }
        workgroupBarrier();
        quantize_state(lid);
    }
}
