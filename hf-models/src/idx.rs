//! The IDX format of MNIST and Fashion-MNIST, gzipped or raw.
//!
//! Every header field is checked against the file: the magic number, the element
//! type, the dimensions, and the payload length (a truncated file or trailing bytes
//! are errors that name the file and both lengths; nothing is silently cut short).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file, gunzipping it when it starts with the gzip magic number.
///
/// # Errors
/// [`DataError::Io`] if it cannot be read, [`DataError::Corrupt`] if it is not a
/// valid unsigned-byte IDX file.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| corrupt(path, format!("gzip stream is damaged ({e})")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes, path)
}

fn corrupt(path: &Path, reason: String) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// Parses IDX bytes (already decompressed); `path` names the source in errors.
///
/// # Errors
/// [`DataError::Corrupt`] for a bad magic number, an element type other than
/// unsigned byte (`0x08`), or a payload whose length disagrees with the header.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(corrupt(
            path,
            format!("{} bytes, shorter than the 4-byte magic number", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(corrupt(
            path,
            format!(
                "magic number starts {:#04x} {:#04x}, expected 0x00 0x00",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(corrupt(
            path,
            format!(
                "element type {:#04x}; only unsigned bytes (0x08) are supported",
                bytes[2]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(corrupt(path, "zero dimensions".into()));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(corrupt(
            path,
            format!(
                "truncated header: {} bytes, {ndims} dimensions need {header}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| corrupt(path, format!("dimensions {dims:?} overflow")))?;
    let found = bytes.len() - header;
    if found != expected {
        let what = if found < expected {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(corrupt(
            path,
            format!("{what}: dimensions {dims:?} need {expected} data bytes, the file has {found}"),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Which half of an MNIST-style data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 60 000 training images.
    Train,
    /// The 10 000 test images.
    Test,
}

/// Images (scaled to `[0, 1]`) and labels of an MNIST-format data set.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledImages {
    /// `count × rows × cols` pixels in `[0, 1]`, row-major.
    pub pixels: Vec<f32>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl LabeledImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn features(&self) -> usize {
        self.rows * self.cols
    }
}

/// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::Missing {
        path: dir.join(stem),
        hint: format!(
            "expected {stem} or {stem}.gz in {}; for Fashion-MNIST install Debian's dataset-fashion-mnist \
             (files in {DEBIAN_FASHION_MNIST})",
            dir.display()
        ),
    })
}

/// Loads `train-*` or `t10k-*` images and labels from `dir` (MNIST or Fashion-MNIST).
///
/// # Errors
/// Missing or corrupt files, or image and label files that disagree.
pub fn load_mnist(dir: &Path, split: Split) -> Result<LabeledImages> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    if images.dims.len() != 3 {
        return Err(corrupt(
            &images_path,
            format!("image file has dimensions {:?}, expected 3", images.dims),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(corrupt(
            &labels_path,
            format!("label file has dimensions {:?}, expected 1", labels.dims),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::Inconsistent(format!(
            "{} holds {} images but {} holds {} labels",
            images_path.display(),
            images.dims[0],
            labels_path.display(),
            labels.dims[0]
        )));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(corrupt(&labels_path, format!("label {bad} outside 0..=9")));
    }
    Ok(LabeledImages {
        pixels: images.data.iter().map(|&b| f32::from(b) / 255.0).collect(),
        labels: labels.data,
        rows: images.dims[1],
        cols: images.dims[2],
    })
}
