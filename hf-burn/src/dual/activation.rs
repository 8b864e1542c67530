//! Activations: `relu` and `sigmoid` on `B`'s kernels with their own rules, GELU's
//! backward pass exact; the rest (GELU, softmax, log-sigmoid, …) through the float
//! operations burn composes them of.

use burn::tensor::backend::Backend;
use burn::tensor::ops::{ActivationOps, FloatTensor, FloatTensorOps};
use burn::tensor::Scalar;

use super::rules::unary;
use super::Dual;

type T<B> = FloatTensor<B>;

impl<B: Backend> ActivationOps<Self> for Dual<B> {
    fn relu(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::relu, |t, x, _| {
            let settings = burn::tensor::get_device_settings::<B>(&B::float_device(&x));
            let off = B::float_lower_equal_elem(x, Scalar::Float(0.0), settings.bool_dtype);
            B::float_mask_fill(t, off, Scalar::Float(0.0))
        })
    }

    /// `σ(x) = ½ tanh(x/2) + ½`: exact in the backend's precision and finite for every
    /// `x` (burn's default sigmoid rounds through f32), with `dσ = t σ (1 − σ)`.
    fn sigmoid(tensor: T<Self>) -> T<Self> {
        let half = Scalar::Float(0.5);
        let logistic = |x| {
            B::float_add_scalar(
                B::float_mul_scalar(B::float_tanh(B::float_mul_scalar(x, half)), half),
                half,
            )
        };
        unary(tensor, logistic, |t, _, y| {
            let d = B::float_mul(y.clone(), B::float_neg(B::float_sub_scalar(y, Scalar::Float(1.0))));
            B::float_mul(t, d)
        })
    }

    /// `grad · (Φ(x) + x φ(x))`, the derivative of the erf GELU that `gelu` computes
    /// (burn's default backward differs from it by about 1e-3), built from dual
    /// operations so that reverse over forward differentiates it too.
    fn gelu_backward(x: T<Self>, grad: T<Self>) -> T<Self> {
        let cdf = Self::float_mul_scalar(
            Self::float_add_scalar(
                Self::float_erf(Self::float_div_scalar(
                    x.clone(),
                    Scalar::Float(std::f64::consts::SQRT_2),
                )),
                Scalar::Float(1.0),
            ),
            Scalar::Float(0.5),
        );
        let square = Self::float_mul(x.clone(), x.clone());
        let pdf = Self::float_mul_scalar(
            Self::float_exp(Self::float_mul_scalar(square, Scalar::Float(-0.5))),
            Scalar::Float(1.0 / (2.0 * std::f64::consts::PI).sqrt()),
        );
        Self::float_mul(grad, Self::float_add(cdf, Self::float_mul(x, pdf)))
    }
}
