//! Deep autoencoders (Hinton & Salakhutdinov 2006; Martens 2010).

use burn::module::Param;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use hf_burn::{logistic, tensor_from_f64, AffineTaps, Loss, Network, Outputs};

use crate::init::{sparse_weights, SPARSE_CONNECTIONS};
use crate::rng::SplitMix64;

/// A stack of dense layers: one weight matrix `[fan_in, fan_out]` and one bias per layer.
#[derive(Module, Debug)]
pub struct DenseStack<B: Backend> {
    /// Weights, first layer first.
    pub weights: Vec<Param<Tensor<B, 2>>>,
    /// Biases, first layer first.
    pub biases: Vec<Param<Tensor<B, 1>>>,
}

impl<B: Backend> DenseStack<B> {
    /// Zero weights and biases for consecutive `sizes`.
    pub fn zeros(sizes: &[usize], device: &B::Device) -> Self {
        Self {
            weights: sizes
                .windows(2)
                .map(|w| Param::from_tensor(Tensor::zeros([w[0], w[1]], device)))
                .collect(),
            biases: sizes
                .windows(2)
                .map(|w| Param::from_tensor(Tensor::zeros([w[1]], device)))
                .collect(),
        }
    }

    /// Martens' sparse initialization for consecutive `sizes`: every unit gets 15
    /// non-zero incoming weights from `N(0, 1)`, biases are zero. Built on the host in
    /// `f64` and stored in `dtype`.
    pub fn sparse(sizes: &[usize], seed: u64, device: &B::Device, dtype: burn::tensor::DType) -> Self {
        let mut rng = SplitMix64::new(seed);
        Self {
            weights: sizes
                .windows(2)
                .map(|w| {
                    let values = sparse_weights(w[0], w[1], SPARSE_CONNECTIONS, 1.0, &mut rng);
                    Param::from_tensor(tensor_from_f64(values, [w[0], w[1]], device, dtype))
                })
                .collect(),
            biases: sizes
                .windows(2)
                .map(|w| Param::from_tensor(tensor_from_f64(vec![0.0; w[1]], [w[1]], device, dtype)))
                .collect(),
        }
    }

    /// `h W_i + b_i` for layer `i` (matmul and add: differentiable twice), reported
    /// to `taps` (one row per case).
    pub fn affine(&self, i: usize, h: Tensor<B, 2>, taps: &mut AffineTaps<B>) -> Tensor<B, 2> {
        let cases = h.dims()[0];
        taps.affine(h, &self.weights[i], Some(&self.biases[i]), cases)
    }
}

/// The output units and loss of an autoencoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoencoderOutput {
    /// Logistic outputs with cross-entropy (CURVES, MNIST).
    Logistic,
    /// Linear outputs with squared error (FACES).
    Linear,
}

/// A mirrored deep autoencoder: logistic hidden units, a linear code layer.
///
/// `encoder` lists the layer sizes from the input to the code; the decoder mirrors it.
///
/// # References
/// - G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality of data with
///   neural networks", Science 313, 2006.
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoencoderSpec {
    /// Sizes from the input to the code layer, e.g. `[784, 1000, 500, 250, 30]`.
    pub encoder: Vec<usize>,
    /// Output units and loss.
    pub output: AutoencoderOutput,
}

impl AutoencoderSpec {
    /// CURVES: 784-400-200-100-50-25-6, mirrored, logistic outputs.
    pub fn curves() -> Self {
        Self {
            encoder: vec![784, 400, 200, 100, 50, 25, 6],
            output: AutoencoderOutput::Logistic,
        }
    }

    /// MNIST: 784-1000-500-250-30, mirrored, logistic outputs.
    pub fn mnist() -> Self {
        Self {
            encoder: vec![784, 1000, 500, 250, 30],
            output: AutoencoderOutput::Logistic,
        }
    }

    /// FACES: 625-2000-1000-500-30, mirrored, linear outputs.
    pub fn faces() -> Self {
        Self {
            encoder: vec![625, 2000, 1000, 500, 30],
            output: AutoencoderOutput::Linear,
        }
    }

    /// All layer sizes, input to output.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = self.encoder.clone();
        s.extend(self.encoder.iter().rev().skip(1));
        s
    }

    /// The matching loss of the outputs.
    pub fn loss(&self) -> Loss {
        match self.output {
            AutoencoderOutput::Logistic => Loss::LogisticCrossEntropy,
            AutoencoderOutput::Linear => Loss::SquaredError,
        }
    }

    /// Parameters with Martens' sparse initialization.
    pub fn sparse_init<B: Backend>(&self, seed: u64, device: &B::Device, dtype: burn::tensor::DType) -> DenseStack<B> {
        DenseStack::sparse(&self.sizes(), seed, device, dtype)
    }
}

impl Network<2> for AutoencoderSpec {
    type Module<B: Backend> = DenseStack<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> DenseStack<B> {
        DenseStack::zeros(&self.sizes(), device)
    }

    fn forward<B: Backend>(&self, m: &DenseStack<B>, x: Tensor<B, 2>) -> Outputs<B> {
        self.run(m, x, &mut AffineTaps::off())
    }

    fn forward_with_taps<B: Backend>(
        &self,
        m: &DenseStack<B>,
        x: Tensor<B, 2>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        Some(self.run(m, x, taps))
    }
}

impl AutoencoderSpec {
    fn run<B: Backend>(&self, m: &DenseStack<B>, x: Tensor<B, 2>, taps: &mut AffineTaps<B>) -> Outputs<B> {
        let code = self.encoder.len() - 2;
        let last = m.weights.len() - 1;
        let mut h = x;
        for i in 0..m.weights.len() {
            let z = m.affine(i, h, taps);
            // The code layer and the output layer are linear here; the loss applies the
            // output nonlinearity.
            h = if i == code || i == last { z } else { logistic(z) };
        }
        Outputs::new(h)
    }
}

/// The paper's error measure: the squared reconstruction error `Σ_j (y_j − t_j)²` per
/// case, averaged over cases, for predictions `y` (after the output nonlinearity).
pub fn reconstruction_error<B: Backend>(predictions: Tensor<B, 2>, targets: Tensor<B, 2>) -> f64 {
    let n = predictions.dims()[0] as f64;
    hf_burn::scalar((predictions - targets).square().sum()) / n
}
