// Weights as weight-only quantization stores them (ONNX Runtime's MatMulNBits), for the kernels
// that read them packed (matmul_nbits.wgsl, matmul_nbits_shared.wgsl): for each of W's N columns,
// its K values BITS bits each, packed into u32 words from the low bits up, in blocks of BLOCK_WORDS
// words along K; each block of a column has a scale and a zero point, w = (q - zero) * scale. A
// word's values all lie in one block, so one scale and zero point per column serve a word. Declares
// bindings 2 (the words), 7 (scales) and 8 (zero points); the includer declares Params with n4 and
// col_words (a column's words: K padded to whole blocks), and A (binding 1, vec4s) and TILE_M where
// it uses add_word().

const BITS: u32 = ${bits}u;
const GROUPS: u32 = 8u / BITS;  // vec4s of values per word (32 / BITS values)
const BLOCK_WORDS: u32 = ${block_words}u;  // words per block
const MASK: u32 = (1u << BITS) - 1u;
const K_MAJOR: bool = ${k_major};

// Four columns' words at a time: [word][vec4 of columns] (K_MAJOR: invocations that differ in
// column read neighbouring words) or [vec4 of columns][word] (invocations sharing a column do).
@group(0) @binding(2) var<storage, read> q: array<vec4<u32>>;
// [block][vec4 of columns]: the four columns' scales; their zero points, as four bytes of a u32
// (ZERO_BYTES) or as floats
@group(0) @binding(7) var<storage, read> scales: array<vec4<scales_elem>>;
@group(0) @binding(8) var<storage, read> zeros: array<${zero_word}>;

const ZERO_BYTES: bool = ${zero_bytes};

// Value j of four columns' words, dequantized as ONNX Runtime does: (q - zero) * scale.
fn weights(words: vec4<u32>, j: u32, scale: vec4<f32>, zero: vec4<f32>) -> vec4<f32> {
    return (vec4<f32>((words >> vec4<u32>(j * BITS)) & vec4<u32>(MASK)) - zero) * scale;
}

// Word w (K values w * 32 / BITS on) of the vec4 of columns col: the four columns' words.
fn column_words(w: u32, col: u32) -> vec4<u32> {
    if (K_MAJOR) {
        return q[w * p.n4 + col];
    }
    return q[col * p.col_words + w];
}

// The four columns' scales for word w.
fn block_scales(w: u32, col: u32) -> vec4<f32> {
    return vec4<f32>(scales[(w / BLOCK_WORDS) * p.n4 + col]);
}

// The four columns' zero points for word w.
fn block_zeros(w: u32, col: u32) -> vec4<f32> {
    return ${zero_read}(zeros[(w / BLOCK_WORDS) * p.n4 + col]);
}

// Values 4g .. 4g + 3 of four columns' words, dequantized: a matrix whose column j is value
// 4g + j's weights in the four columns, so that the matrix times four values of A is a
// multiply-add per value. (Called in loops over g, not kept in an array: a software adapter keeps
// arrays indexed at run time in memory.)
fn group_weights(words: vec4<u32>, g: u32, scale: vec4<f32>, zero: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(weights(words, 4u * g, scale, zero), weights(words, 4u * g + 1u, scale, zero),
                       weights(words, 4u * g + 2u, scale, zero), weights(words, 4u * g + 3u, scale, zero));
}

// Word w of the vec4 of columns col times A's values at the tile's rows (their first vec4s at
// rows[r]), added to acc[r].
fn add_word(acc: ptr<function, array<vec4<f32>, TILE_M>>, rows: ptr<function, array<u32, TILE_M>>, w: u32,
            col: u32) {
    let words = column_words(w, col);
    let scale = block_scales(w, col);
    let zero = block_zeros(w, col);
    for (var g = 0u; g < GROUPS; g++) {
        let wg = group_weights(words, g, scale, zero);
        for (var r = 0u; r < TILE_M; r++) {
            (*acc)[r] += wg * ${a_read}(a[(*rows)[r] + w * GROUPS + g]);
        }
    }
}
