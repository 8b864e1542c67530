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

/// The worst relative errors [`check_curvature`] found, over its random directions,
/// and the smallest error it can tell from the noise of the network's own forward
/// and backward passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvatureCheck {
    /// `J v` against `(z(θ + h v) − z(θ − h v)) / 2h`.
    pub jvp: f64,
    /// `G v` against `Jᵀ H_L (J v)_fd / R`, with `(J v)_fd` by central differences.
    pub gauss_newton: f64,
    /// `H v` against `(∇f(θ + h v) − ∇f(θ − h v)) / 2h`.
    pub hessian: f64,
    /// The smallest relative error of `J v` (and so of `G v`, which uses the same
    /// differences) the check resolves: the larger of the precision's own
    /// ([`CurvatureCheck::BASELINE_F64`] or [`CurvatureCheck::BASELINE_F32`]) and three
    /// times the measured noise of the differences.
    pub jvp_resolution: f64,
    /// The same for `H v`, from the noise of the gradient.
    pub hessian_resolution: f64,
    /// The measured noise of the outputs relative to `‖(J v)_fd‖ h`: how far the
    /// forward pass is from being smooth at the precision of the tensors (0 for an
    /// exact f64 pass; about 1e-7 when an operation rounds through f32).
    pub forward_noise: f64,
    /// What the differences resolve at the tensors' precision with a smooth pass
    /// ([`CurvatureCheck::BASELINE_F64`] or [`CurvatureCheck::BASELINE_F32`]).
    pub baseline: f64,
    /// The number of random directions `v`.
    pub directions: usize,
    /// For a network with its own [`Network::jvp_then_vjp`]: its `Jᵀ w(J v)` against
    /// the generic forward mode's, the hidden states weighted too (`None` for a
    /// network without one). Both are exact, so they agree to rounding: within
    /// [`CurvatureCheck::network_tolerance`].
    pub network_product: Option<f64>,
}

impl CurvatureCheck {
    /// What central differences resolve in f64 with a smooth forward pass.
    pub const BASELINE_F64: f64 = 1e-6;
    /// What central differences resolve in f32.
    pub const BASELINE_F32: f64 = 2e-2;

    /// The largest of the three errors.
    pub fn worst(&self) -> f64 {
        self.jvp.max(self.gauss_newton).max(self.hessian)
    }

    /// How far a network's own product may be from the generic forward mode's: both
    /// exact, they differ by rounding only (`1e-10` in f64, `1e-4` in f32).
    pub fn network_tolerance(&self) -> f64 {
        if self.baseline <= Self::BASELINE_F64 {
            1e-10
        } else {
            1e-4
        }
    }

    /// Whether every product agrees with the differences as far as they resolve: a
    /// product beyond its resolution means a wrong derivative rule (or a backward
    /// pass that is not the forward pass's derivative).
    pub fn is_consistent(&self) -> bool {
        self.jvp <= self.jvp_resolution
            && self.gauss_newton <= self.jvp_resolution
            && self.hessian <= self.hessian_resolution
            && self.network_product.is_none_or(|e| e <= self.network_tolerance())
    }

    /// Whether the network's own noise, not the precision, limits the check: a
    /// resolution a hundred times the precision's. (A smooth pass's second
    /// differences are not quite zero either, so the resolution may exceed the
    /// baseline slightly without any noise.)
    pub fn noise_limited(&self) -> bool {
        self.jvp_resolution.max(self.hessian_resolution) > 100.0 * self.baseline
    }
}

