//! Any burn module's trainable float parameters as one flat vector, and back.
//!
//! A module's float tensors are visited in a fixed order. The trainable ones — those
//! that require a gradient — are the entries of `θ`; the others (BatchNorm's running
//! statistics, parameters marked `set_require_grad(false)` or `no_grad()`) keep
//! their values and never enter the optimizer.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::error::{Error, Result};

/// Which of a module's float tensors are trainable, and the shapes of those that are,
/// in the order burn visits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    /// Per visited float tensor: whether it is an entry of `θ`.
    trainable: Vec<bool>,
    /// Shapes of the trainable tensors.
    shapes: Vec<Vec<usize>>,
    len: usize,
}

/// Every visited float tensor: its shape and, when `requirement` is set, whether it
/// requires a gradient (which initializes a lazy parameter; otherwise `true`).
fn visit_all<B: Backend, M: Module<B>>(module: &M, requirement: bool) -> Vec<(Vec<usize>, bool)> {
    struct Visit(Vec<(Vec<usize>, bool)>, bool);
    impl<B: Backend> ModuleVisitor<B> for Visit {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let requires = !self.1 || param.val().is_require_grad();
            self.0.push((param.lazy_shape().to_vec(), requires));
        }
    }
    let mut v = Visit(Vec::new(), requirement);
    module.visit(&mut v);
    v.0
}

impl ParamLayout {
    fn from_visits(visits: Vec<(Vec<usize>, bool)>) -> Self {
        let trainable: Vec<bool> = visits.iter().map(|(_, t)| *t).collect();
        let shapes: Vec<Vec<usize>> = visits.into_iter().filter(|(_, t)| *t).map(|(s, _)| s).collect();
        let len = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
        Self { trainable, shapes, len }
    }

    /// The layout of every float parameter of `module` (a module on a plain backend
    /// cannot tell which parameters require a gradient: all are taken).
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        Self::from_visits(visit_all(module, false))
    }

    /// The layout of `module`'s trainable parameters: on an autodiff backend, the float
    /// tensors that require a gradient.
    pub fn of_trainable<B: AutodiffBackend, M: Module<B>>(module: &M) -> Self {
        Self::from_visits(visit_all(module, true))
    }

    /// Total number of scalar parameters in `θ`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the module has no trainable float parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shapes of the trainable parameter tensors.
    pub fn shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Per visited float tensor, in visiting order: whether it is trainable.
    pub fn trainable(&self) -> &[bool] {
        &self.trainable
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

    /// Checks that `module` has the float tensors this layout was taken from.
    fn check_module<B: Backend, M: Module<B>>(&self, module: &M) -> Result<()> {
        let visits = visit_all(module, false);
        let matches = visits.len() == self.trainable.len()
            && visits
                .iter()
                .zip(&self.trainable)
                .filter(|(_, t)| **t)
                .map(|((s, _), _)| s)
                .eq(self.shapes.iter());
        if matches {
            Ok(())
        } else {
            Err(Error::ParameterShape {
                expected: self.len,
                found: Self::of(module).len,
                shapes: self.shapes.clone(),
            })
        }
    }

    /// Concatenates `module`'s trainable parameters (as this layout marks them) into
    /// one 1-D tensor.
    ///
    /// # Errors
    /// [`Error::NoParameters`] when nothing is trainable; [`Error::ParameterShape`]
    /// for a module this layout was not taken from.
    pub fn gather<B: Backend, M: Module<B>>(&self, module: &M) -> Result<Tensor<B, 1>> {
        self.check_module(module)?;
        struct Collect<'a, B: Backend> {
            trainable: &'a [bool],
            index: usize,
            pieces: Vec<Tensor<B, 1>>,
        }
        impl<B: Backend> ModuleVisitor<B> for Collect<'_, B> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if self.trainable[self.index] {
                    let t = param.val();
                    let n = t.shape().num_elements();
                    self.pieces.push(t.reshape([n]));
                }
                self.index += 1;
            }
        }
        let mut c = Collect {
            trainable: &self.trainable,
            index: 0,
            pieces: Vec::new(),
        };
        module.visit(&mut c);
        if c.pieces.is_empty() {
            return Err(Error::NoParameters);
        }
        Ok(Tensor::cat(c.pieces, 0))
    }

    /// The values of `module`'s frozen (not trainable) float tensors, in visiting order.
    pub(crate) fn frozen_values<B: Backend, M: Module<B>>(&self, module: &M) -> Vec<TensorData> {
        struct Collect<'a> {
            trainable: &'a [bool],
            index: usize,
            values: Vec<TensorData>,
        }
        impl<B: Backend> ModuleVisitor<B> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if !self.trainable[self.index] {
                    self.values.push(param.val().into_data());
                }
                self.index += 1;
            }
        }
        let mut c = Collect {
            trainable: &self.trainable,
            index: 0,
            values: Vec::new(),
        };
        module.visit(&mut c);
        c.values
    }

    /// `module` with its frozen float tensors set to zero: the template of a tangent,
    /// whose frozen parameters do not move.
    pub(crate) fn with_frozen_zero<B: Backend, M: Module<B>>(&self, module: M) -> M {
        struct Zero<'a> {
            trainable: &'a [bool],
            index: usize,
        }
        impl<B: Backend> ModuleMapper<B> for Zero<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                let frozen = !self.trainable[self.index];
                self.index += 1;
                if frozen {
                    param.map(|t| t.zeros_like())
                } else {
                    param
                }
            }
        }
        module.map(&mut Zero {
            trainable: &self.trainable,
            index: 0,
        })
    }

    /// `module` with its frozen float tensors set to `values` (from [`frozen_values`](Self::frozen_values)),
    /// so that every backend's copy of a network holds the same constants.
    pub(crate) fn with_frozen<B: Backend, M: Module<B>>(&self, module: M, values: &[TensorData]) -> M {
        struct Set<'a> {
            trainable: &'a [bool],
            index: usize,
            values: std::slice::Iter<'a, TensorData>,
        }
        impl<B: Backend> ModuleMapper<B> for Set<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                let frozen = !self.trainable[self.index];
                self.index += 1;
                if !frozen {
                    return param;
                }
                match self.values.next() {
                    Some(data) => param.map(|t| Tensor::from_data(data.clone(), (&t.device(), t.dtype()))),
                    None => param,
                }
            }
        }
        if values.is_empty() {
            return module;
        }
        module.map(&mut Set {
            trainable: &self.trainable,
            index: 0,
            values: values.iter(),
        })
    }
}

