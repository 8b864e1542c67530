//! How `J v` (and with it the curvature products) is computed: the one piece that
//! differs between ways of differentiating forward. Callers go through
//! [`JvpStrategy`]; [`ForwardMode`] is the default, [`DoubleBackward`] the cross-check.

use burn::backend::Autodiff;
use burn::prelude::*;

use crate::backend::{lift, lift2, Inner, Outer};
use crate::batch::DataBatch;
use crate::dual;
use crate::error::Result;
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::params::cut;
use crate::templates::{backward_onto, check_outputs, Templates};

/// Computes `J v`, `Jᵀ w(J v)` and `H v` for a network at `θ`.
pub trait JvpStrategy: Clone + Send + Sync + 'static {
    /// `J v` for the network's outputs (same shapes as [`Outputs`]), and for its hidden
    /// states too when `hidden` is set (structural damping needs them; nothing else does).
    fn jvp<B: Backend, N: Network<D>, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
    ) -> Result<Outputs<B>>;

    /// `Jᵀ w(J v)`: the curvature products' shape (Gauss-Newton when `weight`
    /// multiplies by the loss's output Hessian). By default a `J v` pass, then a
    /// forward and a backward pass for `Jᵀ`.
    fn jvp_then_vjp<B: Backend, N: Network<D>, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Result<Tensor<B, 1>> {
        let jv = self.jvp(templates, theta, v, input, hidden)?;
        templates.vjp(theta, input, &weight(jv))
    }

    /// The exact Hessian-vector product `H v` of the mean loss on `batch`.
    fn hvp<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        loss: &L,
        theta: &Tensor<B, 1>,
        batch: &DataBatch<B, D>,
        v: &Tensor<B, 1>,
    ) -> Result<Tensor<B, 1>>;
}

/// Forward-mode differentiation on the [`Dual`](crate::dual::Dual) backend: a
/// Gauss-Newton product is one dual forward pass (outputs `z` with their graph, and
/// `J v`) plus one backward pass from that same `z`; `H v` is a backward pass over
/// dual numbers (reverse over forward). Works for every operation with a tangent
/// rule, burn's fused `nn::Linear` and convolutions included. The default.
///
/// # References
/// - B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation, 1994.
/// - N. N. Schraudolph, "Fast curvature matrix-vector products for second-order
///   gradient descent", Neural Computation, 2002.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardMode;

impl JvpStrategy for ForwardMode {
    fn jvp<B: Backend, N: Network<D>, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
    ) -> Result<Outputs<B>> {
        let theta_d = dual::with_tangent(theta.clone(), v.clone());
        let out = templates.forward_dual(&theta_d, dual::constant(input.clone()))?;
        Ok(Outputs {
            z: dual::split(out.z).1,
            hidden: out.hidden.filter(|_| hidden).map(|h| dual::split(h).1),
        })
    }

    fn jvp_then_vjp<B: Backend, N: Network<D>, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Result<Tensor<B, 1>> {
        let leaves = templates.leaves(theta)?;
        let pieces = leaves
            .iter()
            .zip(cut(templates.layout(), v)?)
            .map(|(leaf, tangent)| dual::with_tangent(leaf.clone(), lift(tangent)))
            .collect();
        let out = templates.forward_dual_leaves(pieces, dual::constant(lift(input.clone())))?;
        let (z, jv_z) = dual::split(out.z);
        let (h, jv_h) = match out.hidden.filter(|_| hidden).map(dual::split) {
            Some((h, jv_h)) => (Some(h), Some(jv_h.inner())),
            None => (None, None),
        };
        let w = weight(Outputs {
            z: jv_z.inner(),
            hidden: jv_h,
        });
        Ok(backward_onto(&leaves, theta, Outputs { z, hidden: h }, &w))
    }

    fn hvp<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        loss: &L,
        theta: &Tensor<B, 1>,
        batch: &DataBatch<B, D>,
        v: &Tensor<B, 1>,
    ) -> Result<Tensor<B, 1>> {
        let theta_r: Tensor<Autodiff<dual::Dual<B>>, 1> =
            Tensor::from_inner(dual::with_tangent(theta.clone(), v.clone())).require_grad();
        let constant = |t: Tensor<B, 2>| Tensor::from_inner(dual::constant(t));
        let out = templates.forward_inner_dual(&theta_r, Tensor::from_inner(dual::constant(batch.input.clone())))?;
        check_outputs(&out.z.dims(), &batch.target.dims())?;
        let objective = loss.per_case(out.z, constant(batch.target.clone())).mean();
        let zeros = || theta.zeros_like();
        Ok(match theta_r.grad(&objective.backward()) {
            Some(g) => dual::tangent(&g).unwrap_or_else(zeros),
            None => zeros(),
        })
    }
}

/// `J v = ∂/∂u ⟨Jᵀu, v⟩` by reverse-over-reverse on `Autodiff<Autodiff<B>>`: a backward
/// pass of `⟨z, u⟩` gives `Jᵀu` as a function of `u` in the inner graph, and a second
/// backward pass of `⟨Jᵀu, v⟩` differentiates it with respect to `u`. Kept as an
/// independent cross-check of [`ForwardMode`]; it cannot differentiate burn's fused
/// `nn::Linear` (use [`crate::nn::linear`]) and costs a second forward pass per product.
///
/// # References
/// - J. Townsend, "A new trick for calculating Jacobian vector products", 2017.
/// - B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation, 1994.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoubleBackward;

