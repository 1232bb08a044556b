// An LSTM cell's gates on a hidden unit's four pre-activations in ONNX's order (i, o, f, c): the
// activations ${f}, ${g} and ${h} (their alpha and beta in the including kernel's Params),
// c = f(gf) * c_prev + f(gi) * g(gc) (without c_prev where there is none: a first step), and
// h = f(go) * h(c). Shared by lstm_update.wgsl (lstm_cell.wgsl, lstm_step.wgsl) and lstm_layer.wgsl.
#include "activation.wgsl"

fn gate_f(v: f32) -> f32 { return act_${f}(vec4<f32>(v), p.f_alpha, p.f_beta, vec4<f32>(0.0)).x; }
fn gate_g(v: f32) -> f32 { return act_${g}(vec4<f32>(v), p.g_alpha, p.g_beta, vec4<f32>(0.0)).x; }
fn gate_h(v: f32) -> f32 { return act_${h}(vec4<f32>(v), p.h_alpha, p.h_beta, vec4<f32>(0.0)).x; }

// (c, h) of a unit from its pre-activations and its c_prev (read where has_c).
fn lstm_values(pre: vec4<f32>, c_prev: f32, has_c: bool) -> vec2<f32> {
    var c = gate_f(pre.x) * gate_g(pre.w);
    if (has_c) {
        c = gate_f(pre.z) * c_prev + c;
    }
    return vec2<f32>(c, gate_f(pre.y) * gate_h(c));
}
