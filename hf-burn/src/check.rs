//! A check a user runs before trusting a new architecture: the curvature products of
//! their network against central differences.

use burn::prelude::*;
use burn::tensor::DType;

use crate::backend::{scalar, tensor_from_f64};
use crate::batch::DataBatch;
use crate::curvature::{CurvatureKind, CurvatureProduct};
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::vector::ParamVector;

/// The worst relative errors [`check_curvature`] found, over its random directions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvatureCheck {
    /// `J v` against `(z(θ + h v) − z(θ − h v)) / 2h`.
    pub jvp: f64,
    /// `G v` against `Jᵀ H_L (J v)_fd / R`, with `(J v)_fd` by central differences.
    pub gauss_newton: f64,
    /// `H v` against `(∇f(θ + h v) − ∇f(θ − h v)) / 2h`.
    pub hessian: f64,
    /// The number of random directions `v`.
    pub directions: usize,
}

impl CurvatureCheck {
    /// The largest of the three errors.
    pub fn worst(&self) -> f64 {
        self.jvp.max(self.gauss_newton).max(self.hessian)
    }
}

impl std::fmt::Display for CurvatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worst relative error over {} directions: J v {:.1e}, Gauss-Newton {:.1e}, Hessian {:.1e}",
            self.directions, self.jvp, self.gauss_newton, self.hessian
        )
    }
}

fn relative<B: Backend>(got: &Tensor<B, 1>, want: &Tensor<B, 1>) -> f64 {
    let num = scalar((got.clone() - want.clone()).powi_scalar(2).sum()).sqrt();
    let den = scalar(want.clone().powi_scalar(2).sum()).sqrt();
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

fn flat<B: Backend>(t: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

/// Checks `evaluator`'s curvature products for the network at `theta` on `batch`
/// against central differences along `directions` random unit directions, and
/// reports the worst relative error of `J v`, the Gauss-Newton product and the
/// Hessian product.
///
/// Run it on an f64 backend (`NdArray<f64>`, or Flex with f64 tensors) with a small
/// batch: in f64, exact products agree with the differences to about 1e-8, while a
/// wrong derivative rule shows as errors of 1e-3 and more. In f32 the differences
/// themselves are only good to about 1e-3. The gradient is burn's own (`Autodiff<B>`),
/// so a backend operation whose backward pass is inexact shows too: burn 0.21's
/// `gelu` gradient puts the Hessian check near 1e-3.
///
/// # Errors
/// Whatever the products report (a shape mismatch, an operation without a tangent
/// rule).
///
/// # Example
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::prelude::*;
/// use hf_burn::{check_curvature, DataBatch, Evaluator, Network, Outputs, ParamVector, SquaredError};
///
/// #[derive(Clone, Debug)]
/// struct Net;
/// impl Network<2> for Net {
///     type Module<B: Backend> = Linear<B>;
///     fn init<B: Backend>(&self, device: &B::Device) -> Linear<B> {
///         LinearConfig::new(3, 2).init(device)
///     }
///     fn forward<B: Backend>(&self, m: &Linear<B>, x: Tensor<B, 2>) -> Outputs<B> {
///         Outputs::new(m.forward(x).tanh())
///     }
/// }
///
/// type B = NdArray<f64>;
/// let device = Default::default();
/// let x = Tensor::<B, 2>::from_floats([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]], &device);
/// let t = Tensor::<B, 2>::from_floats([[0.0, 1.0], [1.0, 0.0]], &device);
/// let batch = DataBatch::new(x, t).unwrap();
/// let evaluator = Evaluator::new(Net, SquaredError, &device).unwrap();
/// let theta = ParamVector::from_module(&Net.init::<B>(&device)).unwrap();
/// let report = check_curvature(&evaluator, &theta, &batch, 3).unwrap();
/// assert!(report.worst() < 1e-6, "{report}");
/// ```
pub fn check_curvature<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>(
    evaluator: &Evaluator<B, N, L, D>,
    theta: &ParamVector<B>,
    batch: &DataBatch<B, D>,
    directions: usize,
) -> Result<CurvatureCheck> {
    let device = theta.tensor().device();
    let dtype: DType = theta.tensor().dtype();
    let p = evaluator.num_params();
    let h = if dtype == DType::F64 { 1e-5 } else { 1e-2 };
    let gn = CurvatureProduct::new(evaluator, theta.clone(), batch.clone(), CurvatureKind::GaussNewton, 0.0)?;
    let hessian = CurvatureProduct::new(evaluator, theta.clone(), batch.clone(), CurvatureKind::Hessian, 0.0)?;
    let z = evaluator.outputs(theta, batch.input.clone())?.z;
    let rows = z.dims()[0];
    let mut report = CurvatureCheck {
        jvp: 0.0,
        gauss_newton: 0.0,
        hessian: 0.0,
        directions,
    };
    for k in 0..directions {
        // A deterministic pseudo-random unit direction.
        let raw: Vec<f64> = (0..p)
            .map(|i| (((i as f64 + 1.0) * 12.9898 + (k as f64 + 1.0) * 78.233).sin() * 43758.5453).fract() - 0.5)
            .collect();
        let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        let v = ParamVector::new(tensor_from_f64(
            raw.iter().map(|x| x / norm).collect(),
            [p],
            &device,
            dtype,
        ));
        let step = |s: f64| ParamVector::new(theta.tensor().clone() + v.tensor().clone().mul_scalar(s * h));
        let (plus, minus) = (step(1.0), step(-1.0));

        let jv_fd = (evaluator.outputs(&plus, batch.input.clone())?.z
            - evaluator.outputs(&minus, batch.input.clone())?.z)
            .div_scalar(2.0 * h);
        let jv = evaluator.jvp(theta, &v, &batch.input, false)?.z;
        report.jvp = report.jvp.max(relative(&flat(jv), &flat(jv_fd.clone())));

        let w = evaluator
            .loss()
            .hessian_product(z.clone(), jv_fd)
            .div_scalar(rows as f64);
        let gv_fd = evaluator.vjp(theta, &batch.input, &Outputs::new(w))?;
        let gv = gn.curvature_product(&v)?;
        report.gauss_newton = report.gauss_newton.max(relative(gv.tensor(), gv_fd.tensor()));

        let hv_fd = (evaluator.gradient(&plus, batch)?.1.into_tensor()
            - evaluator.gradient(&minus, batch)?.1.into_tensor())
        .div_scalar(2.0 * h);
        let hv = hessian.curvature_product(&v)?;
        report.hessian = report.hessian.max(relative(hv.tensor(), &hv_fd));
    }
    Ok(report)
}
