//! Run settings: the HF configuration plus what a training run needs around it, with
//! preset defaults overridden by a JSON or TOML file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use hf_burn::ProblemConfig;
use hf_core::HfConfig;
use hf_models::BatchSizes;

use crate::error::{CliError, Result};

/// Learning rate of Adam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamSettings {
    /// Step size. Default `1e-3`.
    pub learning_rate: f64,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self { learning_rate: 1e-3 }
    }
}

/// SGD with momentum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdSettings {
    /// Step size. Default `0.01`.
    pub learning_rate: f64,
    /// Momentum. Default `0.9`.
    pub momentum: f64,
}

impl Default for SgdSettings {
    fn default() -> Self {
        Self {
            learning_rate: 0.01,
            momentum: 0.9,
        }
    }
}

/// Everything a run can be told; `hf train --print-config` shows the effective values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Outer iterations (HF) or steps (Adam, SGD).
    pub iterations: usize,
    /// Evaluate the held-out error every this many iterations.
    pub eval_every: usize,
    /// Save a checkpoint every this many iterations (0: only at the end).
    pub checkpoint_every: usize,
    /// Stop after this many seconds of training, if set.
    pub time_budget_s: Option<f64>,
    /// Stop once the held-out error falls below this, if set (the pathological
    /// tasks' success criterion, say). Default none.
    #[serde(default)]
    pub target_held_out: Option<f64>,
    /// Gradient and curvature batch sizes.
    pub batches: BatchSizes,
    /// The Hessian-free optimizer.
    pub hf: HfConfig,
    /// Curvature, structural damping and preconditioner diagonal.
    pub problem: ProblemConfig,
    /// Adam (with `--optimizer adam`).
    pub adam: AdamSettings,
    /// SGD with momentum (with `--optimizer sgd`).
    pub sgd: SgdSettings,
}

impl RunConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.hf.validate().map_err(|e| {
            CliError::Config(format!(
                "invalid config: `hf.{}` = {} (allowed: {})",
                e.field, e.value, e.allowed
            ))
        })?;
        let bad = |field: &str, value: String, allowed: &str| {
            Err(CliError::Config(format!(
                "invalid config: `{field}` = {value} (allowed: {allowed})"
            )))
        };
        if self.iterations == 0 {
            return bad("iterations", "0".into(), "≥ 1");
        }
        if self.eval_every == 0 {
            return bad("eval_every", "0".into(), "≥ 1");
        }
        if self.batches.curvature == 0 {
            return bad("batches.curvature", "0".into(), "≥ 1");
        }
        if self.batches.gradient != 0 && self.batches.curvature > self.batches.gradient {
            return bad(
                "batches.curvature",
                self.batches.curvature.to_string(),
                "≤ batches.gradient",
            );
        }
        if let Some(t) = self.time_budget_s {
            if !(t.is_finite() && t > 0.0) {
                return bad("time_budget_s", t.to_string(), "finite and > 0");
            }
        }
        if let Some(t) = self.target_held_out {
            if !t.is_finite() {
                return bad("target_held_out", t.to_string(), "finite");
            }
        }
        if !(self.adam.learning_rate.is_finite() && self.adam.learning_rate > 0.0) {
            return bad(
                "adam.learning_rate",
                self.adam.learning_rate.to_string(),
                "finite and > 0",
            );
        }
        if !(self.sgd.learning_rate.is_finite() && self.sgd.learning_rate > 0.0) {
            return bad(
                "sgd.learning_rate",
                self.sgd.learning_rate.to_string(),
                "finite and > 0",
            );
        }
        if !(0.0..1.0).contains(&self.sgd.momentum) {
            return bad("sgd.momentum", self.sgd.momentum.to_string(), "[0, 1)");
        }
        if let Some(mu) = self.problem.structural_damping {
            if !(mu.is_finite() && mu >= 0.0) {
                return bad("problem.structural_damping", mu.to_string(), "finite and ≥ 0");
            }
        }
        Ok(())
    }

    /// Overrides these settings by the fields present in `file` (JSON, or TOML for a
    /// `.toml` file): a partial file changes only what it names; an unknown field is
    /// an error that names it.
    pub fn overridden_by(self, file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Config(format!("cannot read {}: {e}", file.display())))?;
        let patch: serde_json::Value = if file.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| CliError::Config(format!("{} is not valid TOML: {e}", file.display())))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| CliError::Config(format!("{} is not valid JSON: {e}", file.display())))?
        };
        let mut base = serde_json::to_value(&self).expect("settings serialize");
        merge(&mut base, patch);
        let merged: RunConfig =
            serde_json::from_value(base).map_err(|e| CliError::Config(format!("{}: {e}", file.display())))?;
        Ok(merged)
    }
}

/// Deep-merges `patch` into `base`: objects field by field, anything else replaced.
fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}
