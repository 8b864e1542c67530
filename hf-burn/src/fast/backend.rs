//! `FastCpu<B>` as a burn backend: `B`'s types and backend-wide calls.

use burn::tensor::backend::{Backend, ExecutionError};
use burn::tensor::ops::{TransactionOps, TransactionPrimitive, TransactionPrimitiveData};

use super::FastCpu;

crate::decorator::decorator_backend!(FastCpu, B::FloatTensorPrimitive, "fast");

impl<B: Backend> TransactionOps<Self> for FastCpu<B> {
    async fn tr_execute(transaction: TransactionPrimitive<Self>) -> Result<TransactionPrimitiveData, ExecutionError> {
        B::tr_execute(TransactionPrimitive::new(
            transaction.read_floats,
            transaction.read_qfloats,
            transaction.read_ints,
            transaction.read_bools,
        ))
        .await
    }
}
