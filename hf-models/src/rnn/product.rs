//! The tanh RNN's curvature products by hand: the R-operator of Pearlmutter (1994)
//! forward through the recurrence, then back-propagation through time, on plain
//! tensors (no autodiff graph, no dual numbers), as Martens & Sutskever's code
//! computes them. [`RnnSpec`]'s [`Network::jvp_then_vjp`](hf_burn::Network::jvp_then_vjp)
//! returns this; the generic forward mode and finite differences check it
//! (`hf_burn::check_curvature`, and `tests/rnn_product.rs`).
//!
//! With `a_t = x_t W_in + b + h_{t−1} W_rec`, `h_t = tanh a_t`, `s_t = 1 − h_t²`:
//! - forward: `R a_t = x_t V_in + v_b + R h_{t−1} W_rec + h_{t−1} V_rec`,
//!   `R h_t = s_t ⊙ R a_t`, `R h_0 = v_{h0}`, `R z = R h W_out + h V_out + v_c` at the
//!   output steps;
//! - backward from the weighted tangents `w_z`, `w_h`: `δh_t = w_{h,t} + w_{z,t} W_outᵀ
//!   + δa_{t+1} W_recᵀ`, `δa_t = s_t ⊙ δh_t`; then every weight's part in one matmul
//!   over all steps (`Xᵀ δA`, `H_{t−1}ᵀ δA`, `H_outᵀ w_z`).
//!
//! Rows run time-major (step `t`'s `n` rows are contiguous, so slicing a step is a
//! view), as the forward pass returns the hidden states; the outputs keep the forward
//! pass's case-major order.
//!
//! # References
//! - B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation, 1994.
//! - J. Martens and I. Sutskever, "Learning recurrent neural networks with Hessian-free
//!   optimization", ICML 2011.

use burn::module::Param;
use burn::prelude::*;

use hf_burn::Outputs;

use super::{RnnSpec, TanhRnn};

/// Case-major `[n, steps, d]` → time-major `[steps · n, d]` rows (one copy).
fn time_major<B: Backend>(t: Tensor<B, 3>) -> Tensor<B, 2> {
    let [n, steps, d] = t.dims();
    t.swap_dims(0, 1).reshape([steps * n, d])
}

/// Time-major step tensors `[n, d]` → case-major `[n · steps, d]` rows (one copy).
fn case_major<B: Backend>(steps: Vec<Tensor<B, 2>>) -> Tensor<B, 2> {
    let [n, d] = steps[0].dims();
    let k = steps.len();
    Tensor::stack::<3>(steps, 1).reshape([n * k, d])
}

/// Rows `t·n .. (t+1)·n` of time-major rows: step `t` (a view).
fn step<B: Backend>(rows: &Tensor<B, 2>, t: usize, n: usize) -> Tensor<B, 2> {
    let d = rows.dims()[1];
    rows.clone().slice([t * n..(t + 1) * n, 0..d])
}

/// `p` repeated as `n` rows.
fn repeated<B: Backend>(p: Tensor<B, 1>, n: usize) -> Tensor<B, 2> {
    p.unsqueeze_dim::<2>(0).repeat_dim(0, n)
}

/// `Jᵀ w(J v)` for `spec`'s network with parameters `m`, tangent `v`, inputs `x`
/// (`[cases, steps, inputs]`): see the module's documentation.
pub(crate) fn jvp_then_vjp<B: Backend>(
    spec: &RnnSpec,
    m: &TanhRnn<B>,
    v: &TanhRnn<B>,
    x: Tensor<B, 3>,
    hidden: bool,
    weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
) -> TanhRnn<B> {
    let [n, steps, _] = x.dims();
    let width = spec.hidden;
    let k = spec.output_steps.clamp(1, steps);
    let (w_rec, v_rec) = (m.recurrent.val(), v.recurrent.val());

    // Everything that does not depend on the previous state, for all steps at once.
    let x_rows = time_major(x);
    let projected = x_rows.clone().matmul(m.input.val()) + m.hidden_bias.val().unsqueeze_dim(0);
    let r_projected = x_rows.clone().matmul(v.input.val()) + v.hidden_bias.val().unsqueeze_dim(0);

    // states[t] = h_t for t = 0..=steps (h_0 the initial state); slopes[t] = s_{t+1}.
    let mut states = Vec::with_capacity(steps + 1);
    let mut slopes = Vec::with_capacity(steps);
    let mut r_states = Vec::with_capacity(steps);
    let mut h = repeated(m.initial.val(), n);
    let mut rh = repeated(v.initial.val(), n);
    states.push(h.clone());
    for t in 0..steps {
        let ra = step(&r_projected, t, n) + rh.matmul(w_rec.clone()) + h.clone().matmul(v_rec.clone());
        h = (step(&projected, t, n) + h.matmul(w_rec.clone())).tanh();
        let s = (h.clone() * h.clone()).neg().add_scalar(1.0);
        rh = ra * s.clone();
        states.push(h.clone());
        slopes.push(s);
        r_states.push(rh.clone());
    }

    // The output steps' states and tangents, case-major as the targets are.
    let out_states = case_major(states[steps + 1 - k..].to_vec());
    let r_out = case_major(r_states[steps - k..].to_vec());
    let (w_out, v_out) = (m.output.val(), v.output.val());
    let rz = r_out.matmul(w_out.clone()) + out_states.clone().matmul(v_out) + v.output_bias.val().unsqueeze_dim(0);
    let w = weight(Outputs {
        z: rz,
        hidden: hidden.then(|| Tensor::cat(r_states, 0)),
    });

    // Back-propagation through time from (w_z, w_h).
    let g_out = w.z.clone().matmul(w_out.transpose());
    let g_out = time_major(g_out.reshape([n, k, width]));
    let w_hidden = w.hidden;
    let w_rec_t = w_rec.transpose();
    let mut deltas: Vec<Tensor<B, 2>> = Vec::with_capacity(steps);
    let mut carried: Option<Tensor<B, 2>> = None;
    for t in (0..steps).rev() {
        let mut g = carried.take();
        let mut add = |term: Tensor<B, 2>| {
            g = Some(match g.take() {
                Some(sum) => sum + term,
                None => term,
            })
        };
        if let Some(wh) = &w_hidden {
            add(step(wh, t, n));
        }
        if t + k >= steps {
            add(step(&g_out, t + k - steps, n));
        }
        let da = g.map_or_else(|| slopes[t].zeros_like(), |g| g * slopes[t].clone());
        carried = Some(da.clone().matmul(w_rec_t.clone()));
        deltas.push(da);
    }
    deltas.reverse();
    let initial = carried.map_or_else(|| v.initial.val().zeros_like(), |g| g.sum_dim(0).reshape([width]));
    let deltas = Tensor::cat(deltas, 0);
    let previous = Tensor::cat(states[..steps].to_vec(), 0);
    let output_bias = w.z.clone().sum_dim(0).reshape([spec.outputs]);
    TanhRnn {
        input: Param::from_tensor(x_rows.transpose().matmul(deltas.clone())),
        recurrent: Param::from_tensor(previous.transpose().matmul(deltas.clone())),
        hidden_bias: Param::from_tensor(deltas.sum_dim(0).reshape([width])),
        output: Param::from_tensor(out_states.transpose().matmul(w.z)),
        output_bias: Param::from_tensor(output_bias),
        initial: Param::from_tensor(initial),
    }
}
