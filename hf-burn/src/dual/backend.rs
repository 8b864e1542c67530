//! `Dual<B>` as a burn backend: its types and the backend-wide calls, all `B`'s.

use burn::tensor::backend::{Backend, ExecutionError};
use burn::tensor::ops::{TransactionOps, TransactionPrimitive, TransactionPrimitiveData};

use super::{Dual, DualTensor};

crate::decorator::decorator_backend!(Dual, DualTensor<B>, "dual");

impl<B: Backend> TransactionOps<Self> for Dual<B> {
    async fn tr_execute(transaction: TransactionPrimitive<Self>) -> Result<TransactionPrimitiveData, ExecutionError> {
        B::tr_execute(TransactionPrimitive::new(
            transaction.read_floats.into_iter().map(|t| t.primal).collect(),
            transaction.read_qfloats,
            transaction.read_ints,
            transaction.read_bools,
        ))
        .await
    }
}
