//! Networks built only from unmodified `burn::nn` modules — `Linear` (its fused
//! `forward`), `Conv2d` with `MaxPool2d`, `Lstm`, `Gru`, `MultiHeadAttention`,
//! `LayerNorm`, `Embedding`, and burn's `sigmoid`, `gelu` and `relu` — get Gauss-Newton
//! and Hessian products by forward mode that match explicit finite-difference matrices
//! in f64 (relative error ≤ 1e-6), on burn-ndarray; and one of them trains with HF.

use burn::backend::{Autodiff, NdArray};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::gru::{Gru, GruConfig};
use burn::nn::lstm::{Lstm, LstmConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{gelu, relu, sigmoid};
use burn::tensor::DType;
use hf_burn::dual::{self, Dual};
use hf_burn::{
    tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, Loss, MatchingLoss, Network, Outputs,
    ParamVector, SquaredError,
};
use hf_core::CurvatureOperator;

type Nd = NdArray<f64>;

fn t<const D: usize>(values: Vec<f64>, shape: [usize; D]) -> Tensor<Nd, D> {
    tensor_from_f64(values, shape, &Default::default(), DType::F64)
}

fn host<const D: usize>(x: Tensor<Nd, D>) -> Vec<f64> {
    x.into_data().iter::<f64>().collect()
}

fn wave(n: usize, seed: f64, scale: f64) -> Vec<f64> {
    (0..n).map(|i| scale * ((i as f64 + 1.0) * 0.7 + seed).sin()).collect()
}

fn rel(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    num / want.iter().map(|b| b * b).sum::<f64>().sqrt()
}

/// The Gauss-Newton matrix `Jᵀ H_L J / R` with `J` by central differences, and the
/// Hessian by central differences of gradients, times `v`; against the operators.
fn check<N: Network<D>, const D: usize>(name: &str, net: N, loss: Loss, batch: DataBatch<Nd, D>) {
    let device = Default::default();
    let ev = Evaluator::new(net.clone(), loss, &device).unwrap();
    let theta0 = ev.templates().layout().gather(&net.init::<Nd>(&device)).unwrap();
    let theta0 = ParamVector::new(theta0).to_vec();
    let p = theta0.len();
    let h = 1e-5;
    let at = |theta: &[f64]| ParamVector::new(t(theta.to_vec(), [p]));
    let shifted = |i: usize, s: f64| {
        let mut x = theta0.clone();
        x[i] += s * h;
        x
    };
    // The differences are taken of the function as the dual backend's primal computes
    // it: burn-ndarray's own sigmoid (in the LSTM and GRU gates) rounds through f32, so
    // differences of it are good to 1e-3 only.
    let templates = ev.templates();
    let outputs = |theta: &[f64]| {
        let theta = dual::constant(t(theta.to_vec(), [p]));
        host(dual::primal(
            templates
                .forward_dual(&theta, dual::constant(batch.input.clone()))
                .unwrap()
                .z,
        ))
    };
    let gradient = |theta: &[f64]| {
        let theta: Tensor<Autodiff<Dual<Nd>>, 1> =
            Tensor::from_inner(dual::constant(t(theta.to_vec(), [p]))).require_grad();
        let input = Tensor::from_inner(dual::constant(batch.input.clone()));
        let z = templates.forward_inner_dual(&theta, input).unwrap().z;
        let objective = loss
            .per_case(z, Tensor::from_inner(dual::constant(batch.target.clone())))
            .mean();
        host(dual::primal(theta.grad(&objective.backward()).unwrap()))
    };
    let z0 = ev.outputs(&at(&theta0), batch.input.clone()).unwrap().z;
    let [rows, cols] = z0.dims();
    // Columns of J (∂z/∂θ_i) and of H (∂g/∂θ_i).
    let mut jac = Vec::with_capacity(p);
    let mut hess = Vec::with_capacity(p);
    for i in 0..p {
        let (zp, zm) = (outputs(&shifted(i, 1.0)), outputs(&shifted(i, -1.0)));
        jac.push(zp.iter().zip(&zm).map(|(a, b)| (a - b) / (2.0 * h)).collect::<Vec<_>>());
        let (gp, gm) = (gradient(&shifted(i, 1.0)), gradient(&shifted(i, -1.0)));
        hess.push(gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * h)).collect::<Vec<_>>());
    }
    let gn = CurvatureProduct::new(&ev, at(&theta0), batch.clone(), CurvatureKind::GaussNewton, 0.0).unwrap();
    let hv = CurvatureProduct::new(&ev, at(&theta0), batch.clone(), CurvatureKind::Hessian, 0.0).unwrap();
    for seed in [0.3, 1.9] {
        let v = wave(p, seed, 1.0);
        // J v, then H_L (J v) / R through the loss, then Jᵀ.
        let jv: Vec<f64> = (0..rows * cols)
            .map(|k| (0..p).map(|i| jac[i][k] * v[i]).sum())
            .collect();
        let w = host(loss.hessian_product(z0.clone(), t(jv, [rows, cols])))
            .into_iter()
            .map(|x| x / rows as f64);
        let w: Vec<f64> = w.collect();
        let want_gn: Vec<f64> = (0..p)
            .map(|i| jac[i].iter().zip(&w).map(|(a, b)| a * b).sum())
            .collect();
        let want_h: Vec<f64> = (0..p).map(|i| (0..p).map(|j| hess[j][i] * v[j]).sum()).collect();
        let got_gn = gn.apply(&at(&v)).unwrap().to_vec();
        let got_h = hv.apply(&at(&v)).unwrap().to_vec();
        let (e_gn, e_h) = (rel(&got_gn, &want_gn), rel(&got_h, &want_h));
        assert!(e_gn <= 1e-6, "{name}: G v off by {e_gn:e} ({p} parameters)");
        assert!(e_h <= 1e-6, "{name}: H v off by {e_h:e} ({p} parameters)");
    }
}

