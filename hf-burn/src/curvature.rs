//! Curvature-vector products on burn tensors, as hf-core operators.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::batch::DataBatch;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::vector::ParamVector;

/// Which curvature matrix `B` the operator multiplies by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurvatureKind {
    /// Gauss-Newton `G = Jᵀ H_L J / R` over the `R` output rows: positive semidefinite
    /// (Schraudolph 2002). The default.
    #[default]
    GaussNewton,
    /// The exact Hessian of the objective (indefinite in general).
    Hessian,
    /// The empirical Fisher `(1/R) Σ_r g_r g_rᵀ` over the `R` output rows, `g_r` the
    /// gradient of row `r`'s loss, computed as `Jᵀ Q J / R` with `Q_r = q_r q_rᵀ`,
    /// `q_r = ∂L_r/∂z_r` (for a feed-forward network, one row per case).
    EmpiricalFisher,
}

/// Structural damping (Martens & Sutskever 2011): adds `μ λ J_Sᵀ D_S J_S / R` to the
/// curvature, where `J_S` is the Jacobian of the hidden states (the network's
/// [`Outputs::hidden`]), `D_S` the Gauss-Newton matrix of a distance on them
/// ([`StructuralDistance`]; by default the tanh units' matching loss, as in the paper)
/// and `R` the number of output rows, the same count the objective is averaged over.
/// The term grows and shrinks with the damping `λ`. Composes with the Gauss-Newton and
/// Fisher operators, whose `J v` pass computes `J_S v` at no extra cost.
///
/// Normalizing by the output rows, not by the hidden-state rows (cases × time steps),
/// is what keeps `μ` meaning what it means in the paper whatever the sequence length:
/// Sutskever's code divides the loss and the structural term by the same count. The
/// reduction ratio `ρ` leaves the term out of the undamped model
/// ([`CurvatureOperator::damping_energy`](hf_core::CurvatureOperator::damping_energy)).
///
/// # Example
/// ```
/// use hf_burn::{StructuralDamping, StructuralDistance};
/// let sd = StructuralDamping::tanh_matching(0.03);
/// assert_eq!(sd.distance, StructuralDistance::TanhMatching);
/// ```
///
/// # References
/// - J. Martens and I. Sutskever, "Learning recurrent neural networks with Hessian-free
///   optimization", ICML 2011, §3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StructuralDamping {
    /// `μ`; Martens & Sutskever used about `0.03`.
    pub mu: f64,
    /// The distance on the hidden states (records without it meant squared error).
    #[serde(default = "StructuralDistance::squared_error")]
    pub distance: StructuralDistance,
}

/// The distance structural damping measures a change of the hidden states `h` by: its
/// Gauss-Newton matrix is the `D_S` of `J_Sᵀ D_S J_S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuralDistance {
    /// The matching loss of tanh units, the paper's choice: in terms of the units'
    /// inputs `a` (`h = tanh a`) its Gauss-Newton matrix is `diag(1 − h²)`, so the term
    /// is `J_aᵀ diag(1 − h²) J_a = J_Sᵀ diag(1/(1 − h²)) J_S`. A saturated unit, whose
    /// state barely moves, is then penalized for moving its input as much as an
    /// unsaturated one is, where squared error on the states ignores it. For networks
    /// whose hidden states are tanh units' outputs (the RNNs of `hf-models`).
    #[default]
    TanhMatching,
    /// Squared error on the states: `D_S = I`.
    SquaredError,
}

impl StructuralDistance {
    fn squared_error() -> Self {
        Self::SquaredError
    }
}

/// `1 − h²` below this counts as this: a unit saturated to ±1 in the tensors'
/// precision has `J_S v = 0` exactly, so its term (`(1 − h²) (J_a v)²`) is zero either
/// way, and nothing divides by zero.
const SATURATION_FLOOR: f64 = 1e-12;

impl StructuralDamping {
    /// `μ` with the tanh units' matching loss (the paper's structural damping).
    pub fn tanh_matching(mu: f64) -> Self {
        Self {
            mu,
            distance: StructuralDistance::TanhMatching,
        }
    }

    /// `μ` with squared error on the hidden states.
    pub fn squared_error(mu: f64) -> Self {
        Self {
            mu,
            distance: StructuralDistance::SquaredError,
        }
    }

    /// The weight `μλ / R` of `D_S` for `rows` output rows.
    fn weight(&self, lambda: f64, rows: usize) -> f64 {
        self.mu * lambda / rows as f64
    }

    /// `D_S` as the factor the states' tangents are multiplied by elementwise, from
    /// the states at `θ` (`None`: the identity).
    fn metric<B: Backend>(&self, states: &Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        match self.distance {
            StructuralDistance::SquaredError => None,
            StructuralDistance::TanhMatching => Some(
                states
                    .clone()
                    .powi_scalar(2)
                    .neg()
                    .add_scalar(1.0)
                    .clamp_min(SATURATION_FLOOR)
                    .recip(),
            ),
        }
    }
}

/// `(B + λI) v` on the curvature batch at a fixed `θ`, for any backend and network.
///
/// The network's outputs at `θ` are computed once, when the operator is built;
/// each product then costs, for Gauss-Newton in forward mode, one dual forward pass
/// (`z` and `J v`) and one backward pass (`Jᵀ w`).
pub struct CurvatureProduct<'a, B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> {
    evaluator: &'a Evaluator<B, N, L, D>,
    theta: ParamVector<B>,
    batch: DataBatch<B, D>,
    kind: CurvatureKind,
    damping: f64,
    structural: Option<StructuralDamping>,
    /// `z` at `θ` (Gauss-Newton), or `r = ∂L/∂z` (Fisher).
    outputs_at_theta: Option<Tensor<B, 2>>,
    /// The hidden states at `θ`, kept for structural damping's `D_S`.
    hidden_at_theta: Option<Tensor<B, 2>>,
    /// Structural damping's `μλ/R · D_S` as an elementwise factor (`None`: `D_S` is
    /// the identity), computed once per operator.
    structural_metric: Option<Tensor<B, 2>>,
}

