// An LSTM cell's state update, shared by lstm_cell.wgsl and lstm_step.wgsl: lstm_gates.wgsl's
// values of a hidden unit, read from and written to the including kernel's bindings. The including
// kernel declares Params (has_c and the activations' alpha and beta) and the bindings c_prev, c_out
// and h_out.
#include "compute/lstm_gates.wgsl"

// Unit `unit` (of every batch row's units) from its pre-activations `pre`: reads its c_prev where
// p.has_c, writes its c_out and h_out.
fn lstm_update(pre: vec4<f32>, unit: u32) {
    var c_prev_value = 0.0;
    if (p.has_c != 0u) {
        c_prev_value = f32(c_prev[unit]);
    }
    let v = lstm_values(pre, c_prev_value, p.has_c != 0u);
    c_out[unit] = c_out_elem(v.x);
    h_out[unit] = h_out_elem(v.y);
}
