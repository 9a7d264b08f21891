// The Mamba-2 mixer (declared in mamba_blocks.h).
#include <algorithm>

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
        m.norm = w.require_vector(p + "attn_norm.weight", d);
        // in_proj rows: z [d_inner], xBC [d_inner + 2·n_group·d_state], Δ [n_head].
        const TensorView in = w.require(p + "ssm_in.weight", {d, di + cd + H});
        m.in_z = row_block(in, 0, di);
        m.in_xbc = row_block(in, di, di + cd);
        m.in_dt = row_block(in, di + cd, di + cd + H);
        m.conv_weight = load_floats(w, p + "ssm_conv1d.weight", {hp.d_conv, cd});
        m.conv_bias = w.optional_vector(p + "ssm_conv1d.bias", cd);
        m.dt_bias = w.require_vector(p + "ssm_dt.bias", H);
        m.A = load_floats(w, p + "ssm_a", {1, H});
        m.D = load_floats(w, p + "ssm_d", {1, H});
        m.gate_norm = load_floats(w, p + "ssm_norm.weight", {di / hp.n_group, hp.n_group});
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

void Mamba2Mixer::forward(Backend& backend, const SsmHparams& hp, SequenceState& state, int layer, float* x,
                          int64_t n) const {
    const int64_t d = hp.n_embd, di = hp.d_inner, H = hp.n_head, GN = hp.n_group * hp.d_state;
    const int64_t cd = conv_channels(hp);
    const auto buffer = [](int64_t size) { return std::vector<float>(static_cast<size_t>(size)); };
    std::vector<float> h = buffer(n * d), z = buffer(n * di), xbc = buffer(n * cd), dt = buffer(n * H);
    std::vector<float> conv_out = buffer(n * cd), xs = buffer(n * di), B = buffer(n * GN), C = buffer(n * GN);
    std::vector<float> y = buffer(n * di);
    backend.rmsnorm(x, norm.data(), n, d, hp.rms_eps, h.data());
    backend.matmul(in_z, h.data(), n, z.data());
    backend.matmul(in_xbc, h.data(), n, xbc.data());
    backend.matmul(in_dt, h.data(), n, dt.data());
    backend.add_bias(dt.data(), dt_bias.data(), n, H);

    RecurrentLayer& r = state.recurrent(layer);
    SsmScanParams p;
    p.n_head = H;
    p.head_dim = hp.head_dim;
    p.d_state = hp.d_state;
    p.n_group = hp.n_group;
    for (const ScanSegment& s : scan_segments(n, state.snapshot_tokens(n))) {
        const int64_t t0 = s.begin, m = s.end - s.begin;
        backend.ssm_conv(xbc.data() + t0 * cd, m, cd, conv_weight.data(), hp.d_conv,
                         conv_bias.empty() ? nullptr : conv_bias.data(), r.conv.data(), conv_out.data() + t0 * cd);
        // The scan reads x, B and C as separate matrices.
        for (int64_t t = t0; t < s.end; ++t) {
            const float* row = conv_out.data() + t * cd;
            std::copy_n(row, di, xs.data() + t * di);
            std::copy_n(row + di, GN, B.data() + t * GN);
            std::copy_n(row + di + GN, GN, C.data() + t * GN);
        }
        backend.ssm_scan(xs.data() + t0 * di, dt.data() + t0 * H, A.data(), B.data() + t0 * GN, C.data() + t0 * GN,
                         D.data(), m, p, r.ssm.data(), y.data() + t0 * di);
        if (s.snapshot) state.record_snapshot(layer, state.n_past() + s.end);
    }
    backend.rmsnorm_gated(y.data(), z.data(), gate_norm.data(), n, di, hp.n_group, hp.rms_eps, y.data());
    backend.matmul(out, y.data(), n, h.data());
    backend.add(x, h.data(), n * d);
}

}  // namespace strata
