//! Jacobian-vector products `J v`: the one piece that differs between ways of
//! differentiating forward. Callers go through [`JvpStrategy`], so forward mode can
//! take the place of double backward without touching them.

use burn::prelude::*;

use crate::backend::{lift, lift2, Inner, Outer};
use crate::error::Result;
use crate::evaluator::Templates;
use crate::network::{Network, Outputs};

/// Computes `J v` for the outputs (and hidden states) of a network at `θ`.
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
}

/// `J v = ∂/∂u ⟨Jᵀu, v⟩` by reverse-over-reverse on `Autodiff<Autodiff<B>>`: a backward
/// pass of `⟨z, u⟩` gives `Jᵀu` as a function of `u` in the inner graph, and a second
/// backward pass of `⟨Jᵀu, v⟩` differentiates it with respect to `u`.
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
}
