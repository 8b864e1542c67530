//! A small HF run: the 10-dimensional extended Rosenbrock function with its exact
//! Hessian, printing one line per outer iteration through an observer.
//!
//! `cargo run --release -p hf-core --example rosenbrock`

use hf_core::{
    Batch, BoxError, Control, CurvatureOperator, DenseOperator, HessianFree, HfConfig, HfState, IterationRecord,
    Observer, PreconditionerKind, Problem, Result,
};

struct Rosenbrock {
    n: usize,
}

impl Rosenbrock {
    fn value(&self, x: &[f64]) -> f64 {
        (0..self.n / 2)
            .map(|i| (1.0 - x[2 * i]).powi(2) + 100.0 * (x[2 * i + 1] - x[2 * i].powi(2)).powi(2))
            .sum()
    }
}

impl Problem for Rosenbrock {
    type Vector = Vec<f64>;

    fn objective(&mut self, x: &Vec<f64>, _batch: Batch) -> Result<f64> {
        Ok(self.value(x))
    }

    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        let mut g = vec![0.0; self.n];
        for i in 0..self.n / 2 {
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            g[2 * i] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[2 * i + 1] = 200.0 * (b - a * a);
        }
        Ok((self.value(x), g))
    }

    fn curvature<'a>(&'a mut self, x: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        let n = self.n;
        let mut h = vec![0.0; n * n];
        for i in 0..n / 2 {
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            let (j, k) = (2 * i, 2 * i + 1);
            h[j * n + j] = 2.0 - 400.0 * (b - a * a) + 800.0 * a * a;
            h[j * n + k] = -400.0 * a;
            h[k * n + j] = -400.0 * a;
            h[k * n + k] = 200.0;
        }
        Ok(Box::new(DenseOperator::new(h, n, damping)?))
    }
}

struct Printer;

impl Observer<Vec<f64>> for Printer {
    fn on_iteration(&mut self, r: &IterationRecord, _state: &HfState<Vec<f64>>) -> Result<Control, BoxError> {
        println!(
            "{:>4} {:>14.6e} {:>10.3e} {:>9.3} {:>4} {:?} {:>8.2e}",
            r.iteration, r.objective, r.damping, r.rho, r.solver_iterations, r.outcome, r.step_norm
        );
        Ok(Control::Continue)
    }
}

fn main() -> std::result::Result<(), BoxError> {
    let n = 10;
    let config = HfConfig {
        initial_damping: Some(1.0),
        preconditioner: PreconditionerKind::Identity,
        max_iterations: 300,
        gradient_tolerance: 1e-10,
        ..Default::default()
    };
    let mut hf = HessianFree::new(config)?;
    let start: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }).collect();
    let mut state = hf.init(start);
    println!("iter      objective     lambda       rho   cg outcome   ‖step‖");
    let report = hf.run(&mut Rosenbrock { n }, &mut state, &mut Printer)?;
    println!(
        "stopped: {:?} after {} iterations, {} curvature products; f = {:.3e}; x = {:.6?}",
        report.stop, report.iterations, state.curvature_products, report.objective, state.theta
    );
    Ok(())
}
