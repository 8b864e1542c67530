//! The one configuration of the HF optimizer, with Martens' defaults.

use serde::{Deserialize, Serialize};

use crate::cg::CgConfig;
use crate::damping::LevenbergMarquardt;
use crate::error::ConfigError;
use crate::lanczos::LanczosConfig;

/// How the step is controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Levenberg-Marquardt damping `λ` driven by `ρ`, CG, backtracking and a line
    /// search (Martens 2010). The default.
    #[default]
    Damped,
    /// A trust region `‖p‖_M ≤ Δ` driven by `ρ`, solved by Lanczos (GLTR). `λ` stays
    /// at [`HfConfig::initial_damping`]; unset, at 0: a pure trust-region method.
    TrustRegion,
}

/// Which quadratic model the reduction ratio `ρ` divides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RhoModel {
    /// `q(p)` without the damping terms, Tikhonov and structural (the L2 term kept), as
    /// in Martens' code ([`CurvatureOperator::damping_energy`](crate::CurvatureOperator::damping_energy)). The default.
    #[default]
    Undamped,
    /// `q(p)` with the damping term `½λ‖p‖²`, as in some later implementations.
    Damped,
}

/// Which preconditioner the optimizer builds unless one is supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreconditionerKind {
    /// No preconditioning.
    Identity,
    /// Martens' `(d + λ)^α` from the problem's diagonal estimate. The default.
    #[default]
    MartensDiagonal,
    /// K-FAC's `(A + π√λ I)⁻¹ ⊗ (G + √λ/π I)⁻¹` per affine layer
    /// ([`HfConfig::kronecker`]; Martens & Grosse 2015). It works on a backend's
    /// tensors: build the optimizer with hf-burn's `hessian_free`, not
    /// [`HessianFree::new`](crate::HessianFree::new).
    KroneckerFactored,
}

/// Armijo backtracking line search on the chosen CG step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineSearchConfig {
    /// Sufficient-decrease constant `c` in `f(θ + αp) ≤ f(θ) + c α gᵀp`. Default `1e-2`.
    pub armijo_c: f64,
    /// Step shrink factor per try. Default `0.8`.
    pub shrink: f64,
    /// Tries before the step is rejected. Default `60`.
    pub max_tries: usize,
}

impl Default for LineSearchConfig {
    fn default() -> Self {
        Self {
            armijo_c: 1e-2,
            shrink: 0.8,
            max_tries: 60,
        }
    }
}

/// The trust-region radius rule (trust-region mode only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustRegionConfig {
    /// Initial radius `Δ₀`. Default `1`.
    pub initial_radius: f64,
    /// Largest radius. Default `1e6`.
    pub max_radius: f64,
    /// A step is accepted when `ρ` exceeds this. Default `1e-4`.
    pub accept_above: f64,
    /// Below this `ρ` the radius shrinks to `shrink · ‖p‖_M`. Default `0.25`.
    pub shrink_below: f64,
    /// Above this `ρ`, with the step on the boundary, the radius grows. Default `0.75`.
    pub grow_above: f64,
    /// Default `0.25`.
    pub shrink: f64,
    /// Default `2`.
    pub grow: f64,
}

impl Default for TrustRegionConfig {
    fn default() -> Self {
        Self {
            initial_radius: 1.0,
            max_radius: 1e6,
            accept_above: 1e-4,
            shrink_below: 0.25,
            grow_above: 0.75,
            shrink: 0.25,
            grow: 2.0,
        }
    }
}