/// Linear layers through their own `forward`, with burn's sigmoid, gelu and relu.
#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    a: Linear<B>,
    b: Linear<B>,
    c: Linear<B>,
    d: Linear<B>,
}

#[derive(Clone, Debug)]
struct MlpSpec;

impl Network<2> for MlpSpec {
    type Module<B: Backend> = Mlp<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        Mlp {
            a: LinearConfig::new(3, 5).init(device),
            b: LinearConfig::new(5, 4).init(device),
            c: LinearConfig::new(4, 4).init(device),
            d: LinearConfig::new(4, 2).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &Mlp<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let h = sigmoid(m.a.forward(x));
        let h = gelu(m.b.forward(h));
        let h = relu(m.c.forward(h));
        Outputs::new(m.d.forward(h))
    }
}

/// Conv2d → relu → MaxPool2d → Linear on 1 × 6 × 6 images.
#[derive(Module, Debug)]
struct ConvNet<B: Backend> {
    conv: Conv2d<B>,
    pool: MaxPool2d,
    out: Linear<B>,
}

#[derive(Clone, Debug)]
struct ConvSpec;

impl Network<2> for ConvSpec {
    type Module<B: Backend> = ConvNet<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> ConvNet<B> {
        ConvNet {
            conv: Conv2dConfig::new([1, 2], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            out: LinearConfig::new(18, 2).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &ConvNet<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let n = x.dims()[0];
        let h = m.pool.forward(relu(m.conv.forward(x.reshape([n, 1, 6, 6]))));
        Outputs::new(m.out.forward(h.reshape([n, 18])))
    }
}

/// A recurrent layer (LSTM or GRU) over `[cases, time, 2]`, a linear read-out at every step.
#[derive(Module, Debug)]
struct Recurrent<B: Backend> {
    lstm: Option<Lstm<B>>,
    gru: Option<Gru<B>>,
    out: Linear<B>,
}

#[derive(Clone, Debug)]
struct RecurrentSpec {
    lstm: bool,
}

impl Network<3> for RecurrentSpec {
    type Module<B: Backend> = Recurrent<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Recurrent<B> {
        Recurrent {
            lstm: self.lstm.then(|| LstmConfig::new(2, 3, true).init(device)),
            gru: (!self.lstm).then(|| GruConfig::new(2, 3, true).init(device)),
            out: LinearConfig::new(3, 2).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &Recurrent<B>, x: Tensor<B, 3>) -> Outputs<B> {
        let [n, steps, _] = x.dims();
        let h = match (&m.lstm, &m.gru) {
            (Some(lstm), _) => lstm.forward(x, None).0,
            (_, Some(gru)) => gru.forward(x, None),
            _ => unreachable!("one of the two is built"),
        };
        Outputs::new(m.out.forward(h.reshape([n * steps, 3])))
    }
}

/// Self-attention (2 heads, no dropout) → LayerNorm → Linear over `[cases, time, 4]`.
#[derive(Module, Debug)]
struct Attention<B: Backend> {
    mha: MultiHeadAttention<B>,
    norm: LayerNorm<B>,
    out: Linear<B>,
}

#[derive(Clone, Debug)]
struct AttentionSpec;

impl Network<3> for AttentionSpec {
    type Module<B: Backend> = Attention<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Attention<B> {
        Attention {
            mha: MultiHeadAttentionConfig::new(4, 2).with_dropout(0.0).init(device),
            norm: LayerNormConfig::new(4).init(device),
            out: LinearConfig::new(4, 2).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &Attention<B>, x: Tensor<B, 3>) -> Outputs<B> {
        let [n, steps, d] = x.dims();
        let h = m.norm.forward(m.mha.forward(MhaInput::self_attn(x)).context);
        Outputs::new(m.out.forward(h.reshape([n * steps, d])))
    }
}

/// Token ids (as floats) → Embedding → Linear over the concatenated embeddings.
#[derive(Module, Debug)]
struct Embedded<B: Backend> {
    embedding: Embedding<B>,
    out: Linear<B>,
}

#[derive(Clone, Debug)]
struct EmbeddingSpec;

impl Network<2> for EmbeddingSpec {
    type Module<B: Backend> = Embedded<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Embedded<B> {
        Embedded {
            embedding: EmbeddingConfig::new(5, 3).init(device),
            out: LinearConfig::new(9, 2).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &Embedded<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let n = x.dims()[0];
        let e = m.embedding.forward(x.int());
        Outputs::new(m.out.forward(e.reshape([n, 9]).tanh()))
    }
}

#[test]
fn linear_with_burn_activations() {
    Nd::seed(&Default::default(), 1);
    let batch = DataBatch::new(t(wave(15, 0.1, 1.5), [5, 3]), t(wave(10, 2.0, 1.0), [5, 2])).unwrap();
    check("Linear + sigmoid/gelu/relu", MlpSpec, Loss::SquaredError, batch);
}

#[test]
fn conv2d_with_max_pooling() {
    Nd::seed(&Default::default(), 2);
    let batch = DataBatch::new(t(wave(108, 0.4, 1.0), [3, 36]), t(wave(6, 1.0, 1.0), [3, 2])).unwrap();
    check("Conv2d + MaxPool2d", ConvSpec, Loss::SquaredError, batch);
}

#[test]
fn lstm() {
    Nd::seed(&Default::default(), 3);
    let batch = DataBatch::new(t(wave(24, 0.2, 1.0), [3, 4, 2]), t(wave(24, 1.3, 1.0), [12, 2])).unwrap();
    check("Lstm", RecurrentSpec { lstm: true }, Loss::SquaredError, batch);
}

#[test]
fn gru() {
    Nd::seed(&Default::default(), 4);
    let batch = DataBatch::new(t(wave(24, 0.5, 1.0), [3, 4, 2]), t(wave(24, 0.9, 1.0), [12, 2])).unwrap();
    check("Gru", RecurrentSpec { lstm: false }, Loss::SquaredError, batch);
}

#[test]
fn multi_head_attention_with_layer_norm() {
    Nd::seed(&Default::default(), 5);
    let batch = DataBatch::new(t(wave(24, 0.7, 1.0), [2, 3, 4]), t(wave(12, 0.2, 1.0), [6, 2])).unwrap();
    check(
        "MultiHeadAttention + LayerNorm",
        AttentionSpec,
        Loss::SquaredError,
        batch,
    );
}

#[test]
fn embedding_with_softmax_cross_entropy() {
    Nd::seed(&Default::default(), 6);
    let ids: Vec<f64> = [0, 3, 4, 1, 1, 2, 4, 0, 3, 2, 2, 1].iter().map(|&i| i as f64).collect();
    let targets = vec![1.0, 0.0, 0.0, 1.0, 0.3, 0.7, 1.0, 0.0];
    let batch = DataBatch::new(t(ids, [4, 3]), t(targets, [4, 2])).unwrap();
    check("Embedding", EmbeddingSpec, Loss::SoftmaxCrossEntropy, batch);
}

#[test]
fn an_ordinary_burn_model_trains_with_hf() {
    use hf_burn::{BurnProblem, FixedBatches, ProblemConfig};
    use hf_core::{HessianFree, HfConfig};

    Nd::seed(&Default::default(), 7);
    let device = Default::default();
    // Two inputs → two outputs, a smooth map for Linear + sigmoid/gelu/relu to learn.
    let x: Vec<f64> = wave(64 * 3, 0.3, 1.5);
    let y: Vec<f64> = (0..64)
        .flat_map(|i| {
            let (a, b, c) = (x[3 * i], x[3 * i + 1], x[3 * i + 2]);
            [(a * b).sin() + 0.5 * c, (a - c).tanh() * b]
        })
        .collect();
    let data = DataBatch::new(t(x, [64, 3]), t(y, [64, 2])).unwrap();
    let mut problem = BurnProblem::new(
        MlpSpec,
        SquaredError,
        FixedBatches::split(data.clone(), 1),
        ProblemConfig::default(),
        &device,
    )
    .unwrap();
    let theta = problem.initial_parameters(&device).unwrap();
    let before = problem.evaluator().objective(&theta, &data).unwrap();
    let mut hf = HessianFree::new(HfConfig {
        max_iterations: 60,
        ..Default::default()
    })
    .unwrap();
    let mut state = hf.init(theta);
    hf.run(&mut problem, &mut state, &mut ()).unwrap();
    let after = problem.evaluator().objective(&state.theta, &data).unwrap();
    assert!(after * 10.0 <= before, "loss fell from {before} to {after} only");
}

/// An operation without a tangent rule is a typed error, not a crash.
#[derive(Module, Debug)]
struct Deformable<B: Backend> {
    weight: burn::module::Param<Tensor<B, 4>>,
}

#[derive(Clone, Debug)]
struct DeformableSpec;

impl Network<2> for DeformableSpec {
    type Module<B: Backend> = Deformable<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Deformable<B> {
        Deformable {
            weight: burn::module::Param::from_tensor(Tensor::ones([1, 1, 2, 2], device)),
        }
    }
    fn forward<B: Backend>(&self, m: &Deformable<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let n = x.dims()[0];
        let offset = Tensor::zeros([n, 8, 2, 2], &x.device());
        let options = burn::tensor::ops::DeformConvOptions::new([1, 1], [0, 0], [1, 1], 1, 1);
        let y =
            burn::tensor::module::deform_conv2d(x.reshape([n, 1, 3, 3]), offset, m.weight.val(), None, None, options);
        Outputs::new(y.reshape([n, 4]))
    }
}

#[test]
fn an_operation_without_a_tangent_rule_is_a_typed_error() {
    let device = Default::default();
    let batch = DataBatch::new(t(wave(18, 0.1, 1.0), [2, 9]), t(wave(8, 0.5, 1.0), [2, 4])).unwrap();
    let ev = Evaluator::new(DeformableSpec, Loss::SquaredError, &device).unwrap();
    let theta = ParamVector::<Nd>::from_module(&DeformableSpec.init::<Nd>(&device)).unwrap();
    let op = CurvatureProduct::new(&ev, theta.clone(), batch, CurvatureKind::GaussNewton, 0.0).unwrap();
    match op.curvature_product(&theta) {
        Err(hf_burn::Error::NoTangentRule { detail }) => assert!(detail.contains("deform_conv2d"), "{detail}"),
        other => panic!("expected NoTangentRule, got {:?}", other.map(|v| v.to_vec())),
    }
}

/// A trainable layer after a frozen one (`no_grad()`), read out through BatchNorm.
#[derive(Module, Debug)]
struct Frozen<B: Backend> {
    fixed: Linear<B>,
    learned: Linear<B>,
    norm: burn::nn::BatchNorm<B>,
}

#[derive(Clone, Debug)]
struct FrozenSpec {
    batch_norm: bool,
}

impl Network<2> for FrozenSpec {
    type Module<B: Backend> = Frozen<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Frozen<B> {
        Frozen {
            // Random on every backend: the templates must agree on one value.
            fixed: LinearConfig::new(3, 4).init(device).no_grad(),
            learned: LinearConfig::new(4, 2).init(device),
            norm: burn::nn::BatchNormConfig::new(2).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &Frozen<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let z = m.learned.forward(m.fixed.forward(x).tanh());
        Outputs::new(if self.batch_norm { m.norm.forward(z) } else { z })
    }
}

#[test]
fn frozen_parameters_and_running_statistics_stay_out_of_theta() {
    Nd::seed(&Default::default(), 8);
    let device = Default::default();
    let ev = Evaluator::<Nd, _, _, 2>::new(FrozenSpec { batch_norm: true }, Loss::SquaredError, &device).unwrap();
    // learned (4·2 + 2) and BatchNorm's γ and β (2 + 2): not the frozen layer (3·4 + 4)
    // nor the running mean and variance (2 + 2).
    assert_eq!(ev.num_params(), 14);
    assert_eq!(ev.templates().layout().trainable().len(), 8);
    let data = DataBatch::new(t(wave(15, 0.2, 1.0), [5, 3]), t(wave(10, 0.6, 1.0), [5, 2])).unwrap();
    let problem = hf_burn::BurnProblem::new(
        FrozenSpec { batch_norm: true },
        SquaredError,
        hf_burn::FixedBatches::split(data, 1),
        hf_burn::ProblemConfig::default(),
        &device,
    )
    .unwrap();
    assert_eq!(problem.initial_parameters(&device).unwrap().to_vec().len(), 14);
}

#[test]
fn a_network_with_a_frozen_layer_has_exact_products() {
    // Outputs by the dual backend's template, products by the autodiff ones: they
    // agree only if every template holds the same frozen weights.
    Nd::seed(&Default::default(), 9);
    let batch = DataBatch::new(t(wave(15, 0.2, 1.0), [5, 3]), t(wave(10, 0.6, 1.0), [5, 2])).unwrap();
    check(
        "frozen Linear",
        FrozenSpec { batch_norm: false },
        Loss::SquaredError,
        batch,
    );
}

/// [`RecurrentSpec`]'s LSTM with a deliberately wrong derivative: three more copies
/// of its outputs enter through `detach`, which the function has but its derivatives
/// (forward and backward mode alike) do not.
#[derive(Clone, Debug)]
struct DetachedLstm;

impl Network<3> for DetachedLstm {
    type Module<B: Backend> = Recurrent<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Recurrent<B> {
        RecurrentSpec { lstm: true }.init(device)
    }
    fn forward<B: Backend>(&self, m: &Recurrent<B>, x: Tensor<B, 3>) -> Outputs<B> {
        let z = RecurrentSpec { lstm: true }.forward(m, x).z;
        Outputs::new(z.clone() + z.detach().mul_scalar(3.0))
    }
}

#[test]
fn check_curvature_tells_an_lstms_f32_gates_from_a_wrong_rule() {
    use hf_burn::check_curvature;
    let device = Default::default();
    Nd::seed(&device, 11);
    let batch = DataBatch::new(t(wave(48, 0.2, 1.0), [4, 6, 2]), t(wave(48, 1.3, 1.0), [24, 2])).unwrap();
    let theta = ParamVector::from_module(&RecurrentSpec { lstm: true }.init::<Nd>(&device)).unwrap();

    // burn's Lstm gates use its sigmoid, which rounds through f32 on NdArray<f64>.
    let correct = Evaluator::new(RecurrentSpec { lstm: true }, SquaredError, &device).unwrap();
    let report = check_curvature(&correct, &theta, &batch, 3).unwrap();
    println!("correct: {report}");
    assert!(report.is_consistent(), "{report}");
    assert!(report.noise_limited() && report.forward_noise > 1e-12, "{report}");
    assert!(report.to_string().contains("cannot resolve below"), "{report}");

    let wrong = Evaluator::new(DetachedLstm, SquaredError, &device).unwrap();
    let report = check_curvature(&wrong, &theta, &batch, 3).unwrap();
    println!("wrong: {report}");
    assert!(!report.is_consistent(), "{report}");
    assert!(report.to_string().contains("a derivative rule is wrong"), "{report}");
}
