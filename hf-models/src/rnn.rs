//! A tanh recurrent network with outputs at chosen time steps.

use burn::module::Param;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use hf_burn::{tensor_from_f64, AffineTaps, Network, Outputs};

use crate::init::{sparse_weights, SPARSE_CONNECTIONS};

mod product;
use crate::rng::SplitMix64;

/// Parameters of [`RnnSpec`]'s network.
#[derive(Module, Debug)]
pub struct TanhRnn<B: Backend> {
    /// Input to hidden, `[inputs, hidden]`.
    pub input: Param<Tensor<B, 2>>,
    /// Hidden to hidden, `[hidden, hidden]`.
    pub recurrent: Param<Tensor<B, 2>>,
    /// Hidden bias.
    pub hidden_bias: Param<Tensor<B, 1>>,
    /// Hidden to output, `[hidden, outputs]`.
    pub output: Param<Tensor<B, 2>>,
    /// Output bias.
    pub output_bias: Param<Tensor<B, 1>>,
    /// Initial hidden state.
    pub initial: Param<Tensor<B, 1>>,
}

/// A tanh RNN `h_t = tanh(x_t W_in + h_{t−1} W_rec + b)`, `z_t = h_t W_out + c`, with
/// outputs at the last `output_steps` time steps (all of them when `output_steps` is at
/// least the sequence length) and its hidden states exposed for
/// structural damping.
///
/// Inputs are `[cases, steps, inputs]`; outputs are case-major rows
/// `[cases · output_steps, outputs]`, hidden states time-major rows `[steps · cases,
/// hidden]` (step `t`'s states are rows `t·cases .. (t+1)·cases`; structural damping
/// does not care about the order, and time-major needs no transposition). A
/// multiplicative RNN would be another [`Network`] over the same data.
///
/// # References
/// - J. Martens and I. Sutskever, "Learning recurrent neural networks with Hessian-free
///   optimization", ICML 2011.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnnSpec {
    /// Input width.
    pub inputs: usize,
    /// Hidden units (100 in the papers).
    pub hidden: usize,
    /// Output width.
    pub outputs: usize,
    /// Outputs are read at the last this many steps.
    pub output_steps: usize,
}

impl RnnSpec {
    /// Martens & Sutskever's sparse initialization as Sutskever's code does it: 15
    /// incoming connections per unit with weights from `N(0, 1/15)` (so that the
    /// recurrent matrix's spectral radius is near 1 by the circular law, and the tanh
    /// units start in their linear range), input-to-hidden weights scaled by `0.25`
    /// more, biases and the initial state zero.
    ///
    /// Unscaled `N(0, 1)` weights would give a spectral radius of about `√15 ≈ 3.9`:
    /// saturated units and exploding linearized dynamics, which HF cannot recover
    /// from on the long-range tasks.
    pub fn sparse_init<B: Backend>(&self, seed: u64, device: &B::Device, dtype: burn::tensor::DType) -> TanhRnn<B> {
        let mut rng = SplitMix64::new(seed);
        let (i, h, o) = (self.inputs, self.hidden, self.outputs);
        let scale = 1.0 / (SPARSE_CONNECTIONS as f64).sqrt();
        let mut matrix = |fan_in: usize, fan_out: usize, scale: f64| {
            let w = sparse_weights(fan_in, fan_out, SPARSE_CONNECTIONS, scale, &mut rng);
            Param::from_tensor(tensor_from_f64(w, [fan_in, fan_out], device, dtype))
        };
        let input = matrix(i, h, 0.25 * scale);
        let recurrent = matrix(h, h, scale);
        let output = matrix(h, o, scale);
        let zeros = |n: usize| Param::from_tensor(tensor_from_f64(vec![0.0; n], [n], device, dtype));
        TanhRnn {
            input,
            recurrent,
            hidden_bias: zeros(h),
            output,
            output_bias: zeros(o),
            initial: zeros(h),
        }
    }
}

impl Network<3> for RnnSpec {
    type Module<B: Backend> = TanhRnn<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> TanhRnn<B> {
        let (i, h, o) = (self.inputs, self.hidden, self.outputs);
        TanhRnn {
            input: Param::from_tensor(Tensor::zeros([i, h], device)),
            recurrent: Param::from_tensor(Tensor::zeros([h, h], device)),
            hidden_bias: Param::from_tensor(Tensor::zeros([h], device)),
            output: Param::from_tensor(Tensor::zeros([h, o], device)),
            output_bias: Param::from_tensor(Tensor::zeros([o], device)),
            initial: Param::from_tensor(Tensor::zeros([h], device)),
        }
    }

    fn forward<B: Backend>(&self, m: &TanhRnn<B>, x: Tensor<B, 3>) -> Outputs<B> {
        self.run(m, x, &mut AffineTaps::off())
    }

    fn forward_with_taps<B: Backend>(
        &self,
        m: &TanhRnn<B>,
        x: Tensor<B, 3>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        Some(self.run(m, x, taps))
    }

    /// The R-operator and back-propagation through time by hand (`hf-models/src/rnn/product.rs`), as
    /// Martens & Sutskever's code computes the product: no autodiff graph and no dual
    /// numbers, used by an evaluator built `with_network_products(true)`. It costs
    /// about what the generic forward mode costs on this network (both are bound by
    /// the same matrix multiplies; a little less without structural damping, a little
    /// more with it: docs/BENCHMARKS.md, "The recurrent Gauss-Newton product against
    /// JAX"), so the default stays forward mode; it agrees with it to rounding.
    fn jvp_then_vjp<B: Backend>(
        &self,
        module: &TanhRnn<B>,
        tangent: &TanhRnn<B>,
        input: Tensor<B, 3>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Option<TanhRnn<B>> {
        Some(product::jvp_then_vjp(self, module, tangent, input, hidden, weight))
    }
}

impl RnnSpec {
    fn run<B: Backend>(&self, m: &TanhRnn<B>, x: Tensor<B, 3>, taps: &mut AffineTaps<B>) -> Outputs<B> {
        let [n, steps, inputs] = x.dims();
        let hidden = self.hidden;
        let k = self.output_steps.clamp(1, steps);
        let mut h = taps.rows(&m.initial, n, n);
        let mut states = Vec::with_capacity(steps);
        for t in 0..steps {
            // The input projection step by step, from slices of the input: slicing a
            // tensor that needs a gradient (one projection of all steps at once) would
            // make burn's backward pass write a zero-padded copy of the whole
            // projection per step, 50 × [cases, steps, hidden] at T = 50.
            let xt = x.clone().slice([0..n, t..t + 1, 0..inputs]).reshape([n, inputs]);
            let projected = taps.affine(xt, &m.input, Some(&m.hidden_bias), n);
            h = (projected + taps.affine(h, &m.recurrent, None, n)).tanh();
            states.push(h.clone());
        }
        // All output steps in one [n·k, hidden] × [hidden, outputs] matmul, their rows
        // case-major as the targets are.
        let out_rows = Tensor::stack::<3>(states[steps - k..].to_vec(), 1).reshape([n * k, hidden]);
        let z = taps.affine(out_rows, &m.output, Some(&m.output_bias), n);
        Outputs {
            z,
            hidden: Some(Tensor::cat(states, 0)),
        }
    }
}