/// Every setting of [`HessianFree`](crate::HessianFree). The defaults are Martens'
/// (2010) except where a field says otherwise. Serializable with serde (JSON, TOML);
/// [`validate`](Self::validate) names the first invalid field and its allowed range.
///
/// ```
/// let cfg: hf_core::HfConfig = serde_json::from_str(r#"{ "initial_damping": 1.0, "cg": { "max_iterations": 50 } }"#).unwrap();
/// assert_eq!(cfg.cg.max_iterations, 50);
/// assert_eq!(cfg.warm_start_decay, 0.95);
/// let bad = hf_core::HfConfig { warm_start_decay: 1.5, ..cfg };
/// assert_eq!(bad.validate().unwrap_err().field, "warm_start_decay");
/// ```
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
/// - J. Martens and I. Sutskever, "Training deep and recurrent networks with
///   Hessian-free optimization", in Neural Networks: Tricks of the Trade, 2012.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HfConfig {
    /// Outer iterations in all: a resumed run stops when its state's iteration count
    /// reaches this. Default `100`.
    pub max_iterations: usize,
    /// Stop once this many seconds were spent in outer iterations in all (a resumed
    /// state's time included). Default none.
    pub time_budget_s: Option<f64>,
    /// Initial damping `λ₀`. Default none: chosen at the first iteration from the
    /// curvature's own scale, its mean eigenvalue `tr(G)/n` — the problem's estimate
    /// ([`Problem::curvature_scale`](crate::Problem::curvature_scale); hf-burn's is
    /// Hutchinson's, `vᵀGv/n` over random signs), or, when it has none, the curvature
    /// along the gradient `gᵀGg/gᵀg` — since a good `λ` is relative to the scale of
    /// the curvature, which no fixed number is for every model. Since the best `λ`
    /// can lie orders of magnitude from that scale (300× below on the README's MLP),
    /// the first iteration then searches by trial solves: down by factors of 10 while
    /// the step's reduction ratio stays at least [`LevenbergMarquardt::low`] (the
    /// damping rule would not raise `λ`) and its objective keeps falling, or, when the
    /// scale itself falls short, up by factors of 10 to the first `λ` that does not
    /// ([`INITIAL_DAMPING_TRIES`](crate::INITIAL_DAMPING_TRIES) solves at most) — a
    /// one-time cost of a few solves. (Should the first iteration fail before the
    /// curvature is measured, `λ` starts from 1.) Martens' autoencoders (the
    /// curvature averaged over the batch) used `45`, which hf's autoencoder presets
    /// keep. In trust-region mode `λ` stays where it starts, 0 when unset.
    pub initial_damping: Option<f64>,
    /// The Levenberg-Marquardt rule used unless another strategy is supplied.
    pub damping: LevenbergMarquardt,
    /// Damped or trust-region mode.
    pub mode: Mode,
    /// The CG solver (damped mode).
    pub cg: CgConfig,
    /// The Lanczos solver (trust-region mode).
    pub lanczos: LanczosConfig,
    /// The trust-region rule (trust-region mode).
    pub trust_region: TrustRegionConfig,
    /// CG starts from the previous solution times this factor `ζ`. Default `0.95`.
    pub warm_start_decay: f64,
    /// The preconditioner built unless one is supplied. Default Martens' diagonal.
    pub preconditioner: PreconditionerKind,
    /// Exponent `α` of Martens' diagonal preconditioner. Default `0.75`.
    pub preconditioner_exponent: f64,
    /// The Kronecker-factored preconditioner's settings (with
    /// [`PreconditionerKind::KroneckerFactored`]).
    pub kronecker: crate::kronecker::KroneckerConfig,
    /// Backtrack over the stored CG iterates. Default `true`.
    pub backtracking: bool,
    /// The Armijo line search.
    pub line_search: LineSearchConfig,
    /// The model in the denominator of `ρ`. Default undamped.
    pub rho_model: RhoModel,
    /// L2 weight cost `w`: the objective becomes `f(θ) + ½ w ‖θ‖²`. Default `0`.
    pub l2_weight: f64,
    /// Stop when `‖g‖` falls to this. Default `0` (never).
    pub gradient_tolerance: f64,
    /// Stop when the objective falls to this. Default none.
    pub target_objective: Option<f64>,
    /// Stop after this many failed steps in a row. Default `25`.
    pub max_consecutive_failures: usize,
}

impl Default for HfConfig {
    fn default() -> Self {
        Self {
            max_iterations: 100,
            time_budget_s: None,
            initial_damping: None,
            damping: LevenbergMarquardt::default(),
            mode: Mode::default(),
            cg: CgConfig::default(),
            lanczos: LanczosConfig::default(),
            trust_region: TrustRegionConfig::default(),
            warm_start_decay: 0.95,
            preconditioner: PreconditionerKind::default(),
            preconditioner_exponent: 0.75,
            kronecker: crate::kronecker::KroneckerConfig::default(),
            backtracking: true,
            line_search: LineSearchConfig::default(),
            rho_model: RhoModel::default(),
            l2_weight: 0.0,
            gradient_tolerance: 0.0,
            target_objective: None,
            max_consecutive_failures: 25,
        }
    }
}

