// The strided kernels' walk over their merged axes (elementwise.wgsl, ternary.wgsl, fused.wgsl):
// the index along axis d of what is left of the flat index *i, innermost axis first, which then
// leaves *i divided by that axis' extent. The including kernel's Params has shape (array<vec4<u32>>).
fn axis_index(i: ptr<function, u32>, d: i32) -> i32 {
    let dim = p.shape[d / 4][d % 4];
    let idx = i32(*i % dim);
    *i = *i / dim;
    return idx;
}
