//! Run settings: the HF configuration plus what a training run needs around it, with
//! preset defaults overridden by a JSON or TOML file.

use std::path::Path;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use hf_burn::train::TrainerConfig;
use hf_burn::ProblemConfig;
use hf_core::HfConfig;
use hf_models::BatchSizes;

use crate::error::{CliError, Result};

/// The optimizer of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Hessian-free optimization.
    Hf,
    /// burn's Adam.
    Adam,
    /// burn's SGD with momentum.
    Sgd,
}

/// Cases in a first-order method's minibatch, by default: what Adam's and SGD's
/// users expect, in `train` and `bench` alike.
pub const FIRST_ORDER_BATCH: usize = 100;

/// Adam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamSettings {
    /// Step size. Default `1e-3`.
    pub learning_rate: f64,
    /// Cases per step (the gradient batch of an Adam run; `batches` is HF's).
    /// Default `100`.
    pub batch_size: usize,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            batch_size: FIRST_ORDER_BATCH,
        }
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
    /// Cases per step (the gradient batch of an SGD run; `batches` is HF's).
    /// Default `100`.
    pub batch_size: usize,
}

impl Default for SgdSettings {
    fn default() -> Self {
        Self {
            learning_rate: 0.01,
            momentum: 0.9,
            batch_size: FIRST_ORDER_BATCH,
        }
    }
}

