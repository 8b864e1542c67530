//! A tanh recurrent network with outputs at chosen time steps.

use burn::module::Param;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use hf_burn::{tensor_from_f64, Network, Outputs};

use crate::init::{sparse_weights, SPARSE_CONNECTIONS};
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
/// outputs at the last `output_steps` time steps and its hidden states exposed for
/// structural damping.
///
/// Inputs are `[cases, steps, inputs]`; outputs are case-major rows
/// `[cases · output_steps, outputs]`, hidden states `[cases · steps, hidden]`. A
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
    /// Martens & Sutskever's sparse initialization: 15 incoming connections per unit
    /// from `N(0, 1)`, input-to-hidden weights scaled by `0.25`, biases and the initial
    /// state zero.
    pub fn sparse_init<B: Backend>(&self, seed: u64, device: &B::Device, dtype: burn::tensor::DType) -> TanhRnn<B> {
        let mut rng = SplitMix64::new(seed);
        let (i, h, o) = (self.inputs, self.hidden, self.outputs);
        let mut matrix = |fan_in: usize, fan_out: usize, scale: f64| {
            let w = sparse_weights(fan_in, fan_out, SPARSE_CONNECTIONS, scale, &mut rng);
            Param::from_tensor(tensor_from_f64(w, [fan_in, fan_out], device, dtype))
        };
        let input = matrix(i, h, 0.25);
        let recurrent = matrix(h, h, 1.0);
        let output = matrix(h, o, 1.0);
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
        let [n, steps, inputs] = x.dims();
        let k = self.output_steps.clamp(1, steps);
        // All input projections in one matmul: [n·steps, inputs] × [inputs, hidden].
        let projected = x
            .reshape([n * steps, inputs])
            .matmul(m.input.val())
            .reshape([n, steps, self.hidden]);
        let bias = m.hidden_bias.val().unsqueeze_dim::<2>(0);
        let mut h = m.initial.val().unsqueeze_dim::<2>(0).repeat_dim(0, n);
        let mut states = Vec::with_capacity(steps);
        for t in 0..steps {
            let xt = projected
                .clone()
                .slice([0..n, t..t + 1, 0..self.hidden])
                .reshape([n, self.hidden]);
            h = (xt + h.matmul(m.recurrent.val()) + bias.clone()).tanh();
            states.push(h.clone());
        }
        let last: Vec<Tensor<B, 2>> = states[steps - k..].to_vec();
        let out_rows = Tensor::stack::<3>(last, 1).reshape([n * k, self.hidden]);
        let z = out_rows.matmul(m.output.val()) + m.output_bias.val().unsqueeze_dim(0);
        let hidden = Tensor::stack::<3>(states, 1).reshape([n * steps, self.hidden]);
        Outputs {
            z,
            hidden: Some(hidden),
        }
    }
}
