// The Mamba-2 mixer (declared in mamba_blocks.h).
#include "model/mamba_blocks.h"
#include "util/error.h"

namespace strata {

namespace {

int64_t conv_channels(const SsmHparams& hp) { return hp.d_inner + 2 * hp.n_group * hp.d_state; }

}  // namespace

Mamba2Mixer Mamba2Mixer::load(const WeightLoader& w, const std::string& p, const SsmHparams& hp) {
    const int64_t d = hp.n_embd, di = hp.d_inner, H = hp.n_head, cd = conv_channels(hp);
    Mamba2Mixer m;
    try {
        m.norm = w.require_f32(p + "attn_norm.weight", {d});
        m.in = w.require(p + "ssm_in.weight", {d, di + cd + H});
        m.conv_weight = w.require_f32(p + "ssm_conv1d.weight", {hp.d_conv, cd});
        m.conv_bias = w.optional_f32(p + "ssm_conv1d.bias", {cd});
        m.dt_bias = w.require_f32(p + "ssm_dt.bias", {H});
        m.A = w.require_f32(p + "ssm_a", {1, H});
        m.D = w.require_f32(p + "ssm_d", {1, H});
        m.gate_norm = w.require_f32(p + "ssm_norm.weight", {di / hp.n_group, hp.n_group}).reshape(di, 1);
        m.out = w.require(p + "ssm_out.weight", {di, d});
    } catch (const Error& e) {
        fail(e.what(), " (from ", hp.key("ssm.inner_size"), " = ", di, ", state_size = ", hp.d_state,
             ", group_count = ", hp.n_group, ", ", H, " heads, conv_kernel = ", hp.d_conv, ")");
    }
    return m;
}

LayerShape Mamba2Mixer::state_shape(const SsmHparams& hp) {
    LayerShape s;
    s.conv_rows = hp.d_conv - 1;
    s.conv_width = conv_channels(hp);
    s.ssm_size = hp.n_head * hp.head_dim * hp.d_state;
    return s;
}

void Mamba2Mixer::forward(Pass& pass, const SsmHparams& hp, const SequenceState& state, int layer,
                          const Tensor& x) const {
    Backend& be = pass.backend;
    Workspace::Scope scope(pass.ws);
    const int64_t n = pass.n_tokens(), d = hp.n_embd, di = hp.d_inner, H = hp.n_head, GN = hp.n_group * hp.d_state;
    const int64_t cd = conv_channels(hp);
    const Tensor h = pass.ws.f32(d, n), zxbcdt = pass.ws.f32(di + cd + H, n), conv = pass.ws.f32(cd, n);
    const Tensor y = pass.ws.f32(di, n);
    be.rmsnorm(x, norm, hp.rms_eps, h);
    be.matmul(in, h, zxbcdt);
    const Tensor z = zxbcdt.cols(0, di), xbc = zxbcdt.cols(di, di + cd), dt = zxbcdt.cols(di + cd, di + cd + H);
    be.add_bias(dt, dt_bias);
    const RecurrentLayer& r = state.recurrent(layer);
    be.ssm_conv(xbc, conv_weight, conv_bias, r.conv, conv, pass.positions, state.conv_snapshots(layer, n));
    SsmScanParams p;
    p.n_head = H;
    p.head_dim = hp.head_dim;
    p.d_state = hp.d_state;
    p.n_group = hp.n_group;
    // The scan reads x, B and C as column views of the conv output.
    be.ssm_scan(conv.cols(0, di), dt, A, conv.cols(di, di + GN), conv.cols(di + GN, cd), D, p, r.ssm, y,
                pass.positions, state.ssm_snapshots(layer, n));
    be.rmsnorm_gated(y, z, gate_norm, hp.n_group, hp.rms_eps, y);
    be.matmul(out, y, h);
    be.add(x, h);
}

}  // namespace strata
