//! Where a network uses its parameters, reported during a forward pass, so that the
//! squared per-case gradients of a whole batch come from one backward pass.
//!
//! A dense weight `W` used as `y = a W` has the per-case gradient `g_i = a_iᵀ δ_i`,
//! with `δ_i = ∂L_i/∂y_i`; so `Σ_i g_i ⊙ g_i = (a ⊙ a)ᵀ (δ ⊙ δ)`, one matmul of the
//! cost of the weight's gradient. A weight shared over time steps (an RNN) has
//! `g_i = Σ_t a_{i,t}ᵀ δ_{i,t}`, a batched matmul over cases. `δ` is read from the
//! gradient of a zero "probe" added to each tapped output: it changes no value and
//! costs one addition. This is how Martens' squared-gradient diagonal costs about
//! one gradient instead of one backward pass per case.
//!
//! A network opts in by implementing [`Network::forward_with_taps`] with its layers
//! computed through [`AffineTaps`]; without it, the estimator falls back to one
//! backward pass per case.
//!
//! [`Network::forward_with_taps`]: crate::Network::forward_with_taps

use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::prelude::*;

/// One use of a parameter: the rows it produced, grouped by case.
#[derive(Debug, Clone)]
pub(crate) struct Site<B: Backend> {
    /// The weight `W` of `a W` (absent for a broadcast vector alone).
    pub weight: Option<ParamId>,
    /// A vector added to every row (a bias, an initial state).
    pub offset: Option<ParamId>,
    /// `a`, `[cases · k, fan_in]`, case-major (present with `weight`).
    pub input: Option<Tensor<B, 2>>,
    /// The zero probe added to the output, `[cases · k, fan_out]`; its gradient is `δ`.
    pub probe: Tensor<B, 2>,
    /// Cases the rows belong to (`k = rows / cases` consecutive rows each).
    pub cases: usize,
}

/// The recorder passed to [`Network::forward_with_taps`](crate::Network::forward_with_taps).
///
/// Compute every use of a trainable parameter through one of its methods: an affine
/// map `a W + b` ([`affine`](Self::affine), [`linear`](Self::linear)) or a vector
/// repeated over rows ([`rows`](Self::rows)). When not recording, they are exactly the
/// plain computation, so a network can run its ordinary forward pass through the same
/// code with [`AffineTaps::off`].
///
/// Rows must be case-major: rows `i·k .. (i+1)·k` of a call with `cases` cases belong
/// to case `i`, as in [`DataBatch`](crate::DataBatch)'s targets.
///
/// # Example
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use hf_burn::AffineTaps;
///
/// let device = Default::default();
/// let layer = LinearConfig::new(3, 2).init::<NdArray<f64>>(&device);
/// let x = Tensor::<NdArray<f64>, 2>::ones([4, 3], &device);
/// let plain = AffineTaps::off().linear(&layer, x.clone());
/// plain.into_data().assert_approx_eq::<f64>(&hf_burn::nn::linear(&layer, x).into_data(), Default::default());
/// ```
#[derive(Debug)]
pub struct AffineTaps<B: Backend> {
    recording: bool,
    sites: Vec<Site<B>>,
}

impl<B: Backend> AffineTaps<B> {
    /// A recorder that records nothing: every method is the plain computation.
    pub fn off() -> Self {
        Self {
            recording: false,
            sites: Vec::new(),
        }
    }

    /// A recorder that records every call.
    pub(crate) fn recording() -> Self {
        Self {
            recording: true,
            sites: Vec::new(),
        }
    }

    /// Whether calls are being recorded.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    pub(crate) fn into_sites(self) -> Vec<Site<B>> {
        self.sites
    }

    fn probe(&self, y: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let probe = y.zeros_like().detach().require_grad();
        (y + probe.clone(), probe)
    }

    /// `a W + b` for `a` of `[cases · k, fan_in]` rows, `W` of `[fan_in, fan_out]`, `b`
    /// of `[fan_out]`.
    pub fn affine(
        &mut self,
        a: Tensor<B, 2>,
        weight: &Param<Tensor<B, 2>>,
        bias: Option<&Param<Tensor<B, 1>>>,
        cases: usize,
    ) -> Tensor<B, 2> {
        let mut y = a.clone().matmul(weight.val());
        if let Some(b) = bias {
            y = y + b.val().unsqueeze_dim(0);
        }
        if !self.recording {
            return y;
        }
        let (y, probe) = self.probe(y);
        self.sites.push(Site {
            weight: Some(weight.id),
            offset: bias.map(|b| b.id),
            input: Some(a.detach()),
            probe,
            cases,
        });
        y
    }

    /// burn's [`Linear`] (row layout, weight `[d_input, d_output]`) on `[cases, d_input]`
    /// rows: one row per case.
    pub fn linear(&mut self, layer: &Linear<B>, a: Tensor<B, 2>) -> Tensor<B, 2> {
        let cases = a.dims()[0];
        self.affine(a, &layer.weight, layer.bias.as_ref(), cases)
    }

    /// The vector `p` repeated as `rows` rows (an initial state, a bias added on its
    /// own), `rows` a multiple of `cases`.
    pub fn rows(&mut self, p: &Param<Tensor<B, 1>>, rows: usize, cases: usize) -> Tensor<B, 2> {
        let y = p.val().unsqueeze_dim::<2>(0).repeat_dim(0, rows);
        if !self.recording {
            return y;
        }
        let (y, probe) = self.probe(y);
        self.sites.push(Site {
            weight: None,
            offset: Some(p.id),
            input: None,
            probe,
            cases,
        });
        y
    }
}