impl<'a, B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> CurvatureProduct<'a, B, N, L, D> {
    /// The operator `(B + λI)` of `kind` at `theta` on `batch`.
    ///
    /// # Errors
    /// A parameter-shape or output-shape mismatch.
    pub fn new(
        evaluator: &'a Evaluator<B, N, L, D>,
        theta: ParamVector<B>,
        batch: DataBatch<B, D>,
        kind: CurvatureKind,
        damping: f64,
    ) -> Result<Self> {
        let mut hidden_at_theta = None;
        let outputs_at_theta = match kind {
            CurvatureKind::Hessian => None,
            CurvatureKind::GaussNewton | CurvatureKind::EmpiricalFisher => {
                let out = evaluator.outputs(&theta, batch.input.clone())?;
                hidden_at_theta = out.hidden;
                let z = out.z;
                if z.dims() != batch.target.dims() {
                    return Err(crate::Error::OutputShape {
                        outputs: z.dims().to_vec(),
                        targets: batch.target.dims().to_vec(),
                    });
                }
                Some(match kind {
                    CurvatureKind::EmpiricalFisher => evaluator.loss().output_gradient(z, batch.target.clone()),
                    _ => z,
                })
            }
        };
        Ok(Self {
            evaluator,
            theta,
            batch,
            kind,
            damping,
            structural: None,
            outputs_at_theta,
            hidden_at_theta,
            structural_metric: None,
        })
    }

    /// Adds structural damping (Gauss-Newton and Fisher only; ignored for the Hessian,
    /// and for a network without hidden states).
    pub fn with_structural_damping(mut self, structural: StructuralDamping) -> Self {
        let weight = self
            .outputs_at_theta
            .as_ref()
            .map_or(0.0, |z| structural.weight(self.damping, z.dims()[0]));
        self.structural_metric = self
            .hidden_at_theta
            .as_ref()
            .and_then(|h| structural.metric(h))
            .map(|d| d.mul_scalar(weight));
        self.structural = Some(structural);
        self
    }

    /// `μλ/R · D_S J_S v`: one elementwise pass.
    fn structural_weight(&self, sd: StructuralDamping, js_v: Tensor<B, 2>, rows: usize) -> Tensor<B, 2> {
        match &self.structural_metric {
            Some(d) => js_v * d.clone(),
            None => js_v.mul_scalar(sd.weight(self.damping, rows)),
        }
    }

    /// The undamped product `B v`.
    pub fn curvature_product(&self, v: &ParamVector<B>) -> Result<ParamVector<B>> {
        let input = &self.batch.input;
        let Some(at_theta) = &self.outputs_at_theta else {
            return self.evaluator.hvp(&self.theta, &self.batch, v);
        };
        // The objective is the mean over output rows: so is the curvature.
        let rows = at_theta.dims()[0];
        let weight = |jv: Outputs<B>| {
            let w_z = match self.kind {
                CurvatureKind::EmpiricalFisher => {
                    // R_i u_i = r_i (r_iᵀ u_i).
                    let ru = (at_theta.clone() * jv.z).sum_dim(1);
                    at_theta.clone() * ru
                }
                _ => self.evaluator.loss().hessian_product(at_theta.clone(), jv.z),
            };
            Outputs {
                z: w_z.div_scalar(rows as f64),
                hidden: match (self.structural, jv.hidden) {
                    (Some(sd), Some(h)) => Some(self.structural_weight(sd, h, rows)),
                    _ => None,
                },
            }
        };
        self.evaluator
            .jvp_then_vjp(&self.theta, v, input, self.structural.is_some(), &weight)
    }
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> hf_core::CurvatureOperator<ParamVector<B>>
    for CurvatureProduct<'_, B, N, L, D>
{
    fn dim(&self) -> usize {
        self.evaluator.num_params()
    }

    fn damping(&self) -> f64 {
        self.damping
    }

    fn apply(&self, v: &ParamVector<B>) -> hf_core::Result<ParamVector<B>> {
        hf_core::check_dim("CurvatureProduct::apply", self.dim(), hf_core::Vector::len(v))?;
        let mut out = self.curvature_product(v)?;
        hf_core::Vector::axpy(&mut out, self.damping, v);
        Ok(out)
    }

    /// `λ‖v‖²`, plus `μλ ⟨J_S v, D_S J_S v⟩ / R` with structural damping (one `J v` pass).
    fn damping_energy(&self, v: &ParamVector<B>) -> hf_core::Result<f64> {
        hf_core::check_dim("CurvatureProduct::damping_energy", self.dim(), hf_core::Vector::len(v))?;
        let tikhonov = self.damping * hf_core::Vector::dot(v, v);
        let (Some(sd), Some(at_theta)) = (self.structural, &self.outputs_at_theta) else {
            return Ok(tikhonov);
        };
        let jv = self.evaluator.jvp(&self.theta, v, &self.batch.input, true)?;
        let Some(js_v) = jv.hidden else {
            return Ok(tikhonov);
        };
        let rows = at_theta.dims()[0];
        let weighted = self.structural_weight(sd, js_v.clone(), rows);
        Ok(tikhonov + crate::backend::scalar((js_v * weighted).sum()))
    }
}