impl std::fmt::Display for CurvatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worst relative error over {} directions: J v {:.1e}, Gauss-Newton {:.1e}, Hessian {:.1e}",
            self.directions, self.jvp, self.gauss_newton, self.hessian
        )?;
        if let Some(e) = self.network_product {
            write!(f, ", the network's own product against forward mode {e:.1e}")?;
        }
        if self.is_consistent() {
            write!(f, ": consistent")?;
        } else {
            write!(
                f,
                ": a derivative rule is wrong (an error beyond what the differences resolve)"
            )?;
        }
        write!(
            f,
            "; resolves J v and Gauss-Newton to {:.1e}, Hessian to {:.1e}",
            self.jvp_resolution, self.hessian_resolution
        )?;
        if self.noise_limited() {
            write!(
                f,
                "; cannot resolve below that: the forward pass is not accurate to the tensors' precision \
                 (its outputs are noisy at {:.1e} of a step's change; an operation rounds through a lower \
                 precision, as burn 0.21's sigmoid does through f32)",
                self.forward_noise
            )?;
        }
        Ok(())
    }
}

/// How many times the measured noise of the differences an error must exceed to be
/// called wrong. The second differences estimate the noise of the first to within a
/// factor of about two (both sum a few evaluations' rounding); three leaves room for
/// that while still catching a rule that is off by a few percent.
const NOISE_MARGIN: f64 = 3.0;

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
/// Hessian product; for a network with its own products ([`Network::jvp_then_vjp`]),
/// also how far they are from the generic forward mode's.
///
/// Run it on an f64 backend with a small batch: `NdArray<f64>`, or Flex after
/// `burn::tensor::backend::set_default_float_dtype::<Flex>(&device, DType::F64)` (once
/// per process, before the first tensor on that device; otherwise Flex mixes f32
/// modules with f64 inputs and a matmul refuses the mismatch). In f64, exact products
/// agree with the differences to about 1e-8, while a wrong derivative rule shows as
/// errors of 1e-3 and more. In f32 the differences themselves are only good to about
/// 1e-3.
///
/// The check also measures how noisy the network's own forward and backward passes
/// are (second differences over a tenth of the step) and reports what it
/// can resolve ([`CurvatureCheck::jvp_resolution`]): a network with an operation
/// that rounds through f32 (burn 0.21's `sigmoid`, in an LSTM's gates) is not
/// called wrong for differences that are only noise. [`CurvatureCheck::is_consistent`]
/// is the verdict. The gradient is burn's own (`Autodiff<B>`), so a backend operation
/// whose backward pass is inexact shows too: burn 0.21's `gelu` gradient puts the
/// Hessian check near 1e-3.
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
/// assert!(report.worst() < 1e-6 && report.is_consistent(), "{report}");
/// assert!(!report.noise_limited(), "{report}");
/// ```
///
/// The same on Flex, the fastest CPU backend, in f64: set the device's default float
/// type first, once per process.
/// ```
/// # use burn::nn::{Linear, LinearConfig};
/// # use burn::prelude::*;
/// # use hf_burn::{check_curvature, DataBatch, Evaluator, Network, Outputs, ParamVector, SquaredError};
/// # #[derive(Clone, Debug)]
/// # struct Net;
/// # impl Network<2> for Net {
/// #     type Module<B: Backend> = Linear<B>;
/// #     fn init<B: Backend>(&self, device: &B::Device) -> Linear<B> { LinearConfig::new(3, 2).init(device) }
/// #     fn forward<B: Backend>(&self, m: &Linear<B>, x: Tensor<B, 2>) -> Outputs<B> { Outputs::new(m.forward(x).tanh()) }
/// # }
/// use burn::backend::Flex;
/// use burn::tensor::{backend::set_default_float_dtype, DType};
///
/// let device = Default::default();
/// set_default_float_dtype::<Flex>(&device, DType::F64).unwrap();
/// let x = Tensor::<Flex, 2>::from_floats([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]], &device);
/// let t = Tensor::<Flex, 2>::from_floats([[0.0, 1.0], [1.0, 0.0]], &device);
/// let batch = DataBatch::new(x, t).unwrap();
/// let evaluator = Evaluator::new(Net, SquaredError, &device).unwrap();
/// let theta = ParamVector::from_module(&Net.init::<Flex>(&device)).unwrap();
/// assert_eq!(theta.tensor().dtype(), DType::F64);
/// let report = check_curvature(&evaluator, &theta, &batch, 3).unwrap();
/// assert!(report.worst() < 1e-6 && report.is_consistent(), "{report}");
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
    let baseline = if dtype == DType::F64 {
        CurvatureCheck::BASELINE_F64
    } else {
        CurvatureCheck::BASELINE_F32
    };
    // Second differences over a tenth of the step: a smooth pass's are (h/10)²-small,
    // a pass that rounds through f32 is already piecewise constant at its grid below
    // that (so a much shorter step would see too few of its jumps).
    let eta = h * 0.1;
    let (_, g0) = evaluator.gradient(theta, batch)?;
    let gn = CurvatureProduct::new(evaluator, theta.clone(), batch.clone(), CurvatureKind::GaussNewton, 0.0)?;
    let hessian = CurvatureProduct::new(evaluator, theta.clone(), batch.clone(), CurvatureKind::Hessian, 0.0)?;
    let z = evaluator.outputs(theta, batch.input.clone())?.z;
    let rows = z.dims()[0];
    let mut report = CurvatureCheck {
        jvp: 0.0,
        gauss_newton: 0.0,
        hessian: 0.0,
        jvp_resolution: baseline,
        hessian_resolution: baseline,
        forward_noise: 0.0,
        baseline,
        directions,
        network_product: None,
    };
    let l2 = |t: Tensor<B, 1>| scalar(t.powi_scalar(2).sum()).sqrt();
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
        let step = |s: f64| ParamVector::new(theta.tensor().clone() + v.tensor().clone().mul_scalar(s));
        let (plus, minus) = (step(h), step(-h));

        let jv_fd = (evaluator.outputs(&plus, batch.input.clone())?.z
            - evaluator.outputs(&minus, batch.input.clone())?.z)
            .div_scalar(2.0 * h);
        let (near_plus, near_minus) = (step(eta), step(-eta));
        let z_noise = l2(flat(
            evaluator.outputs(&near_plus, batch.input.clone())?.z
                + evaluator.outputs(&near_minus, batch.input.clone())?.z
                - z.clone().mul_scalar(2.0),
        ));
        let jv_scale = l2(flat(jv_fd.clone())).max(f64::MIN_POSITIVE);
        let noise = z_noise / (2.0 * h * jv_scale);
        report.forward_noise = report.forward_noise.max(z_noise / (h * jv_scale));
        report.jvp_resolution = report.jvp_resolution.max(NOISE_MARGIN * noise);
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
        let g_noise = l2(evaluator.gradient(&near_plus, batch)?.1.into_tensor()
            + evaluator.gradient(&near_minus, batch)?.1.into_tensor()
            - g0.tensor().clone().mul_scalar(2.0));
        let hv_scale = l2(hv_fd.clone()).max(f64::MIN_POSITIVE);
        report.hessian_resolution = report
            .hessian_resolution
            .max(NOISE_MARGIN * g_noise / (2.0 * h * hv_scale));
        let hv = hessian.curvature_product(&v)?;
        report.hessian = report.hessian.max(relative(hv.tensor(), &hv_fd));

        // The network's own product against forward mode's, with the hidden states
        // weighted as structural damping weights them.
        let weight = |jv: Outputs<B>| Outputs {
            z: evaluator
                .loss()
                .hessian_product(z.clone(), jv.z)
                .div_scalar(rows as f64),
            hidden: jv.hidden.map(|h| h.mul_scalar(0.5)),
        };
        if let Some(own) = evaluator.network_jvp_then_vjp(theta, &v, &batch.input, true, &weight)? {
            let generic = evaluator.generic_jvp_then_vjp(theta, &v, &batch.input, true, &weight)?;
            let e = relative(own.tensor(), generic.tensor());
            report.network_product = Some(report.network_product.map_or(e, |old| old.max(e)));
        }
    }
    Ok(report)
}
