//! Float operations: each primal by `B`, each tangent by its derivative rule.

use burn::tensor::backend::{Backend, ExecutionError};
use burn::tensor::ops::{BoolTensor, Device, FloatTensor, FloatTensorOps, IntTensor};
use burn::tensor::{Distribution, Scalar, Shape, Slice, TensorData, TensorMetadata};
use burn_std::{BoolDType, FloatDType, IntDType};

use super::rules::{bilinear, binary, broadcast, flat, linear, primal, tangent_or_zeros, unary};
use super::{Dual, DualTensor};

type T<B> = FloatTensor<B>;

fn scalar(x: f64) -> Scalar {
    Scalar::Float(x)
}

/// `t · x^(k−1) · k` for a scalar exponent `k`.
fn pow_scalar_tangent<B: Backend>(t: T<B>, x: T<B>, k: f64) -> T<B> {
    let d = B::float_mul_scalar(B::float_powf_scalar_impl(x, scalar(k - 1.0)), scalar(k));
    B::float_mul(t, d)
}

/// `t / sqrt(s)` with `s` computed from the input.
fn over_sqrt<B: Backend>(t: T<B>, s: T<B>) -> T<B> {
    B::float_div(t, B::float_sqrt(s))
}

/// An index tensor pointing, along `dim`, at the position whose value each cumulative
/// extremum took: `cumextreme(j if x_j == y_j else 0)`.
fn cum_extreme_indices<B: Backend>(x: &T<B>, y: &T<B>, dim: usize) -> IntTensor<B> {
    let shape = x.shape();
    let n = shape[dim];
    let device = B::float_device(x);
    let settings = burn::tensor::get_device_settings::<B>(&device);
    let mut line = vec![1; shape.num_dims()];
    line[dim] = n;
    let positions = B::int_reshape(
        B::int_arange(0..n as i64, &device, settings.int_dtype),
        Shape::from(line),
    );
    let positions = B::int_expand(positions, shape);
    let moved = B::float_not_equal(x.clone(), y.clone(), settings.bool_dtype);
    B::int_cummax(B::int_mask_fill(positions, moved, Scalar::Int(0)), dim)
}

impl<B: Backend> FloatTensorOps<Self> for Dual<B> {
    fn float_from_data(data: TensorData, device: &Device<Self>) -> T<Self> {
        DualTensor::constant(B::float_from_data(data, device))
    }

    fn float_random(shape: Shape, distribution: Distribution, device: &Device<Self>, dtype: FloatDType) -> T<Self> {
        DualTensor::constant(B::float_random(shape, distribution, device, dtype))
    }

    fn float_zeros(shape: Shape, device: &Device<Self>, dtype: FloatDType) -> T<Self> {
        DualTensor::constant(B::float_zeros(shape, device, dtype))
    }

    fn float_ones(shape: Shape, device: &Device<Self>, dtype: FloatDType) -> T<Self> {
        DualTensor::constant(B::float_ones(shape, device, dtype))
    }

    fn float_full(shape: Shape, fill_value: Scalar, device: &Device<Self>, dtype: FloatDType) -> T<Self> {
        DualTensor::constant(B::float_full(shape, fill_value, device, dtype))
    }

    async fn float_into_data(tensor: T<Self>) -> Result<TensorData, ExecutionError> {
        B::float_into_data(tensor.primal).await
    }

    fn float_device(tensor: &T<Self>) -> Device<Self> {
        B::float_device(&tensor.primal)
    }

    fn float_to_device(tensor: T<Self>, device: &Device<Self>) -> T<Self> {
        linear(tensor, |t| B::float_to_device(t, device))
    }

    fn float_into_int(tensor: T<Self>, out_dtype: IntDType) -> IntTensor<Self> {
        B::float_into_int(tensor.primal, out_dtype)
    }

    fn float_empty(shape: Shape, device: &Device<Self>, dtype: FloatDType) -> T<Self> {
        DualTensor::constant(B::float_empty(shape, device, dtype))
    }

    fn float_repeat_dim(tensor: T<Self>, dim: usize, times: usize) -> T<Self> {
        linear(tensor, |t| B::float_repeat_dim(t, dim, times))
    }

