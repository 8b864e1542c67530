//! Branch-free `f32` elementary functions that the compiler vectorizes, and parallel
//! loops that apply them to a buffer.
//!
//! burn-flex evaluates `tanh`, `exp`, `ln` one element at a time through the C
//! library's scalar functions, on one thread: in an autoencoder's gradient that is a
//! quarter of the CPU time (`__expm1f` and `__tanhf` in `perf`, docs/BENCHMARKS.md).
//! These versions compute every lane the same way (range reduction, a polynomial,
//! selects instead of branches), so the loops below run 4–16 lanes at a time.
//!
//! The polynomials are Cephes' single-precision ones (S. L. Moshier, *Methods and
//! Programs for Mathematical Functions*, 1989): `expf`, `logf` and `tanhf`'s small-
//! argument series. The tests hold every function to a few units in the last place of
//! the correctly rounded value, with IEEE special values (±0, ±∞, NaN, subnormals)
//! handled as the C library does.

use rayon::prelude::*;

/// Elements per parallel task: large enough that scheduling costs nothing next to the
/// arithmetic, small enough to spread a 10⁵-element buffer over the cores.
const CHUNK: usize = 1 << 14;

/// Buffers shorter than this run on the calling thread.
const PARALLEL_FROM: usize = 1 << 16;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2²³: adding it rounds to an integer held in the low mantissa bits.
const ROUNDER: f32 = 12_582_912.0;

/// `eˣ`, within 2 ulp; `+∞` above 88.72, gradual underflow down to −103.97, then 0.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(-103.972_08, 88.722_84);
    let k = xc * LOG2E + ROUNDER;
    let n = k - ROUNDER;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p =
        ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5;
    let p = p * r * r + r + 1.0;
    // n from k's mantissa, then 2ⁿ as two factors so that n = 128 and n < −126 stay
    // representable (the second product overflows or goes subnormal as it should).
    let ni = k.to_bits() as i32 - ROUNDER.to_bits() as i32;
    let a = ni >> 1;
    let b = ni - a;
    let sa = f32::from_bits(((a + 127) << 23) as u32);
    let sb = f32::from_bits(((b + 127) << 23) as u32);
    let y = p * sa * sb;
    let y = if x > 88.722_84 { f32::INFINITY } else { y };
    if x < -103.972_08 {
        0.0
    } else {
        y
    }
}

