//! The pathological long-term-dependency problems (Hochreiter & Schmidhuber 1997) as
//! Martens & Sutskever (2011) used them to test Hessian-free training of RNNs.
//!
//! With `f = T / 100` for the minimum length `T`:
//! - addition / multiplication: length in `[T, 1.1 T]`; inputs `(value, marker)` with
//!   values uniform in `[0, 1]`; two marked positions, one in `[1, 10]·f`, one in
//!   `[10, 50]·f` (1-based); the target at the end is their sum or product;
//! - XOR: length in `[0.5 T, 0.55 T]`, bits instead of values, target their XOR, read
//!   through a logistic output with cross-entropy (as in Sutskever's code);
//! - temporal order: length in `[T, 1.1 T]`, one-hot symbols from `{A, B, c, d, e, f}`; `A` or `B`
//!   at positions in `[1, 10]·f` and `[40, 50]·f` (2 symbols, 4 classes) or
//!   `[1, 10]·f`, `[30, 40]·f`, `[50, 60]·f` (3 symbols, 8 classes), distractors
//!   `c`–`f` elsewhere; classify the order;
//! - random permutation: length `T`, 100 one-hot symbols; the first is `0` or `1`, the
//!   rest from `2..100`; the network predicts the next symbol at every step, and the
//!   last step's target is the first symbol: only that one is predictable, and only it
//!   is scored;
//! - noiseless memorization: `n` characters from an alphabet of `k` symbols, `T`
//!   blanks with a trigger on the last one, then the characters must be output, one
//!   per step, over the last `n` steps (5 bits: `n = 5, k = 2`; 20 bits: `n = 10, k = 5`).
//!
//! Lengths vary between batches, not within one: every sequence of a generated batch
//! has the same length, drawn once per batch, so batches are plain tensors. A test set
//! ([`TaskSpec::test_lengths`]) spans the whole length range, so that success is not
//! judged at one length only.
//!
//! Success, as in the paper: the zero-one loss on a fresh test set below 1%
//! ([`SUCCESS_ERROR`]), where a real-valued (or logistic) output counts as wrong when
//! `|y − t| > 0.04` and a class output when its argmax is not the target; a sequence
//! is wrong if any of its scored outputs is.
//!
//! # References
//! - S. Hochreiter and J. Schmidhuber, "Long short-term memory", Neural Computation 9(8), 1997.
//! - J. Martens and I. Sutskever, "Learning recurrent neural networks with Hessian-free
//!   optimization", ICML 2011, §5.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::rng::SplitMix64;

/// The tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Sum of two marked values.
    Addition,
    /// Product of two marked values.
    Multiplication,
    /// XOR of two marked bits.
    Xor,
    /// Order of two marked symbols (4 classes).
    TemporalOrder2,
    /// Order of three marked symbols (8 classes).
    TemporalOrder3,
    /// Recall the first of 100 symbols.
    RandomPermutation,
    /// Recall 5 binary characters.
    Memorization5Bit,
    /// Recall 10 characters of 5 symbols.
    Memorization20Bit,
}

/// How the outputs are read and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Linear outputs with squared error; wrong when `|y − t| > 0.04`.
    Real,
    /// One logistic output with cross-entropy, for a target in `{0, 1}`; wrong when
    /// `|σ(z) − t| > 0.04`.
    Binary,
    /// Softmax over this many classes; wrong when the argmax is not the target.
    Classes(usize),
}

/// A task with its minimum length `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task.
    pub task: Task,
    /// The minimum sequence length `T` (for memorization: the number of blanks).
    pub length: usize,
}

/// A generated batch, row-major: `inputs` is `[cases, steps, input_dim]`, `targets`
/// `[cases · rows_per_case, output_dim]` case-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceBatch {
    /// Input values.
    pub inputs: Vec<f32>,
    /// Target values (one-hot rows for classes).
    pub targets: Vec<f32>,
    /// Sequences.
    pub cases: usize,
    /// Time steps of every sequence in this batch.
    pub steps: usize,
    /// Output rows per sequence (outputs at the last `rows_per_case` steps).
    pub rows_per_case: usize,
}