    fn float_add(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        binary(lhs, rhs, B::float_add, |t, _, _, _| t, |t, _, _, _| t)
    }

    fn float_add_scalar(lhs: T<Self>, rhs: Scalar) -> T<Self> {
        DualTensor::new(B::float_add_scalar(lhs.primal, rhs), lhs.tangent)
    }

    fn float_sub(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        binary(lhs, rhs, B::float_sub, |t, _, _, _| t, |t, _, _, _| B::float_neg(t))
    }

    fn float_sub_scalar(lhs: T<Self>, rhs: Scalar) -> T<Self> {
        DualTensor::new(B::float_sub_scalar(lhs.primal, rhs), lhs.tangent)
    }

    fn float_mul(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        bilinear(lhs, rhs, B::float_mul)
    }

    fn float_mul_scalar(lhs: T<Self>, rhs: Scalar) -> T<Self> {
        linear(lhs, |t| B::float_mul_scalar(t, rhs))
    }

    fn float_div(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        // d(a/b) = t_a / b − t_b · (a/b) / b
        binary(
            lhs,
            rhs,
            B::float_div,
            |t, _, b, _| B::float_div(t, b.clone()),
            |t, _, b, y| B::float_neg(B::float_div(B::float_mul(t, y.clone()), b.clone())),
        )
    }

    fn float_div_scalar(lhs: T<Self>, rhs: Scalar) -> T<Self> {
        linear(lhs, |t| B::float_div_scalar(t, rhs))
    }

    fn float_remainder(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        // a mod b = a − ⌊a/b⌋ b (the sign of the divisor, as burn computes it).
        binary(
            lhs,
            rhs,
            B::float_remainder,
            |t, _, _, _| t,
            |t, a, b, _| B::float_neg(B::float_mul(t, B::float_floor(B::float_div(a.clone(), b.clone())))),
        )
    }

    fn float_remainder_scalar(lhs: T<Self>, rhs: Scalar) -> T<Self> {
        DualTensor::new(B::float_remainder_scalar(lhs.primal, rhs), lhs.tangent)
    }

    fn float_matmul(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        bilinear(lhs, rhs, B::float_matmul)
    }

    fn float_cross(lhs: T<Self>, rhs: T<Self>, dim: usize) -> T<Self> {
        bilinear(lhs, rhs, |a, b| B::float_cross(a, b, dim))
    }

    fn float_neg(tensor: T<Self>) -> T<Self> {
        linear(tensor, B::float_neg)
    }

    fn float_recip(tensor: T<Self>) -> T<Self> {
        // d(1/x) = −t / x²
        unary(tensor, B::float_recip, |t, _, y| {
            B::float_neg(B::float_mul(t, B::float_mul(y.clone(), y)))
        })
    }

    fn float_transpose(tensor: T<Self>) -> T<Self> {
        linear(tensor, B::float_transpose)
    }

    fn float_swap_dims(tensor: T<Self>, dim1: usize, dim2: usize) -> T<Self> {
        linear(tensor, |t| B::float_swap_dims(t, dim1, dim2))
    }

    fn float_permute(tensor: T<Self>, axes: &[usize]) -> T<Self> {
        linear(tensor, |t| B::float_permute(t, axes))
    }

    fn float_flip(tensor: T<Self>, axes: &[usize]) -> T<Self> {
        linear(tensor, |t| B::float_flip(t, axes))
    }

    fn float_reshape(tensor: T<Self>, shape: Shape) -> T<Self> {
        linear(tensor, |t| B::float_reshape(t, shape.clone()))
    }

    fn float_gather(dim: usize, tensor: T<Self>, indices: IntTensor<Self>) -> T<Self> {
        linear(tensor, |t| B::float_gather(dim, t, indices.clone()))
    }

