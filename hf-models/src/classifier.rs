//! A feed-forward classifier with softmax outputs, for MNIST-style data.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use hf_burn::{logistic, AffineTaps, Loss, Network, Outputs};

use crate::autoencoder::DenseStack;

/// Hidden-unit nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `tanh`.
    Tanh,
    /// The logistic function.
    Logistic,
}

/// Dense layers with `activation` hidden units and softmax cross-entropy outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifierSpec {
    /// Sizes from the input to the classes, e.g. `[784, 500, 10]`.
    pub sizes: Vec<usize>,
    /// Hidden units.
    pub activation: Activation,
}

impl ClassifierSpec {
    /// 784-500-10 with tanh units, for MNIST and Fashion-MNIST.
    pub fn mnist() -> Self {
        Self {
            sizes: vec![784, 500, 10],
            activation: Activation::Tanh,
        }
    }

    /// Softmax cross-entropy.
    pub fn loss(&self) -> Loss {
        Loss::SoftmaxCrossEntropy
    }

    /// Sparse initialization (see [`DenseStack::sparse`]).
    pub fn sparse_init<B: Backend>(&self, seed: u64, device: &B::Device, dtype: burn::tensor::DType) -> DenseStack<B> {
        DenseStack::sparse(&self.sizes, seed, device, dtype)
    }
}

impl Network<2> for ClassifierSpec {
    type Module<B: Backend> = DenseStack<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> DenseStack<B> {
        DenseStack::zeros(&self.sizes, device)
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

impl ClassifierSpec {
    fn run<B: Backend>(&self, m: &DenseStack<B>, x: Tensor<B, 2>, taps: &mut AffineTaps<B>) -> Outputs<B> {
        let last = m.weights.len() - 1;
        let mut h = x;
        for i in 0..=last {
            let z = m.affine(i, h, taps);
            h = if i == last {
                z
            } else {
                match self.activation {
                    Activation::Tanh => z.tanh(),
                    Activation::Logistic => logistic(z),
                }
            };
        }
        Outputs::new(h)
    }
}

/// The fraction of rows whose argmax differs from the target's.
pub fn classification_error<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 2>) -> f64 {
    let n = logits.dims()[0] as f64;
    let wrong = logits.argmax(1).equal(targets.argmax(1)).bool_not().int().sum();
    hf_burn::scalar(wrong.float()) / n
}