fn check(ok: bool, field: &str, value: impl std::fmt::Display, allowed: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(field, value, allowed))
    }
}

impl HfConfig {
    /// Checks every field; the error names the first invalid one and its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(self.max_iterations > 0, "max_iterations", self.max_iterations, "≥ 1")?;
        if let Some(lambda) = self.initial_damping {
            check(
                lambda.is_finite() && lambda >= 0.0,
                "initial_damping",
                lambda,
                "finite and ≥ 0, or none (from the curvature's scale)",
            )?;
        }
        self.damping.validate("damping.")?;
        self.kronecker.validate("kronecker.")?;
        if self.mode == Mode::Damped && self.initial_damping == Some(0.0) {
            // λ only ever grows by a factor: from 0 it never would, and a run whose
            // steps fail would repeat the same failed step until it gives up.
            check(
                self.damping.min_damping > 0.0,
                "damping.min_damping",
                self.damping.min_damping,
                "> 0 when initial_damping is 0 (else λ could never grow after a failed step); or give \
                 initial_damping > 0",
            )?;
        }
        self.cg.validate("cg.")?;
        self.lanczos.validate("lanczos.")?;
        let tr = &self.trust_region;
        check(
            tr.initial_radius.is_finite() && tr.initial_radius > 0.0,
            "trust_region.initial_radius",
            tr.initial_radius,
            "finite and > 0",
        )?;
        check(
            tr.max_radius >= tr.initial_radius,
            "trust_region.max_radius",
            tr.max_radius,
            "≥ trust_region.initial_radius",
        )?;
        check(
            tr.accept_above.is_finite() && tr.accept_above < tr.shrink_below && tr.shrink_below < tr.grow_above,
            "trust_region.accept_above",
            format!(
                "{} (shrink_below {}, grow_above {})",
                tr.accept_above, tr.shrink_below, tr.grow_above
            ),
            "accept_above < shrink_below < grow_above",
        )?;
        check(
            tr.shrink > 0.0 && tr.shrink < 1.0,
            "trust_region.shrink",
            tr.shrink,
            "(0, 1)",
        )?;
        check(
            tr.grow.is_finite() && tr.grow > 1.0,
            "trust_region.grow",
            tr.grow,
            "finite and > 1",
        )?;
        check(
            (0.0..=1.0).contains(&self.warm_start_decay),
            "warm_start_decay",
            self.warm_start_decay,
            "[0, 1]",
        )?;
        check(
            self.preconditioner_exponent > 0.0 && self.preconditioner_exponent <= 1.0,
            "preconditioner_exponent",
            self.preconditioner_exponent,
            "(0, 1]",
        )?;
        let ls = &self.line_search;
        check(
            ls.armijo_c > 0.0 && ls.armijo_c < 1.0,
            "line_search.armijo_c",
            ls.armijo_c,
            "(0, 1)",
        )?;
        check(
            ls.shrink > 0.0 && ls.shrink < 1.0,
            "line_search.shrink",
            ls.shrink,
            "(0, 1)",
        )?;
        check(ls.max_tries > 0, "line_search.max_tries", ls.max_tries, "≥ 1")?;
        check(
            self.l2_weight.is_finite() && self.l2_weight >= 0.0,
            "l2_weight",
            self.l2_weight,
            "finite and ≥ 0",
        )?;
        check(
            self.gradient_tolerance.is_finite() && self.gradient_tolerance >= 0.0,
            "gradient_tolerance",
            self.gradient_tolerance,
            "finite and ≥ 0",
        )?;
        if let Some(t) = self.time_budget_s {
            check(t.is_finite() && t > 0.0, "time_budget_s", t, "finite and > 0")?;
        }
        if let Some(t) = self.target_objective {
            check(!t.is_nan(), "target_objective", t, "a number (not NaN)")?;
        }
        check(
            self.max_consecutive_failures > 0,
            "max_consecutive_failures",
            self.max_consecutive_failures,
            "≥ 1",
        )?;
        Ok(())
    }
}