/// Everything a run can be told; `hessfree train --print-config` shows the effective values.
///
/// The run's length is the optimizer's: `hf.max_iterations` outer iterations (steps
/// for Adam and SGD) and `hf.time_budget_s` seconds, both counted over the whole run
/// when it is resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Held-out evaluation, its target, and checkpoints.
    pub trainer: TrainerConfig,
    /// Gradient and curvature batch sizes.
    pub batches: BatchSizes,
    /// The Hessian-free optimizer, with the run's iteration and time limits.
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
        let named = |prefix: &str, e: hf_core::ConfigError| {
            CliError::Config(format!(
                "invalid config: `{prefix}{}` = {} (allowed: {})",
                e.field, e.value, e.allowed
            ))
        };
        self.hf.validate().map_err(|e| named("hf.", e))?;
        self.trainer.validate().map_err(|e| match e {
            hf_burn::Error::Config(e) => named("trainer.", e),
            other => CliError::Config(other.to_string()),
        })?;
        let bad = |field: &str, value: String, allowed: &str| {
            Err(CliError::Config(format!(
                "invalid config: `{field}` = {value} (allowed: {allowed})"
            )))
        };
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
        for (field, size) in [
            ("adam.batch_size", self.adam.batch_size),
            ("sgd.batch_size", self.sgd.batch_size),
        ] {
            if size == 0 {
                return bad(field, "0".into(), "≥ 1");
            }
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

    /// The batch sizes of a run by `optimizer`: `batches` for HF; for Adam and SGD,
    /// minibatches of their `batch_size` (the curvature batch, unused, the same).
    pub fn batches_for(&self, optimizer: OptimizerKind) -> BatchSizes {
        let minibatch = |n: usize| BatchSizes {
            gradient: n,
            curvature: n,
        };
        match optimizer {
            OptimizerKind::Hf => self.batches,
            OptimizerKind::Adam => minibatch(self.adam.batch_size),
            OptimizerKind::Sgd => minibatch(self.sgd.batch_size),
        }
    }

    /// Sets one setting by its dotted path, `value` read as JSON (a bare word that is
    /// not JSON is taken as a string): `hf.cg.max_iterations=50`,
    /// `trainer.target_held_out=0.01`, `problem.curvature=fisher`.
    pub fn with_assignment(self, assignment: &str) -> Result<Self> {
        let Some((path, value)) = assignment.split_once('=') else {
            return Err(CliError::Config(format!(
                "--set {assignment}: expected path.to.key=value (see --print-config for the paths)"
            )));
        };
        let value: serde_json::Value =
            serde_json::from_str(value.trim()).unwrap_or_else(|_| serde_json::Value::String(value.trim().into()));
        let mut base = serde_json::to_value(&self).expect("settings serialize");
        let mut slot = &mut base;
        for key in path.trim().split('.') {
            slot = match slot.as_object_mut().and_then(|o| o.get_mut(key)) {
                Some(s) => s,
                None => {
                    return Err(CliError::Config(format!(
                        "--set {assignment}: `{path}` is not a setting (`{key}` is unknown; see --print-config)"
                    )))
                }
            };
        }
        *slot = value;
        serde_json::from_value(base).map_err(|e| CliError::Config(format!("--set {assignment}: {e}")))
    }

    /// Overrides these settings by the fields present in `file` (JSON, or TOML for a
    /// `.toml` file): a partial file changes only what it names; an unknown field is
    /// an error that names it.
    pub fn overridden_by(self, file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Config(format!("cannot read {}: {e}", file.display())))?;
        let patch: serde_json::Value = if file.extension().is_some_and(|e| e == "toml") {
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| CliError::Config(format!("{} is not valid TOML: {e}", file.display())))?;
            // JSON has no NaN or infinity: converted, they would become `null`, which
            // reads as "unset" for an optional setting. No setting takes them.
            if let Some(path) = non_finite(&toml::Value::Table(table.clone()), "") {
                return Err(CliError::Config(format!(
                    "{}: `{path}` is not a finite number; no setting takes nan or inf (leave an optional setting \
                     out to unset it)",
                    file.display()
                )));
            }
            serde_json::to_value(table)
                .map_err(|e| CliError::Config(format!("{}: cannot read its values ({e})", file.display())))?
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

/// The dotted path of the first non-finite float in `value`, if any.
fn non_finite(value: &toml::Value, path: &str) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        toml::Value::Float(x) if !x.is_finite() => Some(path.to_string()),
        toml::Value::Table(t) => t.iter().find_map(|(k, v)| non_finite(v, &join(k))),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| non_finite(v, &join(&i.to_string()))),
        _ => None,
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

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Settings built here, not from a preset (the presets build on this module).
    fn base() -> RunConfig {
        RunConfig {
            trainer: TrainerConfig::default(),
            batches: BatchSizes {
                gradient: 0,
                curvature: 100,
            },
            hf: HfConfig::default(),
            problem: ProblemConfig::default(),
            adam: AdamSettings::default(),
            sgd: SgdSettings::default(),
        }
    }

    /// A settings file in a directory of its own, removed on drop.
    struct SettingsFile(std::path::PathBuf);

    impl SettingsFile {
        fn new(name: &str, bytes: &[u8]) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "hf-settings-{}-{}",
                std::process::id(),
                std::thread::current().name().unwrap_or("t").replace(':', "_")
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            Self(path)
        }
    }

    impl Drop for SettingsFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    fn parse(name: &str, text: &str) -> Result<RunConfig> {
        let file = SettingsFile::new(name, text.as_bytes());
        base().overridden_by(&file.0)
    }

    #[test]
    fn a_typo_at_any_depth_is_refused_in_every_path() {
        for (name, text) in [
            ("a.json", r#"{"hf":{"cg":{"max_iteration":5}}}"#),
            ("a.toml", "[problem]\ncurvatur = \"fisher\"\n"),
            ("a.toml", "[hf.line_search]\nmax_trys = 3\n"),
            ("a.toml", "[hf.damping]\nboots = 2.0\n"),
            ("a.toml", "[hf.trust_region]\ngrowth = 2.0\n"),
            ("a.toml", "[hf.lanczos]\nbogus = 1\n"),
            (
                "a.toml",
                "[problem.diagonal]\nkind = \"squared_gradients\"\nmax_case = 5\n",
            ),
            ("a.toml", "[trainer]\neval_evry = 2\n"),
            ("a.toml", "[batches]\ngradinet = 2\n"),
            ("a.toml", "[adam]\nlr = 0.1\n"),
        ] {
            let e = parse(name, text).unwrap_err().to_string();
            assert!(e.contains("unknown field"), "{text}: {e}");
        }
        let e = base()
            .with_assignment(r#"hf.cg={"max_iterations":5,"bogus":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }

    #[test]
    fn nan_and_infinity_are_refused_not_read_as_unset() {
        for text in [
            "[trainer]\ntarget_held_out = nan\n",
            "[hf]\ntime_budget_s = inf\n",
            "[hf]\ntarget_objective = -inf\n",
            "[hf.cg]\nmax_iterations = 5\n[adam]\nlearning_rate = nan\n",
        ] {
            let e = parse("n.toml", text).unwrap_err().to_string();
            assert!(e.contains("not a finite number"), "{text}: {e}");
        }
        let e = parse("n.toml", "[trainer]\ntarget_held_out = nan\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`trainer.target_held_out`"), "{e}");
    }

    /// Mutations of a valid TOML file, and random assignments.
    fn valid_toml() -> &'static str {
        "[hf]\nmax_iterations = 5\ninitial_damping = 1.5\n[hf.cg]\nmax_iterations = 20\n\
         [trainer]\ntarget_held_out = 0.5\n[problem]\ncurvature = \"gauss_newton\"\n"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn mutated_settings_files_never_panic(
            mutations in vec((any::<usize>(), any::<u8>()), 0..5),
            toml in any::<bool>(),
        ) {
            let mut bytes = valid_toml().as_bytes().to_vec();
            if !toml {
                let v: toml::Table = toml::from_str(valid_toml()).unwrap();
                bytes = serde_json::to_vec(&v).unwrap();
            }
            let n = bytes.len();
            for (i, b) in mutations {
                bytes[i % n] = b;
            }
            let file = SettingsFile::new(if toml { "m.toml" } else { "m.json" }, &bytes);
            if let Ok(cfg) = base().overridden_by(&file.0) {
                // Whatever parses either validates or names its bad field.
                if let Err(e) = cfg.validate() {
                    prop_assert!(e.to_string().contains("invalid config"), "{}", e);
                }
            }
        }

        #[test]
        fn random_assignments_never_panic(path in "[a-z_.]{0,30}", value in ".{0,20}") {
            let _ = base().with_assignment(&format!("{path}={value}"));
        }

        #[test]
        fn random_files_never_panic(bytes in vec(any::<u8>(), 0..200), toml in any::<bool>()) {
            let file = SettingsFile::new(if toml { "r.toml" } else { "r.json" }, &bytes);
            let _ = base().overridden_by(&file.0);
        }
    }
}
