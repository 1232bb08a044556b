// What the pooling kernels (pool.wgsl, pool_rows.wgsl) share: the window's running state and how
// a value enters it, for ${mode} = "max" or "avg"; V is vec4<f32> or f32 (${v_type}), U its bits.
alias V = ${v_type};
alias U = ${u_type};  // V's bits

struct Window { acc: V, count: f32 }

fn init_max() -> Window { return Window(V(-3.402823e38), 0.0); }
fn init_avg() -> Window { return Window(V(0.0), 0.0); }
fn add_max(s: Window, v: V) -> Window {  // NaN (by its bits) propagates, as in ONNX Runtime
    let nan = ((bitcast<U>(s.acc) & U(0x7fffffffu)) > U(0x7f800000u)) | ((bitcast<U>(v) & U(0x7fffffffu)) > U(0x7f800000u));
    return Window(select(max(s.acc, v), s.acc + v, nan), 1.0);
}
fn add_avg(s: Window, v: V) -> Window { return Window(s.acc + v, s.count + 1.0); }
// Two windows' states as one (pool_global.wgsl's partial windows)
fn merge_max(a: Window, b: Window) -> Window { return add_max(a, b.acc); }
fn merge_avg(a: Window, b: Window) -> Window { return Window(a.acc + b.acc, a.count + b.count); }
fn finish_max(s: Window, padded_count: f32) -> V { return s.acc; }
fn finish_avg(s: Window, padded_count: f32) -> V {
    return s.acc / select(s.count, padded_count, p.count_include_pad != 0u);
}
