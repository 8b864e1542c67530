//! `hessfree bench`: what each piece costs on each backend (micro), and whether HF beats
//! first-order training at equal wall time (macro).

pub mod macro_bench;
pub mod micro;
pub mod report;

use serde::{Deserialize, Serialize};

/// A burn backend for a run or a benchmark: one enum and one dispatch (`on_backend!`
/// in main.rs) for the whole program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BenchBackend {
    /// burn-flex with hf's vectorized, multi-threaded elementwise functions
    /// (`hf_burn::fast::FastFlex`), f32: the fastest CPU backend here.
    Flex,
    /// burn-flex as shipped, f32 (for comparison with `flex`).
    FlexPlain,
    /// burn-ndarray, f32.
    Ndarray,
    /// burn-ndarray, f64.
    NdarrayF64,
    /// burn-wgpu, f32.
    Wgpu,
    /// burn-cuda, f32 (feature `cuda`).
    Cuda,
}

impl BenchBackend {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            BenchBackend::Flex => "flex",
            BenchBackend::FlexPlain => "flex-plain",
            BenchBackend::Ndarray => "ndarray",
            BenchBackend::NdarrayF64 => "ndarray-f64",
            BenchBackend::Wgpu => "wgpu",
            BenchBackend::Cuda => "cuda",
        }
    }
}

/// A backend that could not be measured, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The backend.
    pub backend: String,
    /// Why.
    pub reason: String,
}

/// Whether backend `b` can run here, or why not.
pub fn available(b: BenchBackend) -> Result<(), String> {
    match b {
        BenchBackend::Wgpu => wgpu_available(),
        BenchBackend::Cuda => cuda_available(),
        _ => Ok(()),
    }
}

/// Whether a CUDA device answers, or why not.
pub fn cuda_available() -> Result<(), String> {
    #[cfg(feature = "cuda")]
    {
        use burn::prelude::*;
        let probe = std::panic::catch_unwind(|| {
            let t = Tensor::<burn::backend::Cuda, 1>::from_floats([1.0, 2.0], &Default::default());
            t.sum().into_scalar()
        });
        match probe {
            Ok(s) if (s - 3.0).abs() < 1e-6 => Ok(()),
            _ => Err("no CUDA device (no NVIDIA driver, or no GPU visible to this process)".into()),
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(
            "this hessfree was built without the cuda feature (cargo build --release -p hf-bench --features cuda)"
                .into(),
        )
    }
}

/// Whether wgpu's default adapter renders on the CPU (Mesa's llvmpipe/lavapipe or
/// another software Vulkan), and its name: there a micro-benchmark mostly times shader
/// compilation on the CPU, minutes of it, not a GPU. `None` when no adapter answers or
/// the build has no wgpu.
pub fn wgpu_software_adapter() -> Option<(bool, String)> {
    #[cfg(feature = "wgpu")]
    {
        use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, RuntimeOptions, WgpuDevice};
        // `init_setup` also registers the device, exactly as the first tensor on it
        // would: the benchmarks that follow use this set-up.
        std::panic::catch_unwind(|| {
            let setup = init_setup::<AutoGraphicsApi>(&WgpuDevice::DefaultDevice, RuntimeOptions::default());
            let info = setup.adapter.get_info();
            // Compared by name so that hf-bench needs no direct wgpu dependency.
            (format!("{:?}", info.device_type) == "Cpu", info.name)
        })
        .ok()
    }
    #[cfg(not(feature = "wgpu"))]
    {
        None
    }
}

/// Whether a wgpu device answers, or why not.
pub fn wgpu_available() -> Result<(), String> {
    #[cfg(feature = "wgpu")]
    {
        use burn::prelude::*;
        let probe = std::panic::catch_unwind(|| {
            let t = Tensor::<burn::backend::Wgpu, 1>::from_floats([1.0, 2.0], &Default::default());
            t.sum().into_scalar()
        });
        match probe {
            Ok(s) if (s - 3.0).abs() < 1e-6 => Ok(()),
            _ => Err(
                "no wgpu adapter (no Vulkan, Metal or DX12 driver; on Debian: mesa-vulkan-drivers libvulkan1)".into(),
            ),
        }
    }
    #[cfg(not(feature = "wgpu"))]
    {
        Err("this hessfree was built without the wgpu feature".into())
    }
}