/// `tanh x`, within 3 ulp: Cephes' odd series below 0.625, `1 − 2/(e²ˣ + 1)` above.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small = ((((-5.704_988_7e-3 * z + 2.063_908_8e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
        - 3.333_328e-1)
        * z
        * x
        + x;
    // tanh 9.1 rounds to 1 in f32: capping keeps e²ˣ finite.
    let e = exp(2.0 * if a < 9.1 { a } else { 9.1 });
    let large = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    let y = if a < 0.625 { small } else { large };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `ln x`, within 2 ulp; `−∞` at ±0, NaN below 0, `+∞` at `+∞`, subnormals exact.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let subnormal = x < f32::MIN_POSITIVE;
    let xs = if subnormal { x * 8_388_608.0 } else { x };
    let bits = xs.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    if subnormal {
        e -= 23;
    }
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = (e + i32::from(big)) as f32;
    let f = m - 1.0;
    let z = f * f;
    let p = (((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f - 1.242_014_1e-1) * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333e-1;
    let y = f * z * p + LN2_LO * e - 0.5 * z;
    let y = f + y + LN2_HI * e;
    let y = if x == f32::INFINITY { x } else { y };
    let y = if x == 0.0 { f32::NEG_INFINITY } else { y };
    if x < 0.0 || x.is_nan() {
        f32::NAN
    } else {
        y
    }
}

/// `ln(1 + x)`, within 3 ulp, accurate for small `x` (Goldberg's correction: the
/// rounding of `1 + x` is divided back out).
#[inline(always)]
pub fn ln_1p(x: f32) -> f32 {
    let u = 1.0 + x;
    let d = u - 1.0;
    let y = ln(u) * (x / if d == 0.0 { 1.0 } else { d });
    let y = if d == 0.0 { x } else { y };
    if u == f32::INFINITY {
        u
    } else {
        y
    }
}

/// The logistic function `1 / (1 + e⁻ˣ)`, within 3 ulp.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `ln σ(x) = min(x, 0) − ln(1 + e^{−|x|})`, finite for every finite `x`.
#[inline(always)]
pub fn log_sigmoid(x: f32) -> f32 {
    let m = if x < 0.0 { x } else { 0.0 };
    let y = m - ln_1p(exp(-x.abs()));
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// A function applied elementwise by [`map_in_place`] and [`map`]. A static method
/// marked `#[inline(always)]`, so that it is inlined into the loops and vectorized
/// there (a function value passed in would be called once per element).
pub trait Unary {
    /// The function.
    fn f(x: f32) -> f32;
}

macro_rules! unary {
    ($(#[$doc:meta] $name:ident = $f:ident;)*) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl Unary for $name {
            #[inline(always)]
            fn f(x: f32) -> f32 {
                $f(x)
            }
        }
    )*};
}

unary! {
    /// [`exp`].
    Exp = exp;
    /// [`tanh`].
    Tanh = tanh;
    /// [`ln`].
    Ln = ln;
    /// [`ln_1p`].
    Ln1p = ln_1p;
    /// [`sigmoid`].
    Sigmoid = sigmoid;
    /// [`log_sigmoid`].
    LogSigmoid = log_sigmoid;
}

/// `U` applied to every element in place, on all cores when the buffer is large.
pub fn map_in_place<U: Unary>(values: &mut [f32]) {
    if values.len() < PARALLEL_FROM {
        in_place::<U>(values);
    } else {
        values.par_chunks_mut(CHUNK).for_each(in_place::<U>);
    }
}

/// `U` of every element of `input`, in a new buffer, on all cores when it is large.
pub fn map<U: Unary>(input: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; input.len()];
    if input.len() < PARALLEL_FROM {
        into::<U>(input, &mut out);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(input.par_chunks(CHUNK))
            .for_each(|(o, i)| into::<U>(i, o));
    }
    out
}

// One loop body, compiled twice on x86-64: for the baseline (4 lanes) and with AVX2
// (8 lanes), chosen at run time. The same operations in the same order either way (no
// fused multiply-adds), so the results are identical bit for bit.

// Calling a `#[target_feature]` function is the one unsafe operation here, behind the
// run-time check that makes it sound.
#[allow(unsafe_code)]
fn in_place<U: Unary>(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked on the line above.
        return unsafe { in_place_avx2::<U>(values) };
    }
    in_place_body::<U>(values);
}

#[allow(unsafe_code)]
fn into<U: Unary>(input: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked on the line above.
        return unsafe { into_avx2::<U>(input, out) };
    }
    into_body::<U>(input, out);
}

#[inline(always)]
fn in_place_body<U: Unary>(values: &mut [f32]) {
    for v in values {
        *v = U::f(*v);
    }
}