/// Real-valued outputs further than this from the target count as wrong.
pub const REAL_TOLERANCE: f64 = 0.04;

/// The zero-one loss on a test set below which a task counts as solved: 1%, the
/// paper's criterion (Martens & Sutskever 2011, §5). Sutskever's code stops at the
/// stricter 0.1%.
pub const SUCCESS_ERROR: f64 = 0.01;

/// At most this many distinct lengths in a test set ([`TaskSpec::test_lengths`]).
pub const MAX_TEST_LENGTHS: usize = 11;

impl Task {
    /// Every task, in the paper's order.
    pub const ALL: [Task; 8] = [
        Task::Addition,
        Task::Multiplication,
        Task::Xor,
        Task::TemporalOrder2,
        Task::TemporalOrder3,
        Task::RandomPermutation,
        Task::Memorization5Bit,
        Task::Memorization20Bit,
    ];
}

impl TaskSpec {
    /// A task of minimum length `length`.
    ///
    /// # Errors
    /// [`DataError::InvalidParameter`] if `length` is too short for the task's marker
    /// positions (below 10 for most tasks, below 1 for memorization).
    pub fn new(task: Task, length: usize) -> Result<Self> {
        let min = match task {
            Task::Memorization5Bit | Task::Memorization20Bit => 1,
            _ => 10,
        };
        if length < min {
            return Err(DataError::invalid("seq_len", length, "≥ 10 (≥ 1 for memorization)"));
        }
        Ok(Self { task, length })
    }

    /// Width of the input vectors.
    pub fn input_dim(&self) -> usize {
        match self.task {
            Task::Addition | Task::Multiplication | Task::Xor => 2,
            Task::TemporalOrder2 | Task::TemporalOrder3 => 6,
            Task::RandomPermutation => 100,
            // Alphabet, blank, trigger.
            Task::Memorization5Bit => 2 + 2,
            Task::Memorization20Bit => 5 + 2,
        }
    }

    /// How outputs are read.
    pub fn output_kind(&self) -> OutputKind {
        match self.task {
            Task::Addition | Task::Multiplication => OutputKind::Real,
            Task::Xor => OutputKind::Binary,
            Task::TemporalOrder2 => OutputKind::Classes(4),
            Task::TemporalOrder3 => OutputKind::Classes(8),
            Task::RandomPermutation => OutputKind::Classes(100),
            Task::Memorization5Bit => OutputKind::Classes(2),
            Task::Memorization20Bit => OutputKind::Classes(5),
        }
    }

    /// Width of the output vectors.
    pub fn output_dim(&self) -> usize {
        match self.output_kind() {
            OutputKind::Real | OutputKind::Binary => 1,
            OutputKind::Classes(k) => k,
        }
    }

    /// The network reads outputs at the last this many steps: `usize::MAX` (every
    /// step) for random permutation, the characters for memorization, else 1.
    pub fn output_steps(&self) -> usize {
        match self.task {
            Task::Memorization5Bit => 5,
            Task::Memorization20Bit => 10,
            Task::RandomPermutation => usize::MAX,
            _ => 1,
        }
    }

    /// Output rows per sequence of `steps` time steps.
    pub fn rows_per_case(&self, steps: usize) -> usize {
        self.output_steps().min(steps)
    }

    /// Which of a sequence's `rows` output rows are scored: the last one for random
    /// permutation (the only predictable one), all of them otherwise.
    pub fn scored_rows(&self, rows: usize) -> std::ops::Range<usize> {
        match self.task {
            Task::RandomPermutation => rows.saturating_sub(1)..rows,
            _ => 0..rows,
        }
    }

    /// The matching loss for the outputs.
    pub fn loss(&self) -> hf_burn::Loss {
        match self.output_kind() {
            OutputKind::Real => hf_burn::Loss::SquaredError,
            OutputKind::Binary => hf_burn::Loss::LogisticCrossEntropy,
            OutputKind::Classes(_) => hf_burn::Loss::SoftmaxCrossEntropy,
        }
    }