impl JvpStrategy for DoubleBackward {
    fn jvp<B: Backend, N: Network<D>, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
    ) -> Result<Outputs<B>> {
        let theta_o: Tensor<Outer<B>, 1> = lift2(theta.clone()).require_grad();
        let out = templates.forward_outer(&theta_o, lift2(input.clone()))?;

        // Dummy cotangents u, leaves of the inner graph, seen as constants by the outer one.
        let dummy = |t: &Tensor<Outer<B>, 2>| -> Tensor<Inner<B>, 2> {
            lift(t.clone().inner().inner().zeros_like()).require_grad()
        };
        let u_z = dummy(&out.z);
        let u_h = out.hidden.as_ref().filter(|_| hidden).map(dummy);
        let mut s = (out.z * Tensor::from_inner(u_z.clone())).sum();
        if let (Some(h), Some(u)) = (out.hidden, &u_h) {
            s = s + (h * Tensor::from_inner(u.clone())).sum();
        }
        let zeros = |u: &Tensor<Inner<B>, 2>| u.clone().inner().zeros_like();
        let Some(jt_u) = theta_o.grad(&s.backward()) else {
            // No parameter reaches the outputs: J = 0.
            return Ok(Outputs {
                z: zeros(&u_z),
                hidden: u_h.as_ref().map(zeros),
            });
        };
        let grads = (jt_u * lift(v.clone())).sum().backward();
        // An output that does not depend on θ at all has no gradient: its J v is zero.
        let read = |u: &Tensor<Inner<B>, 2>| u.grad(&grads).unwrap_or_else(|| zeros(u));
        Ok(Outputs {
            z: read(&u_z),
            hidden: u_h.as_ref().map(read),
        })
    }

    /// `H v = ∂/∂θ ⟨∇f(θ), v⟩` by double backward.
    fn hvp<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        loss: &L,
        theta: &Tensor<B, 1>,
        batch: &DataBatch<B, D>,
        v: &Tensor<B, 1>,
    ) -> Result<Tensor<B, 1>> {
        let theta_i = lift(theta.clone()).require_grad();
        let theta_o: Tensor<Outer<B>, 1> = Tensor::from_inner(theta_i.clone()).require_grad();
        let out = templates.forward_outer(&theta_o, lift2(batch.input.clone()))?;
        check_outputs(&out.z.dims(), &batch.target.dims())?;
        let objective = loss.per_case(out.z, lift2(batch.target.clone())).mean();
        let zeros = || theta.zeros_like();
        let Some(g) = theta_o.grad(&objective.backward()) else {
            return Ok(zeros());
        };
        let hv = theta_i.grad(&(g * lift(v.clone())).sum().backward());
        Ok(hv.unwrap_or_else(zeros))
    }
}

/// The way an [`Evaluator`](crate::Evaluator) computes `J v`, chosen by value so that
/// no type carries it as a parameter. Defaults to [`ForwardMode`].
///
/// # Example
/// ```
/// use hf_burn::{DoubleBackward, Jvp};
///
/// assert_eq!(Jvp::default(), Jvp::ForwardMode);
/// assert_eq!(Jvp::from(DoubleBackward), Jvp::DoubleBackward);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jvp {
    /// [`ForwardMode`]: one dual forward pass and one backward pass per product.
    #[default]
    ForwardMode,
    /// [`DoubleBackward`]: reverse over reverse, the cross-check.
    DoubleBackward,
}

impl From<ForwardMode> for Jvp {
    fn from(_: ForwardMode) -> Self {
        Jvp::ForwardMode
    }
}

impl From<DoubleBackward> for Jvp {
    fn from(_: DoubleBackward) -> Self {
        Jvp::DoubleBackward
    }
}

impl JvpStrategy for Jvp {
    fn jvp<B: Backend, N: Network<D>, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
    ) -> Result<Outputs<B>> {
        match self {
            Jvp::ForwardMode => ForwardMode.jvp(templates, theta, v, input, hidden),
            Jvp::DoubleBackward => DoubleBackward.jvp(templates, theta, v, input, hidden),
        }
    }

    fn jvp_then_vjp<B: Backend, N: Network<D>, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Result<Tensor<B, 1>> {
        match self {
            Jvp::ForwardMode => ForwardMode.jvp_then_vjp(templates, theta, v, input, hidden, weight),
            Jvp::DoubleBackward => DoubleBackward.jvp_then_vjp(templates, theta, v, input, hidden, weight),
        }
    }

    fn hvp<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>(
        &self,
        templates: &Templates<B, N, D>,
        loss: &L,
        theta: &Tensor<B, 1>,
        batch: &DataBatch<B, D>,
        v: &Tensor<B, 1>,
    ) -> Result<Tensor<B, 1>> {
        match self {
            Jvp::ForwardMode => ForwardMode.hvp(templates, loss, theta, batch, v),
            Jvp::DoubleBackward => DoubleBackward.hvp(templates, loss, theta, batch, v),
        }
    }
}