#[inline(always)]
fn into_body<U: Unary>(input: &[f32], out: &mut [f32]) {
    for (o, &i) in out.iter_mut().zip(input) {
        *o = U::f(i);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn in_place_avx2<U: Unary>(values: &mut [f32]) {
    in_place_body::<U>(values);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn into_avx2<U: Unary>(input: &[f32], out: &mut [f32]) {
    into_body::<U>(input, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `got` and the correctly rounded
    /// `want` (computed in f64).
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        if got == w || (got.is_nan() && w.is_nan()) {
            return 0.0;
        }
        if !got.is_finite() || !w.is_finite() {
            return f64::INFINITY;
        }
        let spacing = f64::from((w.abs().next_up() - w.abs()).max(f32::from_bits(1)));
        (f64::from(got) - want).abs() / spacing
    }

    /// Every 997th f32 bit pattern (4.3 million values, every sign, exponent and
    /// mantissa region) where `domain` holds: the worst error in ulp.
    fn worst(f: impl Fn(f32) -> f32, reference: impl Fn(f64) -> f64, domain: impl Fn(f32) -> bool) -> (f64, f32) {
        let mut worst = (0.0, 0.0);
        let mut bits = 0u32;
        while let Some(next) = bits.checked_add(997) {
            let x = f32::from_bits(bits);
            if x.is_finite() && domain(x) {
                let e = ulps(f(x), reference(f64::from(x)));
                if e > worst.0 {
                    worst = (e, x);
                }
            }
            bits = next;
        }
        worst
    }

    fn libm_tanh(x: f64) -> f64 {
        x.tanh()
    }

    #[test]
    fn exp_is_within_2_ulp_of_the_correctly_rounded_value() {
        let (e, at) = worst(exp, f64::exp, |x| x > -87.3 && x < 88.7);
        assert!(e <= 2.0, "exp: {e} ulp at {at}");
    }

    #[test]
    fn tanh_is_within_3_ulp() {
        let (e, at) = worst(tanh, libm_tanh, |_| true);
        assert!(e <= 3.0, "tanh: {e} ulp at {at}");
    }

    #[test]
    fn ln_is_within_2_ulp_including_subnormals() {
        let (e, at) = worst(ln, f64::ln, |x| x > 0.0);
        assert!(e <= 2.0, "ln: {e} ulp at {at}");
    }

    #[test]
    fn ln_1p_is_within_3_ulp() {
        let (e, at) = worst(ln_1p, f64::ln_1p, |x| x > -1.0);
        assert!(e <= 3.0, "ln_1p: {e} ulp at {at}");
    }

    #[test]
    fn sigmoid_and_log_sigmoid_are_within_4_ulp() {
        let (e, at) = worst(sigmoid, |x| 1.0 / (1.0 + (-x).exp()), |x| x > -87.0);
        assert!(e <= 4.0, "sigmoid: {e} ulp at {at}");
        let reference = |x: f64| x.min(0.0) - (-x.abs()).exp().ln_1p();
        let (e, at) = worst(log_sigmoid, reference, |x| x > -1e30 && x < 1e30);
        assert!(e <= 4.0, "log_sigmoid: {e} ulp at {at}");
    }

    #[test]
    fn special_values_are_those_of_the_c_library() {
        for x in [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
            assert!(same(exp(x), x.exp()), "exp({x}) = {} ≠ {}", exp(x), x.exp());
            assert!(same(tanh(x), x.tanh()), "tanh({x}) = {} ≠ {}", tanh(x), x.tanh());
            assert!(same(ln(x), x.ln()), "ln({x}) = {} ≠ {}", ln(x), x.ln());
            assert!(same(ln_1p(x), x.ln_1p()), "ln_1p({x}) = {} ≠ {}", ln_1p(x), x.ln_1p());
        }
        assert_eq!(exp(88.73), f32::INFINITY);
        assert_eq!(exp(-104.0), 0.0);
        assert!(exp(-100.0) > 0.0, "gradual underflow");
        assert!(ulps(ln(1e-45), f64::from(1e-45f32).ln()) <= 2.0);
        assert_eq!(tanh(1e-45), 1e-45);
        assert_eq!(ln_1p(-1.0), f32::NEG_INFINITY);
        assert!(ln_1p(-2.0).is_nan());
        assert_eq!(sigmoid(-200.0), 0.0);
        assert_eq!(sigmoid(200.0), 1.0);
        assert_eq!(log_sigmoid(-200.0), -200.0);
        assert_eq!(log_sigmoid(200.0), 0.0);
    }

    #[test]
    fn the_parallel_maps_apply_the_function_to_every_element_in_order() {
        for n in [0, 1, 1000, PARALLEL_FROM + 12_345] {
            let input: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3 - 5.0).collect();
            let out = map::<Tanh>(&input);
            let mut inplace = input.clone();
            map_in_place::<Tanh>(&mut inplace);
            assert_eq!(out, inplace);
            assert!(out.iter().zip(&input).all(|(&o, &i)| o == tanh(i)));
        }
    }
}
