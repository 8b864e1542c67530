//! [`ParamVector`]: a model's parameters as one device-resident vector.

use burn::module::Module;
use burn::prelude::*;

use crate::backend::scalar;
use crate::error::Result;
use crate::params::{flatten, load, ParamLayout};

/// A parameter-shaped vector on any burn backend: one flat 1-D tensor.
///
/// Every [`hf_core::Vector`] operation runs on the device; only the reductions
/// (`dot`, `norm`, `is_finite`) bring one scalar back, so CG iterations move no
/// tensors to the host.
///
/// # Example
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::LinearConfig;
/// use hf_burn::ParamVector;
/// use hf_core::Vector;
///
/// let device = Default::default();
/// let linear = LinearConfig::new(3, 2).init::<NdArray<f64>>(&device);
/// let theta = ParamVector::from_module(&linear).unwrap();
/// assert_eq!(theta.len(), 3 * 2 + 2);
/// let back = theta.to_module(linear.clone()).unwrap();
/// assert_eq!(ParamVector::from_module(&back).unwrap().to_vec(), theta.to_vec());
/// ```
#[derive(Debug, Clone)]
pub struct ParamVector<B: Backend> {
    tensor: Tensor<B, 1>,
}

impl<B: Backend> ParamVector<B> {
    /// Wraps a 1-D tensor.
    pub fn new(tensor: Tensor<B, 1>) -> Self {
        Self { tensor }
    }

    /// The float parameters of any burn module, concatenated in visiting order.
    ///
    /// # Errors
    /// [`Error::NoParameters`](crate::Error::NoParameters) for a module without float parameters.
    pub fn from_module<M: Module<B>>(module: &M) -> Result<Self> {
        Ok(Self::new(flatten(module)?))
    }

    /// `template` with its float parameters replaced by this vector's entries.
    ///
    /// # Errors
    /// [`Error::ParameterShape`](crate::Error::ParameterShape), naming both shapes, if the
    /// vector's length does not match the module's parameters.
    pub fn to_module<M: Module<B>>(&self, template: M) -> Result<M> {
        let layout = ParamLayout::of(&template);
        load(template, &layout, &self.tensor)
    }

    /// The underlying tensor.
    pub fn tensor(&self) -> &Tensor<B, 1> {
        &self.tensor
    }

    /// Consumes the vector, returning the tensor.
    pub fn into_tensor(self) -> Tensor<B, 1> {
        self.tensor
    }

    /// Copies the entries to the host as `f64` (for tests, checkpoints and reports;
    /// never on the hot path).
    pub fn to_vec(&self) -> Vec<f64> {
        self.tensor.to_data().iter::<f64>().collect()
    }
}

impl<B: Backend> hf_core::Vector for ParamVector<B> {
    fn len(&self) -> usize {
        self.tensor.dims()[0]
    }

    fn zeros_like(&self) -> Self {
        Self::new(self.tensor.zeros_like())
    }

    fn dot(&self, other: &Self) -> f64 {
        scalar((self.tensor.clone() * other.tensor.clone()).sum())
    }

    fn scale(&mut self, alpha: f64) {
        self.tensor = self.tensor.clone().mul_scalar(alpha);
    }

    fn axpy(&mut self, alpha: f64, x: &Self) {
        self.tensor = self.tensor.clone() + x.tensor.clone().mul_scalar(alpha);
    }

    fn lin_comb(&mut self, a: f64, b: f64, x: &Self) {
        self.tensor = self.tensor.clone().mul_scalar(a) + x.tensor.clone().mul_scalar(b);
    }

    fn mul_elem(&mut self, x: &Self) {
        self.tensor = self.tensor.clone() * x.tensor.clone();
    }

    fn div_elem(&mut self, x: &Self) {
        self.tensor = self.tensor.clone() / x.tensor.clone();
    }

    fn add_scalar(&mut self, c: f64) {
        self.tensor = self.tensor.clone().add_scalar(c);
    }

    fn powf_elem(&mut self, p: f64) {
        self.tensor = self.tensor.clone().powf_scalar(p);
    }

    fn is_finite(&self) -> bool {
        // 0·x is 0 for finite x and NaN for NaN or ±∞: one reduction, one scalar.
        scalar(self.tensor.clone().mul_scalar(0.0).sum()) == 0.0
    }
}
