// An LSTM cell's state update, shared by lstm_cell.wgsl and lstm_step.wgsl: the gates' activations
// ${f}, ${g} and ${h} (their alpha and beta in the including kernel's Params), applied to a hidden
// unit's four pre-activations in ONNX's order (i, o, f, c): c = f(gf) * c_prev + f(gi) * g(gc)
// (without c_prev where there is none: a first step), h = f(go) * h(c). The including kernel declares
// Params (has_c and the activations' alpha and beta) and the bindings c_prev, c_out and h_out.
#include "activation.wgsl"

fn gate_f(v: f32) -> f32 { return act_${f}(vec4<f32>(v), p.f_alpha, p.f_beta, vec4<f32>(0.0)).x; }
fn gate_g(v: f32) -> f32 { return act_${g}(vec4<f32>(v), p.g_alpha, p.g_beta, vec4<f32>(0.0)).x; }
fn gate_h(v: f32) -> f32 { return act_${h}(vec4<f32>(v), p.h_alpha, p.h_beta, vec4<f32>(0.0)).x; }

// Unit `unit` (of every batch row's units) from its pre-activations `pre`: reads its c_prev where
// p.has_c, writes its c_out and h_out (the including kernel's bindings).
fn lstm_update(pre: vec4<f32>, unit: u32) {
    var c = gate_f(pre.x) * gate_g(pre.w);
    if (p.has_c != 0u) {
        c = gate_f(pre.z) * f32(c_prev[unit]) + c;
    }
    c_out[unit] = c_out_elem(c);
    h_out[unit] = h_out_elem(gate_f(pre.y) * gate_h(c));
}