    /// The range of sequence lengths.
    pub fn length_range(&self) -> (usize, usize) {
        let t = self.length;
        match self.task {
            Task::Addition | Task::Multiplication => (t, t + t / 10),
            Task::Xor => (t / 2, t / 2 + t / 20),
            Task::TemporalOrder2 | Task::TemporalOrder3 => (t, t + t / 10),
            Task::RandomPermutation => (t, t),
            Task::Memorization5Bit => (t + 10, t + 10),
            Task::Memorization20Bit => (t + 20, t + 20),
        }
    }

    /// The lengths a test set covers: the whole [`length_range`](Self::length_range)
    /// when it holds at most [`MAX_TEST_LENGTHS`] lengths, else that many evenly
    /// spaced ones, both ends included.
    pub fn test_lengths(&self) -> Vec<usize> {
        let (lo, hi) = self.length_range();
        let count = (hi - lo + 1).min(MAX_TEST_LENGTHS);
        if count == 1 {
            return vec![lo];
        }
        let mut lengths: Vec<usize> = (0..count)
            .map(|i| lo + ((hi - lo) as f64 * i as f64 / (count - 1) as f64).round() as usize)
            .collect();
        lengths.dedup();
        lengths
    }

    /// `cases` fresh sequences of one length drawn from the task's range.
    ///
    /// # Errors
    /// [`DataError::InvalidParameter`] for `cases = 0`.
    pub fn generate(&self, cases: usize, rng: &mut SplitMix64) -> Result<SequenceBatch> {
        let (lo, hi) = self.length_range();
        let steps = rng.range(lo, hi);
        self.generate_with_length(cases, steps, rng)
    }

    /// `cases` fresh sequences of `steps` time steps (a test set's length, say).
    ///
    /// # Errors
    /// [`DataError::InvalidParameter`] for `cases = 0`, or for `steps` outside the
    /// task's [`length_range`](Self::length_range).
    pub fn generate_with_length(&self, cases: usize, steps: usize, rng: &mut SplitMix64) -> Result<SequenceBatch> {
        if cases == 0 {
            return Err(DataError::invalid("cases", 0, "≥ 1"));
        }
        let (lo, hi) = self.length_range();
        if !(lo..=hi).contains(&steps) {
            return Err(DataError::invalid("steps", steps, "within the task's length range"));
        }
        let (din, dout, k) = (self.input_dim(), self.output_dim(), self.rows_per_case(steps));
        let mut inputs = vec![0.0f32; cases * steps * din];
        let mut targets = vec![0.0f32; cases * k * dout];
        for case in 0..cases {
            let x = &mut inputs[case * steps * din..(case + 1) * steps * din];
            let t = &mut targets[case * k * dout..(case + 1) * k * dout];
            self.fill(x, t, steps, rng);
        }
        Ok(SequenceBatch {
            inputs,
            targets,
            cases,
            steps,
            rows_per_case: k,
        })
    }

    /// A position in `[a·f, b·f]` (1-based, as the papers state it), 0-based, clamped to `steps`.
    fn position(&self, a: usize, b: usize, steps: usize, rng: &mut SplitMix64) -> usize {
        let f = self.length as f64 / 100.0;
        let lo = ((a as f64 * f).ceil() as usize).max(1);
        let hi = ((b as f64 * f).floor() as usize).max(lo);
        rng.range(lo, hi).min(steps) - 1
    }

