//! Any burn module's float parameters as one flat vector, and back.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::error::{Error, Result};

/// The shapes of a module's float parameters, in the order burn visits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    shapes: Vec<Vec<usize>>,
    len: usize,
}

impl ParamLayout {
    /// The layout of `module`'s float parameters.
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        struct Shapes(Vec<Vec<usize>>);
        impl<B: Backend> ModuleVisitor<B> for Shapes {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                self.0.push(param.lazy_shape().to_vec());
            }
        }
        let mut shapes = Shapes(Vec::new());
        module.visit(&mut shapes);
        let len = shapes.0.iter().map(|s| s.iter().product::<usize>()).sum();
        Self { shapes: shapes.0, len }
    }

    /// Total number of scalar parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the module has no float parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shapes of the parameter tensors.
    pub fn shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Checks that a flat vector of `found` entries fits this layout.
    pub fn check(&self, found: usize) -> Result<()> {
        if found == self.len {
            Ok(())
        } else {
            Err(Error::ParameterShape {
                expected: self.len,
                found,
                shapes: self.shapes.clone(),
            })
        }
    }
}

/// Concatenates `module`'s float parameters into one 1-D tensor.
pub fn flatten<B: Backend, M: Module<B>>(module: &M) -> Result<Tensor<B, 1>> {
    struct Collect<B: Backend>(Vec<Tensor<B, 1>>);
    impl<B: Backend> ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    if c.0.is_empty() {
        return Err(Error::NoParameters);
    }
    Ok(Tensor::cat(c.0, 0))
}

/// Replaces `module`'s float parameters by consecutive slices of `flat` (reshaped).
///
/// The new parameters are views of `flat` in the autodiff graph, so the gradient of
/// anything computed with the module, taken with respect to `flat`, is the flat
/// gradient: no per-parameter collection is needed.
pub fn load<B: Backend, M: Module<B>>(module: M, layout: &ParamLayout, flat: &Tensor<B, 1>) -> Result<M> {
    layout.check(flat.dims()[0])?;
    struct Load<'a, B: Backend> {
        flat: &'a Tensor<B, 1>,
        offset: usize,
    }
    impl<B: Backend> ModuleMapper<B> for Load<'_, B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let shape = param.lazy_shape();
            let n = shape.num_elements();
            let dims: [usize; D] = shape.dims();
            let range = self.offset..self.offset + n;
            let slice = self.flat.clone().slice(range).reshape(dims);
            self.offset += n;
            param.map(|_| slice)
        }
    }
    Ok(module.map(&mut Load { flat, offset: 0 }))
}
