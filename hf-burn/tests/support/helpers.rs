// Small networks, data and finite-difference oracles shared by the hf-burn tests.
// Included once per backend module, which defines `TestBackend`.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::nn::linear;
use hf_burn::{
    logistic, tensor_from_f64, AffineTaps, DataBatch, Evaluator, MatchingLoss, Network, Outputs, ParamVector,
};

pub const F64: DType = DType::F64;

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn normals(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| scale * self.normal()).collect()
    }
}

/// An MLP with a tanh and a logistic hidden layer: 3 → 4 (tanh) → 3 (logistic) → 2.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    l1: Linear<B>,
    l2: Linear<B>,
    l3: Linear<B>,
}

#[derive(Clone, Debug)]
pub struct MlpSpec;

impl Network<2> for MlpSpec {
    type Module<B: Backend> = Mlp<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        Mlp {
            l1: LinearConfig::new(3, 4).init(device),
            l2: LinearConfig::new(4, 3).init(device),
            l3: LinearConfig::new(3, 2).init(device),
        }
    }

    fn forward<B: Backend>(&self, m: &Mlp<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let h1 = linear(&m.l1, x).tanh();
        let h2 = logistic(linear(&m.l2, h1));
        Outputs::new(linear(&m.l3, h2))
    }

    fn forward_with_taps<B: Backend>(
        &self,
        m: &Mlp<B>,
        x: Tensor<B, 2>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        let h1 = taps.linear(&m.l1, x).tanh();
        let h2 = logistic(taps.linear(&m.l2, h1));
        Some(Outputs::new(taps.linear(&m.l3, h2)))
    }
}

/// [`MlpSpec`] reporting only its first two layers to the taps: the one-pass diagonal
/// must refuse it.
#[derive(Clone, Debug)]
pub struct HalfTappedMlpSpec;

impl Network<2> for HalfTappedMlpSpec {
    type Module<B: Backend> = Mlp<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        MlpSpec.init(device)
    }

    fn forward<B: Backend>(&self, m: &Mlp<B>, x: Tensor<B, 2>) -> Outputs<B> {
        MlpSpec.forward(m, x)
    }

    fn forward_with_taps<B: Backend>(
        &self,
        m: &Mlp<B>,
        x: Tensor<B, 2>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        let h1 = taps.linear(&m.l1, x).tanh();
        let h2 = logistic(taps.linear(&m.l2, h1));
        Some(Outputs::new(linear(&m.l3, h2)))
    }
}

/// A tanh RNN (2 inputs, 3 hidden units, 2 outputs) unrolled over the input's time
/// axis, with outputs at the last two steps and its hidden states exposed.
#[derive(Module, Debug)]
pub struct TinyRnn<B: Backend> {
    input: Linear<B>,
    recurrent: Linear<B>,
    output: Linear<B>,
}

#[derive(Clone, Debug)]
pub struct RnnSpec;

impl Network<3> for RnnSpec {
    type Module<B: Backend> = TinyRnn<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> TinyRnn<B> {
        TinyRnn {
            input: LinearConfig::new(2, 3).init(device),
            recurrent: LinearConfig::new(3, 3).with_bias(false).init(device),
            output: LinearConfig::new(3, 2).init(device),
        }
    }

    fn forward<B: Backend>(&self, m: &TinyRnn<B>, x: Tensor<B, 3>) -> Outputs<B> {
        tiny_rnn(m, x, &mut AffineTaps::off())
    }

    fn forward_with_taps<B: Backend>(
        &self,
        m: &TinyRnn<B>,
        x: Tensor<B, 3>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        Some(tiny_rnn(m, x, taps))
    }
}

/// The weights are shared over time steps: several rows per case for one parameter.
fn tiny_rnn<B: Backend>(m: &TinyRnn<B>, x: Tensor<B, 3>, taps: &mut AffineTaps<B>) -> Outputs<B> {
    let [n, steps, inputs] = x.dims();
    let mut h: Option<Tensor<B, 2>> = None;
    let mut hidden = Vec::new();
    let mut outputs = Vec::new();
    for t in 0..steps {
        let xt = x.clone().slice([0..n, t..t + 1, 0..inputs]).reshape([n, inputs]);
        let pre = match &h {
            Some(h) => taps.linear(&m.input, xt) + taps.linear(&m.recurrent, h.clone()),
            None => taps.linear(&m.input, xt),
        };
        let ht = pre.tanh();
        if t + 2 >= steps {
            outputs.push(taps.linear(&m.output, ht.clone()));
        }
        hidden.push(ht.clone());
        h = Some(ht);
    }
    // Case-major rows: all of sequence 0's rows, then sequence 1's, …
    let case_major = |rows: Vec<Tensor<B, 2>>| {
        let k = rows.len();
        let width = rows[0].dims()[1];
        Tensor::stack::<3>(rows, 1).reshape([n * k, width])
    };
    Outputs {
        z: case_major(outputs),
        hidden: Some(case_major(hidden)),
    }
}

pub fn device() -> burn::tensor::Device<TestBackend> {
    Default::default()
}

pub fn tensor<const D: usize>(values: Vec<f64>, shape: [usize; D]) -> Tensor<TestBackend, D> {
    tensor_from_f64(values, shape, &device(), F64)
}

pub fn vector(values: Vec<f64>) -> ParamVector<TestBackend> {
    let n = values.len();
    ParamVector::new(tensor(values, [n]))
}

