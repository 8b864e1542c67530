//! K-FAC as CG's preconditioner: per affine layer `M⁻¹ = (A + π√λ I)⁻¹ ⊗ (G + √λ/π I)⁻¹`
//! from running averages of the problem's Kronecker factors; every other parameter
//! by Martens' diagonal rule, or as it is.

use burn::prelude::*;
use hf_core::{
    Error as CoreError, KroneckerConfig, KroneckerFactor, Preconditioner, PreconditionerContext, Result as CoreResult,
};

use crate::backend::tensor_from_f64;
use crate::vector::ParamVector;

/// One layer's inverses on the device.
#[derive(Debug, Clone)]
struct Block<B: Backend> {
    weight: usize,
    bias: Option<usize>,
    fan_in: usize,
    fan_out: usize,
    input: Tensor<B, 2>,
    output: Tensor<B, 2>,
}

/// The Kronecker-factored (K-FAC) preconditioner of CG: for each affine layer the
/// problem reports ([`hf_core::Problem::kronecker_factors`]; hf-burn's
/// [`BurnProblem`](crate::BurnProblem) does for networks that implement
/// [`Network::forward_with_taps`](crate::Network::forward_with_taps)),
/// `M⁻¹ = (A + π√λ I)⁻¹ ⊗ (G + √λ/π I)⁻¹` from running averages of the factors,
/// with `λ` the damping of the system CG solves. CG still solves with the true
/// Gauss-Newton matrix, so the step is HF's; only the number of iterations changes.
/// Parameters in no factored layer — a recurrent network's weights shared over time
/// steps among them, which this preconditioner does not factor — get Martens'
/// diagonal rule when the problem offers a diagonal, else none.
///
/// The running averages and the damping of the last refresh are plug-in state
/// ([`Preconditioner::state`]), so a resumed run is preconditioned exactly as an
/// uninterrupted one.
///
/// # References
/// - J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored
///   approximate curvature", ICML 2015.
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.7 (the
///   diagonal rule).
#[derive(Debug, Clone)]
pub struct KroneckerFactored<B: Backend> {
    config: KroneckerConfig,
    device: B::Device,
    dtype: burn::tensor::DType,
    /// The running averages.
    averages: Vec<KroneckerFactor>,
    /// Updates seen.
    updates: usize,
    /// The damping the inverses were computed with.
    damping: f64,
    blocks: Vec<Block<B>>,
    /// `(d + λ)^-α` on every parameter, 1 where a block covers it, when some
    /// parameter is in no block and the problem offered a diagonal.
    fallback: Option<Tensor<B, 1>>,
    /// The diagonal the fallback was built from (state, for a resume); `None` when
    /// the problem offers none or the blocks cover every parameter, and then it is
    /// no longer asked for.
    diagonal: Option<Vec<f64>>,
}

impl<B: Backend> KroneckerFactored<B> {
    /// An empty preconditioner (the identity until its first update) for parameters
    /// on `device` in `dtype`.
    ///
    /// # Errors
    /// A [`hf_core::ConfigError`] from [`KroneckerConfig::validate`].
    pub fn new(
        config: KroneckerConfig,
        device: &B::Device,
        dtype: burn::tensor::DType,
    ) -> Result<Self, hf_core::ConfigError> {
        config.validate("")?;
        Ok(Self {
            config,
            device: device.clone(),
            dtype,
            averages: Vec::new(),
            updates: 0,
            damping: 0.0,
            blocks: Vec::new(),
            fallback: None,
            diagonal: None,
        })
    }

    /// The layers it factors, as running averages.
    pub fn factors(&self) -> &[KroneckerFactor] {
        &self.averages
    }

    fn refresh_due(&self) -> bool {
        self.updates.is_multiple_of(self.config.refresh_every)
    }

    /// Rebuilds the device inverses and the fallback from the averages, `damping`
    /// and `diagonal`.
    fn rebuild(&mut self, damping: f64) -> CoreResult<()> {
        let mut blocks = Vec::with_capacity(self.averages.len());
        for f in &self.averages {
            let (a, g) = f.damped_inverses(damping)?;
            let (r, m) = (f.rows(), f.fan_out);
            blocks.push(Block {
                weight: f.weight,
                bias: f.bias,
                fan_in: f.fan_in,
                fan_out: m,
                input: tensor_from_f64(a, [r, r], &self.device, self.dtype),
                output: tensor_from_f64(g, [m, m], &self.device, self.dtype),
            });
        }
        self.fallback = match &self.diagonal {
            Some(d) => {
                let alpha = self.config.fallback_exponent;
                let mut inv: Vec<f64> = d.iter().map(|x| (x + damping).powf(-alpha)).collect();
                if inv.iter().any(|v| !v.is_finite()) {
                    return Err(CoreError::NonFinite {
                        what: "diagonal of the K-FAC fallback",
                    });
                }
                for f in &self.averages {
                    inv[f.weight..f.weight + f.fan_in * f.fan_out].fill(1.0);
                    if let Some(b) = f.bias {
                        inv[b..b + f.fan_out].fill(1.0);
                    }
                }
                let n = inv.len();
                Some(tensor_from_f64(inv, [n], &self.device, self.dtype))
            }
            None => None,
        };
        self.blocks = blocks;
        self.damping = damping;
        Ok(())
    }
}

impl<B: Backend> Preconditioner<ParamVector<B>> for KroneckerFactored<B> {
    fn apply(&self, r: &ParamVector<B>) -> CoreResult<ParamVector<B>> {
        let r = r.tensor();
        let mut out = match &self.fallback {
            Some(f) => r.clone() * f.clone(),
            None => r.clone(),
        };
        for b in &self.blocks {
            let w = r
                .clone()
                .slice(b.weight..b.weight + b.fan_in * b.fan_out)
                .reshape([b.fan_in, b.fan_out]);
            let rows = match b.bias {
                Some(o) => Tensor::cat(vec![w, r.clone().slice(o..o + b.fan_out).reshape([1, b.fan_out])], 0),
                None => w,
            };
            let p = b.input.clone().matmul(rows).matmul(b.output.clone());
            let pw = p
                .clone()
                .slice([0..b.fan_in, 0..b.fan_out])
                .reshape([b.fan_in * b.fan_out]);
            out = out.slice_assign(b.weight..b.weight + b.fan_in * b.fan_out, pw);
            if let Some(o) = b.bias {
                let pb = p.slice([b.fan_in..b.fan_in + 1, 0..b.fan_out]).reshape([b.fan_out]);
                out = out.slice_assign(o..o + b.fan_out, pb);
            }
        }
        Ok(ParamVector::new(out))
    }

    /// Until the first factors show whether every parameter is in a block (an
    /// autoencoder's are), and afterwards only if one is not: the diagonal costs about
    /// a gradient.
    fn wants_diagonal(&self) -> bool {
        self.refresh_due() && (self.averages.is_empty() || self.diagonal.is_some())
    }

    fn wants_kronecker_factors(&self) -> bool {
        self.refresh_due()
    }

    fn update(&mut self, context: &PreconditionerContext<'_, ParamVector<B>>) -> CoreResult<()> {
        let due = self.refresh_due();
        self.updates += 1;
        if !due {
            return Ok(());
        }
        if let Some(new) = context.kronecker {
            let same = self.averages.len() == new.len() && self.averages.iter().zip(new).all(|(a, n)| a.same_layer(n));
            if same {
                for (a, n) in self.averages.iter_mut().zip(new) {
                    a.blend(n, self.config.decay)?;
                }
            } else {
                self.averages = new.to_vec();
            }
        }
        if let Some(d) = context.diagonal {
            let covered: usize = self
                .averages
                .iter()
                .map(|f| f.fan_in * f.fan_out + f.bias.map_or(0, |_| f.fan_out))
                .sum();
            self.diagonal = (covered < hf_core::Vector::len(d)).then(|| d.to_vec());
        }
        let n = self.diagonal.as_ref().map(Vec::len);
        for f in &self.averages {
            f.validate(n.unwrap_or(usize::MAX))?;
        }
        self.rebuild(context.damping)
    }

    /// `[updates, damping, layers, then per layer: weight, bias (−1 for none),
    /// fan_in, fan_out, A, G; then the diagonal's length and values (length −1 for
    /// none)]`.
    fn state(&self) -> Vec<f64> {
        let mut s = vec![self.updates as f64, self.damping, self.averages.len() as f64];
        for f in &self.averages {
            s.extend([
                f.weight as f64,
                f.bias.map_or(-1.0, |b| b as f64),
                f.fan_in as f64,
                f.fan_out as f64,
            ]);
            s.extend(&f.input);
            s.extend(&f.output);
        }
        match &self.diagonal {
            Some(d) => {
                s.push(d.len() as f64);
                s.extend(d);
            }
            None => s.push(-1.0),
        }
        s
    }

    fn load_state(&mut self, state: &[f64]) -> CoreResult<()> {
        if state.is_empty() {
            return Ok(()); // a checkpoint written before any update
        }
        let bad = |what: &str| CoreError::InvalidArgument {
            name: "K-FAC preconditioner state",
            value: what.to_string(),
            allowed: "a state written by KroneckerFactored::state",
        };
        let as_count = |v: f64, what: &str| {
            if v >= 0.0 && v.fract() == 0.0 && v < 1e15 {
                Ok(v as usize)
            } else {
                Err(bad(&format!("{what} = {v}")))
            }
        };
        let mut it = state.iter().copied();
        let mut next = |what: &str| it.next().ok_or_else(|| bad(&format!("truncated at {what}")));
        let updates = as_count(next("updates")?, "updates")?;
        let damping = next("damping")?;
        let layers = as_count(next("layers")?, "layers")?;
        let mut averages = Vec::new();
        for _ in 0..layers {
            let weight = as_count(next("weight")?, "weight")?;
            let bias = next("bias")?;
            let bias = if bias == -1.0 {
                None
            } else {
                Some(as_count(bias, "bias")?)
            };
            let fan_in = as_count(next("fan_in")?, "fan_in")?;
            let fan_out = as_count(next("fan_out")?, "fan_out")?;
            let rows = fan_in + usize::from(bias.is_some());
            let mut take = |n: usize, what: &str| -> CoreResult<Vec<f64>> { (0..n).map(|_| next(what)).collect() };
            let input = take(rows.saturating_mul(rows), "A")?;
            let output = take(fan_out.saturating_mul(fan_out), "G")?;
            averages.push(KroneckerFactor {
                weight,
                bias,
                fan_in,
                fan_out,
                input,
                output,
            });
        }
        let len = next("diagonal")?;
        let diagonal = if len == -1.0 {
            None
        } else {
            let n = as_count(len, "diagonal length")?;
            Some((0..n).map(|_| next("diagonal")).collect::<CoreResult<Vec<f64>>>()?)
        };
        if next("end").is_ok() {
            return Err(bad("trailing values"));
        }
        if !damping.is_finite() || damping < 0.0 {
            return Err(bad(&format!("damping = {damping}")));
        }
        let n = diagonal.as_ref().map_or(usize::MAX, Vec::len);
        for f in &averages {
            f.validate(n)?;
        }
        self.updates = updates;
        self.averages = averages;
        self.diagonal = diagonal;
        if self.averages.is_empty() && self.diagonal.is_none() {
            self.blocks.clear();
            self.fallback = None;
            self.damping = damping;
            return Ok(());
        }
        self.rebuild(damping)
    }
}

/// [`HessianFree`](hf_core::HessianFree) on burn tensors as `config` says, the
/// Kronecker-factored preconditioner included
/// ([`PreconditionerKind::KroneckerFactored`](hf_core::PreconditionerKind::KroneckerFactored),
/// for parameters on `device` in `dtype`), which `HessianFree::new` cannot build.
///
/// # Errors
/// A [`hf_core::ConfigError`] naming the first invalid field.
pub fn hessian_free<B: Backend>(
    config: hf_core::HfConfig,
    device: &B::Device,
    dtype: burn::tensor::DType,
) -> Result<hf_core::HessianFree<ParamVector<B>>, hf_core::ConfigError> {
    match config.preconditioner {
        hf_core::PreconditionerKind::KroneckerFactored => {
            let kfac = KroneckerFactored::<B>::new(config.kronecker, device, dtype)?;
            hf_core::HessianFree::with_built_preconditioner(config, Box::new(kfac))
        }
        _ => hf_core::HessianFree::new(config),
    }
}
