//! The backend-wide half of a burn backend decorator: `B`'s devices, element types and
//! int, bool and quantized tensors, and every backend-wide call passed through to `B`.
//! The two decorators, `Dual` and `FastCpu`, differ only in their float tensor and
//! their name (named here without links: this module stays below both).

/// `BackendTypes` and `Backend` for `$decorator<B>`, whose float tensor is `$float`
/// and whose name is `$prefix<B's name>`.
macro_rules! decorator_backend {
    ($decorator:ident, $float:ty, $prefix:literal) => {
        impl<B: burn::tensor::backend::Backend> burn::tensor::backend::BackendTypes for $decorator<B> {
            type Device = B::Device;

            type FloatTensorPrimitive = $float;
            type FloatElem = B::FloatElem;

            type IntTensorPrimitive = B::IntTensorPrimitive;
            type IntElem = B::IntElem;

            type BoolTensorPrimitive = B::BoolTensorPrimitive;
            type BoolElem = B::BoolElem;

            type QuantizedTensorPrimitive = B::QuantizedTensorPrimitive;
        }

        impl<B: burn::tensor::backend::Backend> burn::tensor::backend::Backend for $decorator<B> {
            fn ad_enabled(device: &Self::Device) -> bool {
                B::ad_enabled(device)
            }

            fn name(device: &Self::Device) -> String {
                format!(concat!($prefix, "<{}>"), B::name(device))
            }

            fn seed(device: &Self::Device, seed: u64) {
                B::seed(device, seed)
            }

            fn sync(device: &Self::Device) -> Result<(), burn::tensor::backend::ExecutionError> {
                B::sync(device)
            }

            fn memory_cleanup(device: &Self::Device) {
                B::memory_cleanup(device)
            }

            fn staging<'a, Iter>(data: Iter, device: &Self::Device)
            where
                Iter: Iterator<Item = &'a mut burn::tensor::TensorData>,
            {
                B::staging(data, device);
            }

            fn supports_dtype(device: &Self::Device, dtype: burn::tensor::DType) -> bool {
                B::supports_dtype(device, dtype)
            }

            fn dtype_usage(device: &Self::Device, dtype: burn::tensor::DType) -> burn::tensor::backend::DTypeUsageSet {
                B::dtype_usage(device, dtype)
            }

            fn device_count(type_id: u16) -> usize {
                B::device_count(type_id)
            }
        }
    };
}

pub(crate) use decorator_backend;