pub fn host<const D: usize>(t: Tensor<TestBackend, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Targets suited to a loss: real values, probabilities in (0, 1), or one-hot rows.
pub fn targets(kind: &str, rows: usize, cols: usize, rng: &mut Rng) -> Vec<f64> {
    match kind {
        "squared" => rng.normals(rows * cols, 1.0),
        "logistic" => (0..rows * cols).map(|_| rng.uniform()).collect(),
        _ => (0..rows)
            .flat_map(|_| {
                let hot = (rng.uniform() * cols as f64) as usize;
                (0..cols).map(move |j| if j == hot { 1.0 } else { 0.0 })
            })
            .collect(),
    }
}

pub fn mlp_batch(n: usize, kind: &str, rng: &mut Rng) -> DataBatch<TestBackend, 2> {
    let x = tensor(rng.normals(n * 3, 1.0), [n, 3]);
    let t = tensor(targets(kind, n, 2, rng), [n, 2]);
    DataBatch::new(x, t).unwrap()
}

pub fn rnn_batch(n: usize, steps: usize, kind: &str, rng: &mut Rng) -> DataBatch<TestBackend, 3> {
    let x = tensor(rng.normals(n * steps * 2, 1.0), [n, steps, 2]);
    let t = tensor(targets(kind, 2 * n, 2, rng), [2 * n, 2]);
    DataBatch::new(x, t).unwrap()
}

/// Output Hessian `H_i` of case `i` (`k × k`) from the formulas, on the host.
pub fn output_hessian(kind: &str, z: &[f64]) -> Vec<f64> {
    let k = z.len();
    let mut h = vec![0.0; k * k];
    match kind {
        "squared" => (0..k).for_each(|j| h[j * k + j] = 1.0),
        "logistic" => (0..k).for_each(|j| {
            let p = 1.0 / (1.0 + (-z[j]).exp());
            h[j * k + j] = p * (1.0 - p);
        }),
        _ => {
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            let p: Vec<f64> = e.iter().map(|v| v / s).collect();
            for a in 0..k {
                for b in 0..k {
                    h[a * k + b] = if a == b { p[a] } else { 0.0 } - p[a] * p[b];
                }
            }
        }
    }
    h
}

/// The Jacobian of the flattened outputs (and hidden states) with respect to θ, by
/// central differences, column by column: `(rows_z, rows_h, J_z, J_h)`, row-major.
pub fn fd_jacobian<N: Network<D>, L: MatchingLoss, const D: usize>(
    ev: &Evaluator<TestBackend, N, L, D>,
    theta: &[f64],
    input: &Tensor<TestBackend, D>,
) -> (usize, usize, Vec<f64>, Vec<f64>) {
    let p = theta.len();
    let h = 1e-6;
    let eval = |th: Vec<f64>| {
        let out = ev.outputs(&vector(th), input.clone()).unwrap();
        (host(out.z), out.hidden.map(host).unwrap_or_default())
    };
    let mut cols_z = Vec::new();
    let mut cols_h = Vec::new();
    for k in 0..p {
        let mut plus = theta.to_vec();
        plus[k] += h;
        let mut minus = theta.to_vec();
        minus[k] -= h;
        let (zp, hp) = eval(plus);
        let (zm, hm) = eval(minus);
        cols_z.push(zp.iter().zip(&zm).map(|(a, b)| (a - b) / (2.0 * h)).collect::<Vec<_>>());
        cols_h.push(hp.iter().zip(&hm).map(|(a, b)| (a - b) / (2.0 * h)).collect::<Vec<_>>());
    }
    let (rz, rh) = (cols_z[0].len(), cols_h[0].len());
    let mut jz = vec![0.0; rz * p];
    let mut jh = vec![0.0; rh * p];
    for k in 0..p {
        for r in 0..rz {
            jz[r * p + k] = cols_z[k][r];
        }
        for r in 0..rh {
            jh[r * p + k] = cols_h[k][r];
        }
    }
    (rz, rh, jz, jh)
}

/// `Jᵀ H J v / N` from an explicit Jacobian, with per-case output blocks of width `k`.
pub fn explicit_gn_product(kind: &str, z: &[f64], jz: &[f64], k: usize, p: usize, cases: usize, v: &[f64]) -> Vec<f64> {
    let rows = z.len();
    let jv: Vec<f64> = (0..rows).map(|r| (0..p).map(|c| jz[r * p + c] * v[c]).sum()).collect();
    let mut hjv = vec![0.0; rows];
    for i in 0..rows / k {
        let h = output_hessian(kind, &z[i * k..(i + 1) * k]);
        for a in 0..k {
            hjv[i * k + a] = (0..k).map(|b| h[a * k + b] * jv[i * k + b]).sum();
        }
    }
    (0..p)
        .map(|c| (0..rows).map(|r| jz[r * p + c] * hjv[r]).sum::<f64>() / cases as f64)
        .collect()
}

pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-300);
    num / den
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Random parameters of moderate size (so that logistic units are not saturated).
pub fn random_theta<N: Network<D>, L: MatchingLoss, const D: usize>(
    ev: &Evaluator<TestBackend, N, L, D>,
    rng: &mut Rng,
) -> Vec<f64> {
    rng.normals(ev.num_params(), 0.5)
}
