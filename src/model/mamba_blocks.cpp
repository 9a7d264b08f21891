#include "model/mamba_blocks.h"

#include "tensor/ggml_type.h"
#include "util/error.h"

namespace strata {

// ---------------------------------------------------------------------------------------------
// Mamba-1

Mamba1Mixer Mamba1Mixer::load(const WeightLoader& w, const std::string& p, const SsmHparams& hp) {
    const int64_t d = hp.n_embd, di = hp.d_inner, N = hp.d_state, R = hp.dt_rank;
    Mamba1Mixer m;
    try {
        m.norm = w.require_f32(p + "attn_norm.weight", {d});
        m.in = w.require(p + "ssm_in.weight", {d, 2 * di});
        m.conv_weight = w.require_f32(p + "ssm_conv1d.weight", {hp.d_conv, di});
        m.conv_bias = w.optional_f32(p + "ssm_conv1d.bias", {di});
        m.x_proj = w.require(p + "ssm_x.weight", {di, R + 2 * N});
        m.dt_norm = w.optional_f32(p + "ssm_dt_norm.weight", {R});
        if (!m.dt_norm.empty()) {
            m.b_norm = w.require_f32(p + "ssm_b_norm.weight", {N});
            m.c_norm = w.require_f32(p + "ssm_c_norm.weight", {N});
        }
        m.unit_norms = hp.dt_b_c_rms && m.dt_norm.empty();
        m.dt_proj = w.require(p + "ssm_dt.weight", {R, di});
        m.dt_bias = w.require_f32(p + "ssm_dt.bias", {di});
        m.A = w.require_f32(p + "ssm_a", {N, di});
        m.D = w.require_f32(p + "ssm_d", {di});
        m.out = w.require(p + "ssm_out.weight", {di, d});
    } catch (const Error& e) {
        // Shapes follow the metadata, so a mismatch may as well be the keys' fault.
        fail(e.what(), " (from ", hp.key("ssm.inner_size"), " = ", di, ", state_size = ", N, ", time_step_rank = ", R,
             ", conv_kernel = ", hp.d_conv, ")");
    }
    return m;
}

LayerShape Mamba1Mixer::state_shape(const SsmHparams& hp) {
    LayerShape s;
    s.conv_rows = hp.d_conv - 1;
    s.conv_width = hp.d_inner;
    s.ssm_size = hp.d_inner * hp.d_state;
    return s;
}

void Mamba1Mixer::forward(Pass& pass, const SsmHparams& hp, const SequenceState& state, int layer,
                          const Tensor& x) const {
    Backend& be = pass.backend;
    Workspace::Scope scope(pass.ws);
    const int64_t n = pass.n_tokens(), d = hp.n_embd, di = hp.d_inner, N = hp.d_state, R = hp.dt_rank;
    const Tensor h = pass.ws.f32(d, n), xz = pass.ws.f32(2 * di, n), u = pass.ws.f32(di, n);
    const Tensor dbc = pass.ws.f32(R + 2 * N, n), dt = pass.ws.f32(di, n), y = pass.ws.f32(di, n);
    be.rmsnorm(x, norm, hp.rms_eps, h);
    be.matmul(in, h, xz);
    const Tensor x_in = xz.cols(0, di), z = xz.cols(di, 2 * di);
    const RecurrentLayer& r = state.recurrent(layer);
    be.ssm_conv(x_in, conv_weight, conv_bias, r.conv, u, pass.positions, state.conv_snapshots(layer, n));
    be.matmul(x_proj, u, dbc);
    Tensor dt_low = dbc.cols(0, R), B = dbc.cols(R, R + N), C = dbc.cols(R + N, R + 2 * N);
    if (unit_norms || !dt_norm.empty()) {
        // RMS-normalized Δ_low, B and C (Jamba, Falcon-Mamba), each in place.
        be.rmsnorm(dt_low, dt_norm, hp.rms_eps, dt_low);
        be.rmsnorm(B, b_norm, hp.rms_eps, B);
        be.rmsnorm(C, c_norm, hp.rms_eps, C);
    }
    be.matmul(dt_proj, dt_low, dt);
    be.add_bias(dt, dt_bias);
    SsmScanParams p;
    p.n_head = di;
    p.d_state = N;
    p.a_per_state = true;
    be.ssm_scan(u, dt, A, B, C, D, p, r.ssm, y, pass.positions, state.ssm_snapshots(layer, n));
    be.swiglu(z, y, y);  // y ⊙ silu(z)
    be.matmul(out, y, h);
    be.add(x, h);
}

std::string state_size_report(const Model& model) {
    const std::unique_ptr<SequenceState> s = model.new_state(1);
    std::string text = "sequence state: " + std::to_string(s->recurrent_bytes()) +
                       " bytes of recurrent state at every position (the current one and " +
                       std::to_string(s->rollback_depth()) + " rollback snapshots)";
    if (s->bytes_per_position() > 0) {
        text += " + " + std::to_string(s->bytes_per_position()) + " bytes of KV cache per position";
    }
    return text + "\n";
}

}  // namespace strata
