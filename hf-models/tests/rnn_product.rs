//! The tanh RNN's own curvature products (`RnnSpec`'s `Network::jvp_then_vjp`, the
//! hand-derived R-operator) against the generic forward mode and against finite
//! differences, in f64, on every configuration the pathological tasks build: each
//! task's inputs, outputs, output steps and loss, with and without structural damping
//! (both distances).

use burn::backend::NdArray;
use burn::tensor::DType;
use hf_burn::{
    check_curvature, tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, Loss, ParamVector,
    StructuralDamping,
};
use hf_core::{CurvatureOperator, Vector};
use hf_models::{RnnSpec, SplitMix64, Task, TaskSpec};

type B = NdArray<f64>;

fn rel_err(a: &ParamVector<B>, b: &ParamVector<B>) -> f64 {
    let (a, b) = (a.to_vec(), b.to_vec());
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    num / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

/// The task's network (100 tanh units, as the presets build it), a short batch of its
/// data, and `θ`: the sparse initialization plus noise, so that some units saturate.
fn setup(task: Task) -> (Evaluator<B, RnnSpec, Loss, 3>, DataBatch<B, 3>, ParamVector<B>) {
    let device = Default::default();
    let spec_task = TaskSpec::new(task, 10).unwrap();
    let spec = RnnSpec {
        inputs: spec_task.input_dim(),
        hidden: 100,
        outputs: spec_task.output_dim(),
        output_steps: spec_task.output_steps(),
    };
    let mut rng = SplitMix64::new(task as u64 + 1);
    let data = spec_task.generate(3, &mut rng).unwrap();
    let wide = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let input = tensor_from_f64::<B, 3>(
        wide(&data.inputs),
        [data.cases, data.steps, spec.inputs],
        &device,
        DType::F64,
    );
    let rows = data.cases * data.rows_per_case;
    let target = tensor_from_f64::<B, 2>(wide(&data.targets), [rows, spec.outputs], &device, DType::F64);
    let batch = DataBatch::new(input, target).unwrap();
    let evaluator = Evaluator::new(spec.clone(), spec_task.loss(), &device)
        .unwrap()
        .with_network_products(true);
    let theta = ParamVector::from_module(&spec.sparse_init::<B>(7, &device, DType::F64)).unwrap();
    let p = theta.len();
    let jitter: Vec<f64> = (0..p).map(|_| 0.05 * rng.normal()).collect();
    let theta = ParamVector::new(theta.into_tensor() + tensor_from_f64(jitter, [p], &device, DType::F64));
    (evaluator, batch, theta)
}

#[test]
fn the_rnn_product_equals_forward_mode_and_finite_differences_on_every_task() {
    for task in Task::ALL {
        let (evaluator, batch, theta) = setup(task);
        let report = check_curvature(&evaluator, &theta, &batch, 2).unwrap();
        let own = report.network_product.expect("the RNN has its own product");
        assert!(own < 1e-12, "{task:?}: {report}");
        assert!(
            report.gauss_newton < 1e-6 && report.is_consistent(),
            "{task:?}: {report}"
        );
    }
}

#[test]
fn the_rnn_product_with_structural_damping_equals_forward_mode_on_every_task() {
    for task in Task::ALL {
        let (evaluator, batch, theta) = setup(task);
        let generic = evaluator.clone().with_network_products(false);
        let p = theta.len();
        let mut rng = SplitMix64::new(99);
        let v = ParamVector::new(tensor_from_f64(
            (0..p).map(|_| rng.normal()).collect(),
            [p],
            &Default::default(),
            DType::F64,
        ));
        for sd in [
            None,
            Some(StructuralDamping::squared_error(0.3)),
            Some(StructuralDamping::tanh_matching(0.3)),
        ] {
            let op = |ev| {
                let op =
                    CurvatureProduct::new(ev, theta.clone(), batch.clone(), CurvatureKind::GaussNewton, 0.7).unwrap();
                match sd {
                    Some(sd) => op.with_structural_damping(sd),
                    None => op,
                }
            };
            let (own, reference) = (op(&evaluator), op(&generic));
            let e = rel_err(&own.apply(&v).unwrap(), &reference.apply(&v).unwrap());
            assert!(e < 1e-12, "{task:?} {sd:?}: relative difference {e:e}");
            // Without damping terms, so that the structural part is not swamped by λv.
            let e = rel_err(
                &own.curvature_product(&v).unwrap(),
                &reference.curvature_product(&v).unwrap(),
            );
            assert!(e < 1e-12, "{task:?} {sd:?}: undamped, relative difference {e:e}");
        }
    }
}