    fn float_scatter_add(dim: usize, tensor: T<Self>, indices: IntTensor<Self>, value: T<Self>) -> T<Self> {
        let tangent = match (&tensor.tangent, &value.tangent) {
            (None, None) => None,
            (_, None) => tensor.tangent.clone(),
            _ => Some(B::float_scatter_add(
                dim,
                tangent_or_zeros(&tensor),
                indices.clone(),
                tangent_or_zeros(&value),
            )),
        };
        DualTensor::new(B::float_scatter_add(dim, tensor.primal, indices, value.primal), tangent)
    }

    fn float_select(tensor: T<Self>, dim: usize, indices: IntTensor<Self>) -> T<Self> {
        linear(tensor, |t| B::float_select(t, dim, indices.clone()))
    }

    fn float_select_add(tensor: T<Self>, dim: usize, indices: IntTensor<Self>, value: T<Self>) -> T<Self> {
        let tangent = match (&tensor.tangent, &value.tangent) {
            (None, None) => None,
            (_, None) => tensor.tangent.clone(),
            _ => Some(B::float_select_add(
                tangent_or_zeros(&tensor),
                dim,
                indices.clone(),
                tangent_or_zeros(&value),
            )),
        };
        DualTensor::new(B::float_select_add(tensor.primal, dim, indices, value.primal), tangent)
    }

    fn float_slice(tensor: T<Self>, slices: &[Slice]) -> T<Self> {
        linear(tensor, |t| B::float_slice(t, slices))
    }

    fn float_slice_assign(tensor: T<Self>, slices: &[Slice], value: T<Self>) -> T<Self> {
        let tangent = match (&tensor.tangent, &value.tangent) {
            (None, None) => None,
            _ => Some(B::float_slice_assign(
                tangent_or_zeros(&tensor),
                slices,
                tangent_or_zeros(&value),
            )),
        };
        DualTensor::new(B::float_slice_assign(tensor.primal, slices, value.primal), tangent)
    }

    fn float_mask_where(tensor: T<Self>, mask: BoolTensor<Self>, value: T<Self>) -> T<Self> {
        let tangent = match (&tensor.tangent, &value.tangent) {
            (None, None) => None,
            _ => Some(B::float_mask_where(
                tangent_or_zeros(&tensor),
                mask.clone(),
                tangent_or_zeros(&value),
            )),
        };
        let y = B::float_mask_where(tensor.primal, mask, value.primal);
        let shape = y.shape();
        DualTensor::new(y, tangent.map(|t| broadcast::<B>(t, &shape)))
    }

    fn float_mask_fill(tensor: T<Self>, mask: BoolTensor<Self>, value: Scalar) -> T<Self> {
        let tangent = tensor.tangent.map(|t| B::float_mask_fill(t, mask.clone(), scalar(0.0)));
        DualTensor::new(B::float_mask_fill(tensor.primal, mask, value), tangent)
    }

    fn float_equal(lhs: T<Self>, rhs: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_equal(primal(lhs), primal(rhs), out_dtype)
    }

    fn float_not_equal(lhs: T<Self>, rhs: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_not_equal(primal(lhs), primal(rhs), out_dtype)
    }

    fn float_equal_elem(lhs: T<Self>, rhs: Scalar, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_equal_elem(lhs.primal, rhs, out_dtype)
    }

    fn float_not_equal_elem(lhs: T<Self>, rhs: Scalar, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_not_equal_elem(lhs.primal, rhs, out_dtype)
    }

    fn float_greater(lhs: T<Self>, rhs: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_greater(lhs.primal, rhs.primal, out_dtype)
    }

    fn float_greater_elem(lhs: T<Self>, rhs: Scalar, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_greater_elem(lhs.primal, rhs, out_dtype)
    }

    fn float_greater_equal(lhs: T<Self>, rhs: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_greater_equal(lhs.primal, rhs.primal, out_dtype)
    }

    fn float_greater_equal_elem(lhs: T<Self>, rhs: Scalar, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_greater_equal_elem(lhs.primal, rhs, out_dtype)
    }

    fn float_lower(lhs: T<Self>, rhs: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_lower(lhs.primal, rhs.primal, out_dtype)
    }

    fn float_lower_elem(lhs: T<Self>, rhs: Scalar, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_lower_elem(lhs.primal, rhs, out_dtype)
    }