/// Concatenates every float parameter of `module` into one 1-D tensor (a module on a
/// plain backend; see [`ParamLayout::gather`] for the trainable ones only).
pub fn flatten<B: Backend, M: Module<B>>(module: &M) -> Result<Tensor<B, 1>> {
    ParamLayout::of(module).gather(module)
}

/// Replaces `module`'s trainable float parameters by consecutive slices of `flat`
/// (reshaped); frozen ones keep their values.
///
/// The new parameters are views of `flat` in the autodiff graph, so the gradient of
/// anything computed with the module, taken with respect to `flat`, is the flat
/// gradient. (Each slice's backward pass writes a `flat`-sized gradient, though: for
/// gradients of many parameters, [`cut`] `flat` into leaves and use [`load_pieces`].)
///
/// # Errors
/// [`Error::ParameterShape`] if `flat` or `module` does not fit `layout`.
pub fn load<B: Backend, M: Module<B>>(module: M, layout: &ParamLayout, flat: &Tensor<B, 1>) -> Result<M> {
    load_pieces(module, layout, cut(layout, flat)?)
}

/// `flat` cut into one 1-D piece per trainable parameter, in the order of `θ` (views
/// where the backend has them, no copies).
///
/// # Errors
/// [`Error::ParameterShape`] if `flat`'s length is not `layout`'s.
pub fn cut<B: Backend>(layout: &ParamLayout, flat: &Tensor<B, 1>) -> Result<Vec<Tensor<B, 1>>> {
    layout.check(flat.dims()[0])?;
    let mut offset = 0;
    Ok(layout
        .shapes
        .iter()
        .map(|shape| {
            let n: usize = shape.iter().product();
            offset += n;
            flat.clone().slice(offset - n..offset)
        })
        .collect())
}

/// Replaces `module`'s trainable float parameters by `pieces` (one per trainable
/// parameter, in order, as [`cut`] makes them), reshaped; frozen ones keep their
/// values. With each piece a leaf of the autodiff graph, one backward pass yields one
/// gradient per parameter, which `Tensor::cat` joins into the flat gradient in a single
/// copy.
///
/// # Errors
/// [`Error::ParameterShape`] if the pieces or `module` do not fit `layout`.
pub fn load_pieces<B: Backend, M: Module<B>>(module: M, layout: &ParamLayout, pieces: Vec<Tensor<B, 1>>) -> Result<M> {
    layout.check_module(&module)?;
    // `shapes` lists the trainable parameters only.
    let sizes: Vec<usize> = layout.shapes.iter().map(|shape| shape.iter().product()).collect();
    let found: Vec<usize> = pieces.iter().map(|p| p.dims()[0]).collect();
    if found != sizes {
        return Err(Error::ParameterShape {
            expected: sizes.iter().sum(),
            found: found.iter().sum(),
            shapes: layout.shapes.clone(),
        });
    }
    struct Load<B: Backend> {
        pieces: std::vec::IntoIter<Tensor<B, 1>>,
        trainable: Vec<bool>,
        index: usize,
    }
    impl<B: Backend> ModuleMapper<B> for Load<B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let trainable = self.trainable[self.index];
            self.index += 1;
            if !trainable {
                return param;
            }
            let dims: [usize; D] = param.lazy_shape().dims();
            let piece = self
                .pieces
                .next()
                .expect("one piece per trainable parameter, checked above");
            param.map(|_| piece.reshape(dims))
        }
    }
    Ok(module.map(&mut Load {
        pieces: pieces.into_iter(),
        trainable: layout.trainable.clone(),
        index: 0,
    }))
}
