#include "model/mamba_blocks.h"

#include "tensor/ggml_type.h"
#include "util/error.h"

namespace strata {

std::vector<ScanSegment> scan_segments(int64_t n, int64_t k) {
    std::vector<ScanSegment> s;
    if (n > k) s.push_back({0, n - k, false});
    for (int64_t t = n - k; t < n; ++t) s.push_back({t, t + 1, true});
    return s;
}

std::vector<float> load_floats(const WeightLoader& w, const std::string& name, std::initializer_list<int64_t> shape) {
    const TensorView t = w.require(name, shape);
    const TypeTraits& tt = type_traits(t.type);
    if (!tt.to_float) fail(w.file().path(), ": tensor '", name, "' has type ", tt.name, ", which strata cannot read");
    std::vector<float> out(static_cast<size_t>(t.n_elements()));
    tt.to_float(t.data, out.data(), t.n_elements());
    return out;
}

TensorView row_block(const TensorView& t, int64_t begin, int64_t end) {
    TensorView b = t;
    b.ne[1] = end - begin;
    b.data = t.row(begin);
    b.nbytes = t.row_bytes() * static_cast<size_t>(end - begin);
    return b;
}

// ---------------------------------------------------------------------------------------------
// Mamba-1

Mamba1Mixer Mamba1Mixer::load(const WeightLoader& w, const std::string& p, const SsmHparams& hp) {
    const int64_t d = hp.n_embd, di = hp.d_inner, N = hp.d_state, R = hp.dt_rank;
    Mamba1Mixer m;
    try {
        m.norm = w.require_vector(p + "attn_norm.weight", d);
        const TensorView in = w.require(p + "ssm_in.weight", {d, 2 * di});
        m.in_x = row_block(in, 0, di);
        m.in_z = row_block(in, di, 2 * di);
        m.conv_weight = load_floats(w, p + "ssm_conv1d.weight", {hp.d_conv, di});
        m.conv_bias = w.optional_vector(p + "ssm_conv1d.bias", di);
        const TensorView xp = w.require(p + "ssm_x.weight", {di, R + 2 * N});
        m.x_dt = row_block(xp, 0, R);
        m.x_b = row_block(xp, R, R + N);
        m.x_c = row_block(xp, R + N, R + 2 * N);
        m.dt_norm = w.optional_vector(p + "ssm_dt_norm.weight", R);
        if (!m.dt_norm.empty()) {
            m.b_norm = w.require_vector(p + "ssm_b_norm.weight", N);
            m.c_norm = w.require_vector(p + "ssm_c_norm.weight", N);
        }
        m.unit_norms = hp.dt_b_c_rms && m.dt_norm.empty();
        m.dt_proj = w.require(p + "ssm_dt.weight", {R, di});
        m.dt_bias = w.require_vector(p + "ssm_dt.bias", di);
        m.A = load_floats(w, p + "ssm_a", {N, di});
        m.D = w.require_vector(p + "ssm_d", di);
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

void Mamba1Mixer::forward(Backend& backend, const SsmHparams& hp, SequenceState& state, int layer, float* x,
                          int64_t n) const {
    const int64_t d = hp.n_embd, di = hp.d_inner, N = hp.d_state, R = hp.dt_rank;
    const auto buffer = [](int64_t size) { return std::vector<float>(static_cast<size_t>(size)); };
    std::vector<float> h = buffer(n * d), x_in = buffer(n * di), z = buffer(n * di), u = buffer(n * di);
    std::vector<float> dt_low = buffer(n * R), B = buffer(n * N), C = buffer(n * N), dt = buffer(n * di);
    std::vector<float> y = buffer(n * di), raw = buffer(n * std::max(R, N));
    backend.rmsnorm(x, norm.data(), n, d, hp.rms_eps, h.data());
    backend.matmul(in_x, h.data(), n, x_in.data());
    backend.matmul(in_z, h.data(), n, z.data());

    RecurrentLayer& r = state.recurrent(layer);
    SsmScanParams p;
    p.n_head = di;
    p.d_state = N;
    p.a_per_state = true;
    const bool norms = unit_norms || !dt_norm.empty();
    // Projects u to Δ_low, B or C, RMS-normalized where the model does so (Jamba, Falcon-Mamba).
    auto project = [&](const TensorView& wt, const std::vector<float>& weight, const float* in, int64_t m,
                       int64_t width, float* dst) {
        if (!norms) {
            backend.matmul(wt, in, m, dst);
        } else {
            backend.matmul(wt, in, m, raw.data());
            backend.rmsnorm(raw.data(), weight.empty() ? nullptr : weight.data(), m, width, hp.rms_eps, dst);
        }
    };
    for (const ScanSegment& s : scan_segments(n, state.snapshot_tokens(n))) {
        const int64_t t0 = s.begin, m = s.end - s.begin;
        float* ut = u.data() + t0 * di;
        float* dtt = dt.data() + t0 * di;
        backend.ssm_conv(x_in.data() + t0 * di, m, di, conv_weight.data(), hp.d_conv,
                         conv_bias.empty() ? nullptr : conv_bias.data(), r.conv.data(), ut);
        project(x_dt, dt_norm, ut, m, R, dt_low.data() + t0 * R);
        project(x_b, b_norm, ut, m, N, B.data() + t0 * N);
        project(x_c, c_norm, ut, m, N, C.data() + t0 * N);
        backend.matmul(dt_proj, dt_low.data() + t0 * R, m, dtt);
        backend.add_bias(dtt, dt_bias.data(), m, di);
        backend.ssm_scan(ut, dtt, A.data(), B.data() + t0 * N, C.data() + t0 * N, D.data(), m, p, r.ssm.data(),
                         y.data() + t0 * di);
        if (s.snapshot) state.record_snapshot(layer, state.n_past() + s.end);
    }
    backend.swiglu(z.data(), y.data(), n * di, y.data());  // y ⊙ silu(z)
    backend.matmul(out, y.data(), n, h.data());
    backend.add(x, h.data(), n * d);
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

// ---------------------------------------------------------------------------------------------
// Output head

}  // namespace strata