    fn float_lower_equal(lhs: T<Self>, rhs: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_lower_equal(lhs.primal, rhs.primal, out_dtype)
    }

    fn float_lower_equal_elem(lhs: T<Self>, rhs: Scalar, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_lower_equal_elem(lhs.primal, rhs, out_dtype)
    }

    fn float_detach(tensor: T<Self>) -> T<Self> {
        // A detached value is a constant for every derivative: reverse and forward.
        DualTensor::constant(B::float_detach(tensor.primal))
    }

    fn float_set_require_grad(tensor: T<Self>, require_grad: bool) -> T<Self> {
        DualTensor::new(B::float_set_require_grad(tensor.primal, require_grad), tensor.tangent)
    }

    fn float_is_require_grad(tensor: &T<Self>) -> bool {
        B::float_is_require_grad(&tensor.primal)
    }

    fn float_sum(tensor: T<Self>) -> T<Self> {
        linear(tensor, B::float_sum)
    }

    fn float_sum_dim(tensor: T<Self>, dim: usize) -> T<Self> {
        linear(tensor, |t| B::float_sum_dim(t, dim))
    }

    fn float_mean(tensor: T<Self>) -> T<Self> {
        linear(tensor, B::float_mean)
    }

    fn float_mean_dim(tensor: T<Self>, dim: usize) -> T<Self> {
        linear(tensor, |t| B::float_mean_dim(t, dim))
    }

    fn float_cumsum(tensor: T<Self>, dim: usize) -> T<Self> {
        linear(tensor, |t| B::float_cumsum(t, dim))
    }

    fn float_cumprod(tensor: T<Self>, dim: usize) -> T<Self> {
        // d(Π_{j≤i} x_j) = y_i Σ_{j≤i} t_j / x_j (inputs must be nonzero).
        unary(
            tensor,
            |x| B::float_cumprod(x, dim),
            |t, x, y| B::float_mul(y, B::float_cumsum(B::float_div(t, x), dim)),
        )
    }

    fn float_cummin(tensor: T<Self>, dim: usize) -> T<Self> {
        unary(
            tensor,
            |x| B::float_cummin(x, dim),
            |t, x, y| B::float_gather(dim, t, cum_extreme_indices::<B>(&x, &y, dim)),
        )
    }

    fn float_cummax(tensor: T<Self>, dim: usize) -> T<Self> {
        unary(
            tensor,
            |x| B::float_cummax(x, dim),
            |t, x, y| B::float_gather(dim, t, cum_extreme_indices::<B>(&x, &y, dim)),
        )
    }

    fn float_cast(tensor: T<Self>, dtype: FloatDType) -> T<Self> {
        linear(tensor, |t| B::float_cast(t, dtype))
    }

