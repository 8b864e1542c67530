//! The building blocks every tangent rule is written with.

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, TensorMetadata};

use super::DualTensor;

/// The words every refusal of the dual backend starts with, so that the evaluator's
/// panic guard can turn it into `Error::NoTangentRule`.
pub(crate) const NO_TANGENT_RULE: &str = "hf_burn::dual::Dual has no tangent rule";

/// Refuses an operation (`what`) that has no tangent rule.
pub(crate) fn refuse(what: &str) -> ! {
    panic!("{NO_TANGENT_RULE} for {what}")
}

/// A primal with the graph cut: tangent arithmetic must not be recorded by an
/// autodiff backend underneath, or `Dual<Autodiff<B>>` would record the forward pass
/// twice.
pub(crate) fn det<B: Backend>(p: &FloatTensor<B>) -> FloatTensor<B> {
    B::float_detach(p.clone())
}

/// Zeros shaped like `like`.
pub(crate) fn zeros_like<B: Backend>(like: &FloatTensor<B>) -> FloatTensor<B> {
    B::float_zeros(like.shape(), &B::float_device(like), like.dtype().into())
}

/// The tangent, or zeros shaped like the primal.
pub(crate) fn tangent_or_zeros<B: Backend>(x: &DualTensor<B>) -> FloatTensor<B> {
    x.tangent.clone().unwrap_or_else(|| zeros_like::<B>(&x.primal))
}

/// `t` broadcast to `shape` (binary operations broadcast their operands).
pub(crate) fn broadcast<B: Backend>(t: FloatTensor<B>, shape: &Shape) -> FloatTensor<B> {
    if t.shape() == *shape {
        t
    } else {
        B::float_expand(t, shape.clone())
    }
}

/// The sum of two optional tangents (`None` is zero).
pub(crate) fn sum<B: Backend>(a: Option<FloatTensor<B>>, b: Option<FloatTensor<B>>) -> Option<FloatTensor<B>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(B::float_add(a, b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// An operation linear in its input: the tangent goes through the same operation.
pub(crate) fn linear<B: Backend>(x: DualTensor<B>, f: impl Fn(FloatTensor<B>) -> FloatTensor<B>) -> DualTensor<B> {
    DualTensor::new(f(x.primal), x.tangent.map(f))
}

/// An elementwise function with derivative `df(t, x, y)` (given the tangent, the
/// detached input and the detached output).
pub(crate) fn unary<B: Backend>(
    x: DualTensor<B>,
    f: impl FnOnce(FloatTensor<B>) -> FloatTensor<B>,
    df: impl FnOnce(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> DualTensor<B> {
    match x.tangent {
        None => DualTensor::constant(f(x.primal)),
        Some(t) => {
            let xd = det::<B>(&x.primal);
            let y = f(x.primal);
            let tangent = df(t, xd, det::<B>(&y));
            DualTensor::new(y, Some(tangent))
        }
    }
}

/// An operation without a derivative (rounding): its tangent is zero.
pub(crate) fn flat<B: Backend>(x: DualTensor<B>, f: impl FnOnce(FloatTensor<B>) -> FloatTensor<B>) -> DualTensor<B> {
    DualTensor::constant(f(x.primal))
}

/// A binary operation `y = f(a, b)` whose tangent is `da(t_a, a, b, y) + db(t_b, a, b, y)`
/// (detached values), each term broadcast to `y`'s shape.
pub(crate) fn binary<B: Backend>(
    a: DualTensor<B>,
    b: DualTensor<B>,
    f: impl FnOnce(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
    da: impl FnOnce(FloatTensor<B>, &FloatTensor<B>, &FloatTensor<B>, &FloatTensor<B>) -> FloatTensor<B>,
    db: impl FnOnce(FloatTensor<B>, &FloatTensor<B>, &FloatTensor<B>, &FloatTensor<B>) -> FloatTensor<B>,
) -> DualTensor<B> {
    if a.tangent.is_none() && b.tangent.is_none() {
        return DualTensor::constant(f(a.primal, b.primal));
    }
    let (ad, bd) = (det::<B>(&a.primal), det::<B>(&b.primal));
    let y = f(a.primal, b.primal);
    let yd = det::<B>(&y);
    let shape = y.shape();
    let ta = a.tangent.map(|t| broadcast::<B>(da(t, &ad, &bd, &yd), &shape));
    let tb = b.tangent.map(|t| broadcast::<B>(db(t, &ad, &bd, &yd), &shape));
    DualTensor::new(y, sum::<B>(ta, tb))
}

/// A bilinear operation `y = f(a, b)` (a product, a matmul, a convolution): its tangent
/// is `f(t_a, b) + f(a, t_b)`.
pub(crate) fn bilinear<B: Backend>(
    a: DualTensor<B>,
    b: DualTensor<B>,
    f: impl Fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> DualTensor<B> {
    if a.tangent.is_none() && b.tangent.is_none() {
        return DualTensor::constant(f(a.primal, b.primal));
    }
    let ta = a.tangent.map(|t| f(t, det::<B>(&b.primal)));
    let tb = b.tangent.map(|t| f(det::<B>(&a.primal), t));
    DualTensor::new(f(a.primal, b.primal), sum::<B>(ta, tb))
}

/// A value read from the primal only (a comparison, an index): derivatives do not
/// flow into it.
pub(crate) fn primal<B: Backend>(x: DualTensor<B>) -> FloatTensor<B> {
    x.primal
}
