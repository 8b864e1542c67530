//! Builds each preset's network, data and held-out measure on backend `B`, then trains.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::DType;

use hf_burn::{tensor_from_f64, Loss, ParamVector};
use hf_models::{
    curves, load_mnist, one_hot, read_idx, ClassificationError, DataError, DeviceDataset, MinibatchSource,
    ReconstructionError, RnnSpec, SequenceZeroOneLoss, Split, TaskSource,
};

use crate::error::Result;
use crate::preset::{Experiment, ImageSource};
use crate::train::{train, Claim, RunOptions, Setup, Trained};

/// Hidden units of the RNN presets (as in the papers).
const RNN_HIDDEN: usize = 100;

/// Held-out sequences for the RNN presets' zero-one loss, spread over the task's
/// lengths (enough to tell 1% from 0%).
const RNN_TEST_CASES: usize = 1000;

/// The papers' RNN for a task: 100 tanh units, outputs where the task reads them.
pub fn rnn_spec(task: &hf_models::TaskSpec) -> RnnSpec {
    RnnSpec {
        inputs: task.input_dim(),
        hidden: RNN_HIDDEN,
        outputs: task.output_dim(),
        output_steps: task.output_steps(),
    }
}

/// Held-out cases evaluated for the image presets (a fixed prefix of the test set).
const IMAGE_TEST_CASES: usize = 2000;

fn dataset<B: Backend>(
    pixels: &[f32],
    features: usize,
    targets: Vec<f64>,
    width: usize,
    device: &B::Device,
    dtype: DType,
) -> Result<DeviceDataset<B, 2>> {
    let n = pixels.len() / features;
    let x = tensor_from_f64(
        pixels.iter().map(|&p| f64::from(p)).collect(),
        [n, features],
        device,
        dtype,
    );
    let t = tensor_from_f64(targets, [n, width], device, dtype);
    Ok(DeviceDataset::new(x, t)?)
}

fn images(source: &ImageSource, seed: u64) -> Result<(Vec<f32>, Vec<f32>, usize)> {
    Ok(match source {
        ImageSource::Curves { train, held_out } => {
            let all = curves::generate(train + held_out, seed)?;
            let split = train * curves::SIDE * curves::SIDE;
            (
                all[..split].to_vec(),
                all[split..].to_vec(),
                curves::SIDE * curves::SIDE,
            )
        }
        ImageSource::Mnist(dir) => {
            let train = load_mnist(dir, Split::Train)?;
            let test = load_mnist(dir, Split::Test)?;
            let f = train.features();
            let keep = IMAGE_TEST_CASES.min(test.len()) * f;
            (train.pixels, test.pixels[..keep].to_vec(), f)
        }
        ImageSource::Faces(dir) => faces(dir)?,
    })
}

/// FACES as an IDX file of 25 × 25 images; the last tenth is held out.
fn faces(dir: &Path) -> Result<(Vec<f32>, Vec<f32>, usize)> {
    let path = ["faces-images-idx3-ubyte.gz", "faces-images-idx3-ubyte"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::Missing {
            path: dir.join("faces-images-idx3-ubyte"),
            hint: "the FACES set (25×25 images) is not distributed with hf: convert it to an IDX file of unsigned \
                   bytes named faces-images-idx3-ubyte(.gz) and pass its directory with --data-dir"
                .into(),
        })?;
    let idx = read_idx(&path)?;
    if idx.dims.len() != 3 || idx.dims[1] * idx.dims[2] != 625 {
        return Err(DataError::Corrupt {
            path,
            reason: format!("dimensions {:?}, expected [count, 25, 25]", idx.dims),
        }
        .into());
    }
    let pixels: Vec<f32> = idx.data.iter().map(|&b| f32::from(b) / 255.0).collect();
    let split = (idx.dims[0] - idx.dims[0] / 10) * 625;
    Ok((pixels[..split].to_vec(), pixels[split..].to_vec(), 625))
}

/// Trains `experiment` on backend `B`: reads and checks its data and builds its
/// network, then `claim`s the run directory and trains.
pub fn run<B: Backend>(
    opts: &RunOptions,
    experiment: Experiment,
    device: &B::Device,
    dtype: DType,
    claim: Claim<'_>,
) -> Result<Trained> {
    let cfg = &opts.config;
    let batches = cfg.batches_for(opts.optimizer);
    let seed = opts.seed;
    match experiment {
        Experiment::Autoencoder(spec, source) => {
            let (train_px, test_px, features) = images(&source, seed)?;
            let as_targets = |px: &[f32]| px.iter().map(|&p| f64::from(p)).collect::<Vec<_>>();
            let train_set = dataset::<B>(&train_px, features, as_targets(&train_px), features, device, dtype)?;
            let test = dataset::<B>(&test_px, features, as_targets(&test_px), features, device, dtype)?;
            let loss = spec.loss();
            let initial = ParamVector::from_module(&spec.sparse_init::<B>(seed, device, dtype))?;
            let test = test.all().clone();
            let setup = Setup {
                network: spec,
                loss,
                initial,
                source: Box::new(MinibatchSource::new(train_set, batches, seed)?),
                held_out: Box::new(ReconstructionError::new(test)),
            };
            train(opts, setup, device, claim)
        }
        Experiment::Classifier(spec, dir) => {
            let train_set = load_mnist(&dir, Split::Train)?;
            let test_set = load_mnist(&dir, Split::Test)?;
            let f = train_set.features();
            let keep = IMAGE_TEST_CASES.min(test_set.len());
            let train_data = dataset::<B>(&train_set.pixels, f, one_hot(&train_set.labels, 10), 10, device, dtype)?;
            let test = dataset::<B>(
                &test_set.pixels[..keep * f],
                f,
                one_hot(&test_set.labels[..keep], 10),
                10,
                device,
                dtype,
            )?;
            let initial = ParamVector::from_module(&spec.sparse_init::<B>(seed, device, dtype))?;
            let test = test.all().clone();
            let setup = Setup {
                loss: spec.loss(),
                network: spec,
                initial,
                source: Box::new(MinibatchSource::new(train_data, batches, seed)?),
                held_out: Box::new(ClassificationError::new(test)),
            };
            train(opts, setup, device, claim)
        }
        Experiment::Rnn(task) => {
            let spec = rnn_spec(&task);
            let initial = ParamVector::from_module(&spec.sparse_init::<B>(seed, device, dtype))?;
            let source = TaskSource::<B>::new(task, batches, seed, device, dtype)?;
            // Fresh sequences over the whole length range, from their own seed.
            let test =
                TaskSource::<B>::new(task, cfg.batches, seed ^ 0x5EED_7E57, device, dtype)?.test_set(RNN_TEST_CASES)?;
            let loss: Loss = task.loss();
            let setup = Setup {
                network: spec,
                loss,
                initial,
                source: Box::new(source),
                held_out: Box::new(SequenceZeroOneLoss::new(task, test)),
            };
            train(opts, setup, device, claim)
        }
    }
}