    fn float_exp(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_exp, |t, _, y| B::float_mul(t, y))
    }

    fn float_log(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_log, |t, x, _| B::float_div(t, x))
    }

    fn float_log1p(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_log1p, |t, x, _| {
            B::float_div(t, B::float_add_scalar(x, scalar(1.0)))
        })
    }

    fn float_powf(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        // d(a^b) = t_a · b · a^(b−1) + t_b · a^b · ln a (the second term only when b
        // moves, so a negative base with a constant exponent stays finite).
        binary(
            lhs,
            rhs,
            B::float_powf,
            |t, a, b, _| {
                let d = B::float_mul(
                    b.clone(),
                    B::float_powf(a.clone(), B::float_sub_scalar(b.clone(), scalar(1.0))),
                );
                B::float_mul(t, d)
            },
            |t, a, _, y| B::float_mul(t, B::float_mul(y.clone(), B::float_log(a.clone()))),
        )
    }

    fn float_powf_scalar_impl(tensor: T<Self>, value: Scalar) -> T<Self> {
        let k = value.elem::<f64>();
        unary(
            tensor,
            |x| B::float_powf_scalar_impl(x, value),
            |t, x, _| pow_scalar_tangent::<B>(t, x, k),
        )
    }

    fn float_powi_scalar_impl(tensor: T<Self>, value: Scalar) -> T<Self> {
        let k = value.elem::<f64>();
        unary(
            tensor,
            |x| B::float_powi_scalar_impl(x, value),
            |t, x, _| pow_scalar_tangent::<B>(t, x, k),
        )
    }

    fn float_sqrt(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_sqrt, |t, _, y| {
            B::float_div(t, B::float_mul_scalar(y, scalar(2.0)))
        })
    }

    fn float_abs(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_abs, |t, x, _| B::float_mul(t, B::float_sign(x)))
    }

    fn float_cos(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_cos, |t, x, _| {
            B::float_neg(B::float_mul(t, B::float_sin(x)))
        })
    }

    fn float_sin(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_sin, |t, x, _| B::float_mul(t, B::float_cos(x)))
    }

    fn float_tan(tensor: T<Self>) -> T<Self> {
        // d tan x = 1 + tan² x
        unary(tensor, B::float_tan, |t, _, y| {
            B::float_mul(t, B::float_add_scalar(B::float_mul(y.clone(), y), scalar(1.0)))
        })
    }

    fn float_cosh(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_cosh, |t, x, _| B::float_mul(t, B::float_sinh(x)))
    }

    fn float_sinh(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_sinh, |t, x, _| B::float_mul(t, B::float_cosh(x)))
    }

    fn float_tanh(tensor: T<Self>) -> T<Self> {
        // d tanh x = 1 − tanh² x
        unary(tensor, B::float_tanh, |t, _, y| {
            let d = B::float_neg(B::float_sub_scalar(B::float_mul(y.clone(), y), scalar(1.0)));
            B::float_mul(t, d)
        })
    }

    fn float_acos(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_acos, |t, x, _| {
            let s = B::float_neg(B::float_sub_scalar(B::float_mul(x.clone(), x), scalar(1.0)));
            B::float_neg(over_sqrt::<B>(t, s))
        })
    }

    fn float_acosh(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_acosh, |t, x, _| {
            over_sqrt::<B>(t, B::float_sub_scalar(B::float_mul(x.clone(), x), scalar(1.0)))
        })
    }

    fn float_asin(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_asin, |t, x, _| {
            over_sqrt::<B>(
                t,
                B::float_neg(B::float_sub_scalar(B::float_mul(x.clone(), x), scalar(1.0))),
            )
        })
    }

    fn float_asinh(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_asinh, |t, x, _| {
            over_sqrt::<B>(t, B::float_add_scalar(B::float_mul(x.clone(), x), scalar(1.0)))
        })
    }

    fn float_atan(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_atan, |t, x, _| {
            B::float_div(t, B::float_add_scalar(B::float_mul(x.clone(), x), scalar(1.0)))
        })
    }

    fn float_atanh(tensor: T<Self>) -> T<Self> {
        unary(tensor, B::float_atanh, |t, x, _| {
            B::float_div(
                t,
                B::float_neg(B::float_sub_scalar(B::float_mul(x.clone(), x), scalar(1.0))),
            )
        })
    }

    fn float_atan2(lhs: T<Self>, rhs: T<Self>) -> T<Self> {
        // atan2(y, x): d = (x t_y − y t_x) / (x² + y²)
        let norm =
            |y: &T<B>, x: &T<B>| B::float_add(B::float_mul(x.clone(), x.clone()), B::float_mul(y.clone(), y.clone()));
        binary(
            lhs,
            rhs,
            B::float_atan2,
            |t, y, x, _| B::float_div(B::float_mul(t, x.clone()), norm(y, x)),
            |t, y, x, _| B::float_neg(B::float_div(B::float_mul(t, y.clone()), norm(y, x))),
        )
    }

    fn float_round(tensor: T<Self>) -> T<Self> {
        flat(tensor, B::float_round)
    }

    fn float_floor(tensor: T<Self>) -> T<Self> {
        flat(tensor, B::float_floor)
    }

    fn float_ceil(tensor: T<Self>) -> T<Self> {
        flat(tensor, B::float_ceil)
    }

    fn float_trunc(tensor: T<Self>) -> T<Self> {
        flat(tensor, B::float_trunc)
    }

    fn float_sign(tensor: T<Self>) -> T<Self> {
        flat(tensor, B::float_sign)
    }

    fn float_erf(tensor: T<Self>) -> T<Self> {
        // d erf x = 2/√π · e^{−x²}
        unary(tensor, B::float_erf, |t, x, _| {
            let g = B::float_exp(B::float_neg(B::float_mul(x.clone(), x)));
            B::float_mul(t, B::float_mul_scalar(g, scalar(std::f64::consts::FRAC_2_SQRT_PI)))
        })
    }

    fn float_cat(tensors: Vec<T<Self>>, dim: usize) -> T<Self> {
        let tangent = tensors
            .iter()
            .any(|t| t.tangent.is_some())
            .then(|| B::float_cat(tensors.iter().map(tangent_or_zeros).collect(), dim));
        DualTensor::new(B::float_cat(tensors.into_iter().map(primal).collect(), dim), tangent)
    }

    fn float_argmax(tensor: T<Self>, dim: usize, out_dtype: IntDType) -> IntTensor<Self> {
        B::float_argmax(tensor.primal, dim, out_dtype)
    }

    fn float_argtopk(tensor: T<Self>, dim: usize, k: usize, out_dtype: IntDType) -> IntTensor<Self> {
        B::float_argtopk(tensor.primal, dim, k, out_dtype)
    }

    fn float_argmin(tensor: T<Self>, dim: usize, out_dtype: IntDType) -> IntTensor<Self> {
        B::float_argmin(tensor.primal, dim, out_dtype)
    }

    fn float_max_dim_with_indices(tensor: T<Self>, dim: usize, indices_dtype: IntDType) -> (T<Self>, IntTensor<Self>) {
        let (y, indices) = B::float_max_dim_with_indices(tensor.primal, dim, indices_dtype);
        let tangent = tensor.tangent.map(|t| B::float_gather(dim, t, indices.clone()));
        (DualTensor::new(y, tangent), indices)
    }

    fn float_min_dim_with_indices(tensor: T<Self>, dim: usize, indices_dtype: IntDType) -> (T<Self>, IntTensor<Self>) {
        let (y, indices) = B::float_min_dim_with_indices(tensor.primal, dim, indices_dtype);
        let tangent = tensor.tangent.map(|t| B::float_gather(dim, t, indices.clone()));
        (DualTensor::new(y, tangent), indices)
    }

    fn float_sort(tensor: T<Self>, dim: usize, descending: bool) -> T<Self> {
        let settings = burn::tensor::get_device_settings::<B>(&B::float_device(&tensor.primal));
        Self::float_sort_with_indices(tensor, dim, descending, settings.int_dtype).0
    }

    fn float_sort_with_indices(
        tensor: T<Self>,
        dim: usize,
        descending: bool,
        indices_dtype: IntDType,
    ) -> (T<Self>, IntTensor<Self>) {
        let (y, indices) = B::float_sort_with_indices(tensor.primal, dim, descending, indices_dtype);
        let tangent = tensor.tangent.map(|t| B::float_gather(dim, t, indices.clone()));
        (DualTensor::new(y, tangent), indices)
    }

    fn float_argsort(tensor: T<Self>, dim: usize, descending: bool, out_dtype: IntDType) -> IntTensor<Self> {
        B::float_argsort(tensor.primal, dim, descending, out_dtype)
    }

    fn float_expand(tensor: T<Self>, shape: Shape) -> T<Self> {
        linear(tensor, |t| B::float_expand(t, shape.clone()))
    }

    fn float_unfold(tensor: T<Self>, dim: usize, size: usize, step: usize) -> T<Self> {
        linear(tensor, |t| B::float_unfold(t, dim, size, step))
    }

    fn float_gather_nd(data: T<Self>, indices: IntTensor<Self>) -> T<Self> {
        linear(data, |t| B::float_gather_nd(t, indices.clone()))
    }

    fn float_is_nan(tensor: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_is_nan(tensor.primal, out_dtype)
    }

    fn float_is_inf(tensor: T<Self>, out_dtype: BoolDType) -> BoolTensor<Self> {
        B::float_is_inf(tensor.primal, out_dtype)
    }
}