    fn fill(&self, x: &mut [f32], t: &mut [f32], steps: usize, rng: &mut SplitMix64) {
        let din = self.input_dim();
        let one_hot = |x: &mut [f32], step: usize, symbol: usize| x[step * din + symbol] = 1.0;
        match self.task {
            Task::Addition | Task::Multiplication | Task::Xor => {
                let bits = self.task == Task::Xor;
                for s in 0..steps {
                    x[s * 2] = if bits {
                        (rng.uniform() < 0.5) as u8 as f32
                    } else {
                        rng.uniform() as f32
                    };
                }
                let p1 = self.position(1, 10, steps, rng);
                let mut p2 = self.position(10, 50, steps, rng);
                if p2 == p1 {
                    p2 = (p1 + 1).min(steps - 1);
                }
                x[p1 * 2 + 1] = 1.0;
                x[p2 * 2 + 1] = 1.0;
                let (a, b) = (x[p1 * 2], x[p2 * 2]);
                t[0] = match self.task {
                    Task::Addition => a + b,
                    Task::Multiplication => a * b,
                    _ => ((a != b) as u8) as f32,
                };
            }
            Task::TemporalOrder2 | Task::TemporalOrder3 => {
                for s in 0..steps {
                    one_hot(x, s, 2 + rng.range(0, 3));
                }
                let windows: &[(usize, usize)] = if self.task == Task::TemporalOrder2 {
                    &[(1, 10), (40, 50)]
                } else {
                    &[(1, 10), (30, 40), (50, 60)]
                };
                let mut class = 0;
                for &(a, b) in windows {
                    let p = self.position(a, b, steps, rng);
                    let symbol = rng.range(0, 1);
                    x[p * din..(p + 1) * din].fill(0.0);
                    one_hot(x, p, symbol);
                    class = 2 * class + symbol;
                }
                t[class] = 1.0;
            }
            Task::RandomPermutation => {
                // Row s predicts the symbol at s + 1; the last row, the first symbol.
                let first = rng.range(0, 1);
                let mut symbols = vec![first];
                symbols.extend((1..steps).map(|_| rng.range(2, 99)));
                for (s, &symbol) in symbols.iter().enumerate() {
                    one_hot(x, s, symbol);
                    let next = symbols.get(s + 1).copied().unwrap_or(first);
                    t[s * 100 + next] = 1.0;
                }
            }
            Task::Memorization5Bit | Task::Memorization20Bit => {
                let (n, k) = if self.task == Task::Memorization5Bit {
                    (5, 2)
                } else {
                    (10, 5)
                };
                let (blank, trigger) = (k, k + 1);
                let chars: Vec<usize> = (0..n).map(|_| rng.range(0, k - 1)).collect();
                for (s, &c) in chars.iter().enumerate() {
                    one_hot(x, s, c);
                }
                for s in n..steps {
                    one_hot(x, s, if s == steps - n - 1 { trigger } else { blank });
                }
                for (row, &c) in chars.iter().enumerate() {
                    t[row * k + c] = 1.0;
                }
            }
        }
    }

    /// The fraction of sequences with at least one wrong scored output, given
    /// predictions (after the output nonlinearity) and targets laid out as in
    /// [`SequenceBatch`], `cases` sequences of equal length.
    pub fn zero_one_loss(&self, predictions: &[f32], targets: &[f32], cases: usize) -> f64 {
        if cases == 0 {
            return f64::NAN;
        }
        let dout = self.output_dim();
        let per_case = targets.len() / cases;
        let scored = self.scored_rows(per_case / dout);
        let wrong = (0..cases)
            .filter(|&c| {
                let range = c * per_case + scored.start * dout..c * per_case + scored.end * dout;
                self.outputs_wrong(&predictions[range.clone()], &targets[range])
            })
            .count();
        wrong as f64 / cases as f64
    }

    fn outputs_wrong(&self, y: &[f32], t: &[f32]) -> bool {
        match self.output_kind() {
            OutputKind::Real | OutputKind::Binary => {
                y.iter().zip(t).any(|(y, t)| f64::from((y - t).abs()) > REAL_TOLERANCE)
            }
            OutputKind::Classes(k) => y.chunks(k).zip(t.chunks(k)).any(|(y, t)| argmax(y) != argmax(t)),
        }
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |best, (i, &x)| if x > best.1 { (i, x) } else { best },
        )
        .0
}
