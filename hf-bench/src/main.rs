//! `hessfree`: train the Hessian-free papers' networks with HF, Adam or SGD on a chosen
//! burn backend, with progress, metrics, plots and checkpoints.

mod bench;
mod claim;
mod error;
mod experiment;
mod interrupt;
mod plot;
mod preset;
mod progress;
mod records;
mod run_dir;
mod settings;
mod setup;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::tensor::DType;
use clap::{Parser, Subcommand};

use bench::BenchBackend;
use error::{CliError, Result};
use interrupt::Interrupt;
use preset::{Preset, DEFAULT_SEQ_LEN};
use progress::Verbosity;
use settings::OptimizerKind;
use settings::RunConfig;
use train::{RunEnd, RunOptions, Worker};

/// Hessian-free optimization of deep and recurrent networks.
#[derive(Parser, Debug)]
#[command(name = "hessfree", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[global_allocator]
static ALLOCATOR: hf_burn::peak_alloc::PeakAlloc = hf_burn::peak_alloc::PeakAlloc;

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a preset (default: a small CURVES autoencoder, a few minutes on a CPU).
    Train(TrainArgs),
    /// Measure what each piece costs per backend, and HF against Adam and SGD.
    Bench(BenchArgs),
    /// Run one of the papers' studies.
    #[command(subcommand)]
    Experiment(ExperimentCommand),
    /// Coordinate the processes of one multi-process run (`train --nodes`): start it
    /// first, one per run, and stop it (Ctrl-C) when the run has ended.
    Orchestrator(OrchestratorArgs),
}

#[derive(Subcommand, Debug)]
enum ExperimentCommand {
    /// HF (structural damping) against Adam on the pathological RNN tasks, per task
    /// and length, at equal wall time; success = held-out zero-one loss below 1%.
    RnnTasks(RnnTasksArgs),
}

#[derive(clap::Args, Debug)]
struct RnnTasksArgs {
    /// Where the results go (results.md, results.json, a plot per task and length, runs/).
    #[arg(long, default_value = "rnn-tasks")]
    out: PathBuf,
    /// The tasks (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["addition", "multiplication", "temporal-order2"])]
    tasks: Vec<Preset>,
    /// Minimum sequence lengths T (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [50])]
    lengths: Vec<usize>,
    /// Seconds of training per method, task and length.
    #[arg(long, default_value_t = 300.0)]
    budget: f64,
    /// Adam's learning rates (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1e-3, 1e-2])]
    adam_rates: Vec<f64>,
    /// The backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: BenchBackend,
    /// Seed of initialization and data, the same for every method.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Continue a study in `--out`: runs that finished (with the same budget) are
    /// reused, not run again, and the tasks and lengths it measured before that are not
    /// listed now stay in its table.
    #[arg(long)]
    resume: bool,
    /// Which methods may start runs (the others appear only if they finished before):
    /// run the first-order methods of a long study first, HF later, or the reverse.
    #[arg(long, value_enum, default_value = "all")]
    start: bench::macro_bench::StartMethods,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// A few minutes on a 2-core CPU (small models and budgets); without it, the full
    /// suite meant for a GPU machine.
    #[arg(long)]
    quick: bool,
    /// Where the results go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Backends to measure (repeat the flag; default: all).
    #[arg(long = "backend", value_enum)]
    backends: Vec<BenchBackend>,
    /// The backend of the macro-benchmarks.
    #[arg(long, value_enum, default_value = "flex")]
    macro_backend: BenchBackend,
    /// Skip the micro-benchmarks.
    #[arg(long)]
    skip_micro: bool,
    /// Skip the macro-benchmarks.
    #[arg(long)]
    skip_macro: bool,
    /// Repeats per micro-benchmark (after one warm-up).
    #[arg(long)]
    repeats: Option<usize>,
    /// The micro-benchmarks' models (comma-separated; default: all, or the CURVES
    /// autoencoder and the RNN with --quick).
    #[arg(long, value_enum, value_delimiter = ',')]
    models: Vec<bench::micro::MicroModel>,
    /// The micro-benchmarks' batch sizes (comma-separated; default 100,1000, or 100
    /// with --quick).
    #[arg(long, value_delimiter = ',')]
    batches: Vec<usize>,
    /// Seconds of training per method in the macro-benchmarks.
    #[arg(long)]
    budget: Option<f64>,
    /// The macro-benchmarks' presets (comma-separated; default: curves-small, and
    /// curves without --quick).
    #[arg(long, value_enum, value_delimiter = ',')]
    presets: Vec<Preset>,
    /// HF's configurations in the macro-benchmarks (comma-separated; default: the
    /// preset's own).
    #[arg(long, value_enum, value_delimiter = ',')]
    hf_variants: Vec<bench::macro_bench::HfVariant>,
    /// Adam's learning rates in the macro-benchmarks (comma-separated; default: a sweep).
    #[arg(long, value_delimiter = ',')]
    adam_rates: Vec<f64>,
    /// SGD's learning rates in the macro-benchmarks (comma-separated; default: a sweep).
    #[arg(long, value_delimiter = ',', conflicts_with = "no_sgd")]
    sgd_rates: Vec<f64>,
    /// No SGD runs in the macro-benchmarks.
    #[arg(long)]
    no_sgd: bool,
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// The experiment [default: curves-small; with --resume, the run's].
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// The backend [default: flex; with --resume, the run's].
    #[arg(long, value_enum)]
    backend: Option<BenchBackend>,
    /// The optimizer [default: hf; with --resume, the run's].
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Seed of initialization and data [default: 1; with --resume, the run's].
    #[arg(long)]
    seed: Option<u64>,
    /// Directory of IDX data [default: data/mnist for mnist, data/faces for faces, Debian's
    /// Fashion-MNIST (/usr/share/datasets/fashion-mnist) for fashion-mnist and classifier].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where the run writes (default runs/PRESET-OPTIMIZER-BACKEND).
    #[arg(long)]
    out: Option<PathBuf>,
    /// JSON or TOML file overriding any setting (see --print-config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the effective settings as JSON and exit.
    #[arg(long)]
    print_config: bool,
    /// Iterations in all, `hf.max_iterations` (overrides the preset and the config file).
    #[arg(long)]
    iterations: Option<usize>,
    /// Set one setting by its path, value as JSON: `--set hf.cg.max_iterations=50`
    /// (repeatable; applied after --config; the paths are --print-config's).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Minimum sequence length T of the RNN tasks [default: 50; with --resume, the run's].
    #[arg(long)]
    seq_len: Option<usize>,
    /// Continue the run in this directory from its checkpoint, with the preset,
    /// backend, optimizer, seed and data it was started with.
    #[arg(long, conflicts_with_all = ["out", "overwrite"])]
    resume: Option<PathBuf>,
    /// Replace a run already in the output directory (without it, that is an error).
    #[arg(long)]
    overwrite: bool,
    /// No progress bar.
    #[arg(long, conflicts_with = "verbose")]
    quiet: bool,
    /// One line per iteration.
    #[arg(long)]
    verbose: bool,
    /// Data-parallel HF on this many workers in this process, one device each
    /// (`cuda:0..N-1`, wgpu's adapters; on a CPU backend they share its device):
    /// each worker computes every batch quantity on its shard of the batch and the
    /// workers sum them over burn-collective. A run resumes on any number of workers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    devices: u32,
    /// Data-parallel HF on this many processes (or machines), one worker each,
    /// coordinated by `hessfree orchestrator`; give each process its --rank, and
    /// --orchestrator and --node-address.
    #[arg(long, requires_all = ["rank", "orchestrator", "node_address"], conflicts_with = "devices",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    nodes: Option<u32>,
    /// This process's rank, 0..nodes: rank 0 writes the run directory, the others
    /// write nothing.
    #[arg(long, requires = "nodes")]
    rank: Option<u32>,
    /// The orchestrator's address, ws://HOST:PORT.
    #[arg(long, requires = "nodes", value_name = "ws://HOST:PORT")]
    orchestrator: Option<String>,
    /// How the other processes reach this one, ws://HOST:PORT; its data service
    /// listens on PORT on every interface.
    #[arg(long, requires = "nodes", value_name = "ws://HOST:PORT")]
    node_address: Option<String>,
    /// Seconds a worker waits for the others in one sum before it stops with an
    /// error naming the worker it lost.
    #[arg(long, default_value_t = 60.0)]
    collective_timeout: f64,
}

/// Coordinates the processes of one multi-process run.
#[derive(clap::Args, Debug)]
struct OrchestratorArgs {
    /// The port to listen on (every interface); the processes' --orchestrator is
    /// ws://THIS_HOST:PORT.
    #[arg(long)]
    port: u16,
}

/// Creates `dir` and proves it writable; on failure removes what it created.
fn prepare_output(dir: &Path) -> Result<()> {
    let existed = dir.exists();
    let io = |source| CliError::Output {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let probe = dir.join(".hf-write-probe");
    if let Err(e) = std::fs::write(&probe, b"") {
        if !existed {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(io(e));
    }
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn effective_config(args: &TrainArgs, preset: Preset, run_dir: Option<&Path>) -> Result<RunConfig> {
    // A resumed run keeps the settings it started with.
    let mut cfg = match run_dir.map(|d| d.join("config.json")).filter(|p| p.is_file()) {
        Some(saved) => preset.defaults().overridden_by(&saved)?,
        None => preset.defaults(),
    };
    if let Some(file) = &args.config {
        cfg = cfg.overridden_by(file)?;
    }
    for assignment in &args.set {
        cfg = cfg.with_assignment(assignment)?;
    }
    if let Some(n) = args.iterations {
        cfg.hf.max_iterations = n;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Runs `$body` with `$b` bound to the backend type of `$kind`, `$device` and `$dtype`.
macro_rules! on_backend {
    ($kind:expr, |$b:ident, $device:ident, $dtype:ident| $body:expr) => {
        match $kind {
            BenchBackend::Flex => {
                type $b = hf_burn::fast::FastFlex;
                let ($device, $dtype) = (Default::default(), DType::F32);
                $body
            }
            BenchBackend::FlexPlain => {
                type $b = burn::backend::Flex;
                let ($device, $dtype) = (Default::default(), DType::F32);
                $body
            }
            BenchBackend::Ndarray => {
                type $b = burn::backend::NdArray<f32>;
                let ($device, $dtype) = (Default::default(), DType::F32);
                $body
            }
            BenchBackend::NdarrayF64 => {
                type $b = burn::backend::NdArray<f64>;
                let ($device, $dtype) = (Default::default(), DType::F64);
                $body
            }
            #[cfg(feature = "wgpu")]
            BenchBackend::Wgpu => {
                type $b = burn::backend::Wgpu;
                let ($device, $dtype) = (Default::default(), DType::F32);
                $body
            }
            #[cfg(not(feature = "wgpu"))]
            BenchBackend::Wgpu => unreachable!("wgpu is reported as skipped before dispatch"),
            #[cfg(feature = "cuda")]
            BenchBackend::Cuda => {
                type $b = burn::backend::Cuda;
                let ($device, $dtype) = (Default::default(), DType::F32);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            BenchBackend::Cuda => unreachable!("cuda is reported as unavailable before dispatch"),
        }
    };
}

/// A run's exit status besides 0 (finished) and 1 (an error, nothing trained or the
/// run's files left as they were): the run stopped without reaching its budget or
/// target because it diverged or failed too many steps in a row.
const EXIT_FAILED_RUN: u8 = 3;

fn train(args: TrainArgs) -> Result<ExitCode> {
    let interrupt = Interrupt::install().map_err(|e| CliError::Unsupported(format!("cannot handle signals: {e}")))?;
    let flags = run_dir::IdentityFlags {
        preset: args.preset,
        backend: args.backend,
        optimizer: args.optimizer,
        seed: args.seed,
        seq_len: args.seq_len,
        data_dir: args.data_dir.clone(),
    };
    // Everything up to the claim of the run directory reads only.
    let identity = match &args.resume {
        Some(dir) => {
            let checkpoints = dir.join(hf_burn::train::checkpoint::CHECKPOINTS_DIR);
            if hf_burn::train::checkpoint::latest(&checkpoints)?.is_none() {
                return Err(CliError::Checkpoint {
                    path: checkpoints,
                    reason: "no checkpoint found: --resume takes the directory of an earlier run that saved one \
                             (a run stopped before its first checkpoint cannot be continued; start it again)"
                        .into(),
                });
            }
            run_dir::RunIdentity::for_resume(dir, &flags)?
        }
        None => run_dir::RunIdentity::from_flags(&flags, DEFAULT_SEQ_LEN),
    };
    let cfg = effective_config(&args, identity.preset, args.resume.as_deref())?;
    let worker = worker(&args)?;
    if worker.workers > 1 && identity.optimizer != OptimizerKind::Hf {
        return Err(CliError::Config(
            "--devices and --nodes run HF only: Adam and SGD train on one device (drop them, or use --optimizer hf)"
                .into(),
        ));
    }
    if args.print_config {
        println!("{}", serde_json::to_string_pretty(&cfg).expect("settings serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    let backend = identity.backend.name();
    let out = match (&args.resume, &args.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => identity.default_dir(),
    };
    // A new run never replaces another by accident: refused before any data is read
    // (and again under the directory's lock, when it is claimed).
    if args.resume.is_none() && !args.overwrite && worker.leads() {
        let present = run_dir::run_files(&out);
        if !present.is_empty() {
            return Err(CliError::RunExists {
                dir: out,
                files: present.join(", "),
            });
        }
    }
    let experiment = identity
        .preset
        .experiment(identity.data_dir.clone(), identity.seq_len)?;
    let data = match &experiment {
        preset::Experiment::Autoencoder(_, preset::ImageSource::Mnist(d)) | preset::Experiment::Classifier(_, d) => {
            if let Err(e) = hf_models::load_mnist(d, hf_models::Split::Test) {
                return Err(match (identity.preset.full_batch(), e) {
                    (Preset::Mnist, hf_models::DataError::Missing { path, .. }) => {
                        CliError::Config(format!("{} is missing: {}", path.display(), preset::MNIST_HINT))
                    }
                    (_, e) => e.into(),
                });
            }
            Some(records::DataInfo::of_idx_dir(identity.preset, d)?)
        }
        preset::Experiment::Autoencoder(_, preset::ImageSource::Faces(d)) => {
            Some(records::DataInfo::of_idx_dir(identity.preset, d)?)
        }
        _ => None,
    };
    let mut identity = identity;
    identity.check_data(&out, data.as_ref().map(|d| d.hash.as_str()), args.resume.is_some())?;
    bench::available(identity.backend).map_err(CliError::Unsupported)?;
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let opts = RunOptions {
        preset: identity.preset,
        backend: backend.to_string(),
        optimizer: identity.optimizer,
        seed: identity.seed,
        out: out.clone(),
        resume: args.resume.is_some(),
        verbosity,
        config: cfg.clone(),
        data,
        interrupt: interrupt.clone(),
        worker: worker.clone(),
    };
    // Called once the data is loaded, the network built and (on resume) the
    // checkpoint and metrics verified: only then is the directory claimed and
    // written. The claim lives until the run ends; dropped early (an error), it
    // removes a new run that has no checkpoint yet.
    let mut claimed: Option<claim::ClaimedDir> = None;
    let mut claim_dir = || -> Result<()> {
        if let Some(status) = interrupt.exit_status() {
            return Err(CliError::Interrupted {
                signal: interrupt.signal_name(),
                status,
            });
        }
        let held = if args.resume.is_some() {
            claim::ClaimedDir::resumed(&out)?
        } else {
            claim::ClaimedDir::new_run(&out, args.overwrite)?
        };
        identity.save_if_changed(&out)?;
        records::write_if_changed(
            &out.join("config.json"),
            serde_json::to_string_pretty(&cfg)
                .expect("settings serialize")
                .as_bytes(),
        )?;
        claimed = Some(held);
        Ok(())
    };
    let in_process = worker.node.is_none() && worker.workers > 1;
    let mut no_claim = || Ok(());
    let claim: train::Claim<'_> = if worker.leads() { &mut claim_dir } else { &mut no_claim };
    let trained = on_backend!(identity.backend, |B, device, dtype| if in_process {
        run_workers::<B>(&opts, experiment, dtype, claim)
    } else {
        setup::run::<B>(&opts, experiment, &device, dtype, claim)
    })?;
    let summary = trained.summary;
    if !worker.leads() {
        println!(
            "worker {} of {}: {} iterations ({}); rank 0 wrote the records",
            worker.rank, worker.workers, summary.iterations, summary.stop
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} · {} · {}: {} iterations ({}), objective {:.4e}, held-out {} {:.4e}, {:.1} s; records in {}",
        summary.preset,
        summary.optimizer,
        summary.backend,
        summary.iterations,
        summary.stop,
        summary.final_objective,
        summary.held_out_measure,
        summary.held_out_error,
        summary.wall_time_s,
        out.display()
    );
    Ok(match trained.end {
        RunEnd::Finished => ExitCode::SUCCESS,
        RunEnd::Failed => {
            eprintln!(
                "the run stopped without reaching its budget or target ({}): exit status {EXIT_FAILED_RUN}",
                summary.stop
            );
            ExitCode::from(EXIT_FAILED_RUN)
        }
        RunEnd::Interrupted => {
            eprintln!(
                "interrupted by {} after iteration {}: checkpoint saved in {}; continue with: hessfree train \
                 --resume {}",
                interrupt.signal_name(),
                summary.iterations,
                out.join(hf_burn::train::checkpoint::CHECKPOINTS_DIR).display(),
                out.display()
            );
            ExitCode::from(interrupt.exit_status().unwrap_or(interrupt::EXIT_SIGINT))
        }
    })
}

/// A data-parallel run in this process: workers `1..workers` on threads of their
/// own, worker 0 (which writes the run's files) on this one. Each loads the data and
/// builds the network itself from the same seed. A worker that fails ends the
/// process with its error: the others would otherwise wait for it in their next sum.
fn run_workers<B: burn::prelude::Backend>(
    opts: &RunOptions,
    experiment: preset::Experiment,
    dtype: DType,
    claim: train::Claim<'_>,
) -> Result<train::Trained> {
    let workers = opts.worker.workers;
    let helpers: Vec<_> = (1..workers)
        .map(|rank| {
            let mut opts = opts.clone();
            opts.worker.rank = rank;
            opts.verbosity = Verbosity::Quiet;
            let experiment = experiment.clone();
            std::thread::Builder::new()
                .name(format!("hf-worker-{rank}"))
                .spawn(move || {
                    let device = hf_burn::worker_device::<B>(rank);
                    if let Err(e) = setup::run::<B>(&opts, experiment, &device, dtype, &mut || Ok(())) {
                        eprintln!("error: worker {rank} of {workers}: {e}");
                        std::process::exit(1);
                    }
                })
                .map_err(|e| CliError::Unsupported(format!("cannot start worker {rank}: {e}")))
        })
        .collect::<Result<_>>()?;
    let trained = setup::run::<B>(opts, experiment, &hf_burn::worker_device::<B>(0), dtype, claim)?;
    for h in helpers {
        let _ = h.join();
    }
    Ok(trained)
}

/// burn-communication panics in its own tasks when a peer's connection breaks; the
/// collective that waited on it returns an error that this program reports (naming
/// the lost worker), so those panics are one line each instead of a backtrace.
fn quiet_transport_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let transport = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("tokio-r") || n.starts_with("hf-collective"));
        if transport {
            eprintln!(
                "burn-collective's transport: {}",
                info.payload_as_str().unwrap_or("panicked")
            );
        } else {
            default(info);
        }
    }));
}

/// This process's worker, from `--devices` or `--nodes`, `--rank`, `--orchestrator`
/// and `--node-address`.
fn worker(args: &TrainArgs) -> Result<Worker> {
    let t = args.collective_timeout;
    if !(t.is_finite() && t > 0.0) {
        return Err(CliError::Config(format!(
            "--collective-timeout {t}: give a positive number of seconds"
        )));
    }
    let timeout = std::time::Duration::from_secs_f64(t);
    let Some(nodes) = args.nodes else {
        return Ok(Worker {
            workers: args.devices as usize,
            timeout,
            ..Worker::SOLE
        });
    };
    let rank = args.rank.unwrap_or(0);
    if rank >= nodes {
        return Err(CliError::Config(format!(
            "--rank {rank} with --nodes {nodes}: the ranks are 0 to {}",
            nodes - 1
        )));
    }
    Ok(Worker {
        rank: rank as usize,
        workers: nodes as usize,
        timeout,
        node: Some(train::Node {
            orchestrator: args.orchestrator.clone().unwrap_or_default(),
            address: args.node_address.clone().unwrap_or_default(),
        }),
    })
}

/// `hessfree orchestrator`: burn-collective's orchestrator until Ctrl-C or SIGTERM.
fn orchestrator(args: OrchestratorArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Unsupported(format!("cannot start the orchestrator's runtime: {e}")))?;
    // Fail early and clearly on a port in use: burn-collective would only log it.
    std::net::TcpListener::bind(("0.0.0.0", args.port)).map_err(|e| {
        CliError::Config(format!(
            "--port {}: cannot listen there ({e}); choose a free port",
            args.port
        ))
    })?;
    eprintln!(
        "orchestrator listening on port {}: start each process with --orchestrator ws://THIS_HOST:{}; stop it          (Ctrl-C) once the run has ended",
        args.port, args.port
    );
    runtime.block_on(burn_collective::start_global_orchestrator(args.port));
    Ok(())
}

/// Runs a macro comparison on backend `b`, writing its runs under `runs`.
fn run_comparison(
    b: BenchBackend,
    comparison: &bench::macro_bench::Comparison<'_>,
    runs: &Path,
) -> Result<bench::macro_bench::MacroResult> {
    on_backend!(b, |B, device, dtype| bench::macro_bench::run::<B>(
        comparison,
        b.name(),
        &device,
        dtype,
        runs
    ))
}

fn bench(args: BenchArgs) -> Result<()> {
    use bench::micro::MicroModel;
    let quick = args.quick;
    let default_backends = args.backends.is_empty();
    let backends = if default_backends {
        vec![
            BenchBackend::Flex,
            BenchBackend::FlexPlain,
            BenchBackend::Ndarray,
            BenchBackend::NdarrayF64,
            BenchBackend::Wgpu,
            BenchBackend::Cuda,
        ]
    } else {
        args.backends.clone()
    };
    let (models, batches, seq_len, repeats) = if quick {
        (
            vec![MicroModel::CurvesAutoencoder, MicroModel::RnnAddition],
            vec![100],
            20,
            3,
        )
    } else {
        (
            vec![
                MicroModel::CurvesAutoencoder,
                MicroModel::MnistAutoencoder,
                MicroModel::RnnAddition,
            ],
            vec![100, 1000],
            100,
            7,
        )
    };
    let repeats = args.repeats.unwrap_or(repeats).max(1);
    let models = if args.models.is_empty() {
        models
    } else {
        args.models.clone()
    };
    let batches = if args.batches.is_empty() {
        batches
    } else {
        args.batches.clone()
    };
    if batches.contains(&0) {
        return Err(CliError::Config("--batches: a batch needs at least one case".into()));
    }
    prepare_output(&args.out)?;
    let mut report = bench::report::BenchReport {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        micro: Vec::new(),
        macro_results: Vec::new(),
        skipped: Vec::new(),
    };
    let available = bench::available;
    if !args.skip_micro {
        for &b in &backends {
            // A software renderer spent 8 of --quick's 10 minutes compiling shaders on
            // the CPU; asked for by name, it still runs. (The adapter check registers
            // the device, so it comes before the availability probe.)
            let software = (quick && default_backends && b == BenchBackend::Wgpu)
                .then(bench::wgpu_software_adapter)
                .flatten();
            let availability = match software {
                Some((true, name)) => Err(format!(
                    "the wgpu adapter ({name}) renders on the CPU, where --quick would time shader compilation for minutes, not a GPU (pass --backend wgpu to time it anyway)"
                )),
                _ => available(b),
            };
            if let Err(reason) = availability {
                println!("skipped {}: {reason}", b.name());
                report.skipped.push(bench::Skipped {
                    backend: b.name().into(),
                    reason,
                });
                continue;
            }
            let print = |m: &bench::micro::MicroResult| {
                println!(
                    "{:<12} {:<20} batch {:>5}: grad {:>9.2} ms, GN {:>9.2} ms (×{:.2}), H {:>9.2} ms, precond {:>9.2} ms (×{:.2}), CG it {:>9.2} ms",
                    m.backend,
                    format!("{:?}", m.model),
                    m.batch,
                    1e3 * m.gradient.median_s,
                    1e3 * m.gauss_newton.median_s,
                    m.gn_over_gradient,
                    1e3 * m.hessian.median_s,
                    1e3 * m.preconditioner.median_s,
                    m.preconditioner_over_gradient,
                    1e3 * m.cg_iteration.median_s
                )
            };
            let results = on_backend!(b, |B, device, dtype| bench::micro::run::<B>(
                b.name(),
                &device,
                dtype,
                &models,
                &batches,
                seq_len,
                repeats,
                print
            ))?;
            report.micro.extend(results);
        }
    }
    if !args.skip_macro {
        let b = args.macro_backend;
        match available(b) {
            Err(reason) => report.skipped.push(bench::Skipped {
                backend: format!("{} (macro)", b.name()),
                reason,
            }),
            Ok(()) => {
                let (budget, adam, sgd): (f64, Vec<f64>, Vec<f64>) = if quick {
                    (10.0, vec![3e-4, 1e-3, 3e-3], vec![1e-3])
                } else {
                    (120.0, vec![1e-4, 3e-4, 1e-3, 3e-3, 1e-2], vec![1e-3, 1e-2])
                };
                let budget = args.budget.unwrap_or(budget);
                let adam = if args.adam_rates.is_empty() {
                    adam
                } else {
                    args.adam_rates.clone()
                };
                let sgd = if args.no_sgd {
                    Vec::new()
                } else if args.sgd_rates.is_empty() {
                    sgd
                } else {
                    args.sgd_rates.clone()
                };
                let hf_variants = if args.hf_variants.is_empty() {
                    vec![bench::macro_bench::HfVariant::Default]
                } else {
                    args.hf_variants.clone()
                };
                let presets = if !args.presets.is_empty() {
                    args.presets.clone()
                } else if quick {
                    vec![Preset::CurvesSmall]
                } else {
                    vec![Preset::CurvesSmall, Preset::Curves]
                };
                for p in presets {
                    println!(
                        "macro: {} on {} ({budget} s per method)…",
                        bench::macro_bench::preset_name(p),
                        b.name()
                    );
                    let runs = args.out.join("runs");
                    let comparison = bench::macro_bench::Comparison {
                        preset: p,
                        seq_len: DEFAULT_SEQ_LEN,
                        budget_s: budget,
                        hf_variants: &hf_variants,
                        adam_rates: &adam,
                        sgd_rates: &sgd,
                        success_below: None,
                        seed: 1,
                        resume: false,
                        start: bench::macro_bench::StartMethods::All,
                    };
                    let m = run_comparison(b, &comparison, &runs)?;
                    for r in &m.runs {
                        println!(
                            "  {:<12} lr {:<8} {:>6} its, held-out {:.4e} (best {:.4e}), to target: {}",
                            r.method,
                            r.learning_rate.map_or("-".into(), |l| format!("{l:e}")),
                            r.iterations,
                            r.final_held_out,
                            r.best_held_out,
                            r.time_to_target_s.map_or("not reached".into(), |t| format!("{t:.1} s"))
                        );
                    }
                    report.macro_results.push(m);
                }
            }
        }
    }
    bench::report::write(&args.out, &report)?;
    println!("results in {}", args.out.display());
    Ok(())
}

fn rnn_tasks(args: RnnTasksArgs) -> Result<()> {
    experiment::check_tasks(&args.tasks)?;
    if !(args.budget.is_finite() && args.budget > 0.0) {
        return Err(CliError::Config(format!(
            "--budget {} (allowed: finite and > 0)",
            args.budget
        )));
    }
    if let Some(lr) = args.adam_rates.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
        return Err(CliError::Config(format!("--adam-rates {lr} (allowed: finite and > 0)")));
    }
    for &t in &args.tasks {
        for &len in &args.lengths {
            t.experiment(None, len)?;
        }
    }
    {
        bench::available(args.backend).map_err(CliError::Unsupported)?;
    }
    prepare_output(&args.out)?;
    let mut study = experiment::RnnStudy {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: std::env::var("RAYON_NUM_THREADS").ok(),
        backend: args.backend.name().into(),
        budget_s: args.budget,
        success_below: hf_models::pathological::SUCCESS_ERROR,
        comparisons: Vec::new(),
    };
    if args.resume {
        study.comparisons = experiment::read(&args.out)?.map_or_else(Vec::new, |s| s.comparisons);
    }
    let runs = args.out.join("runs");
    for &task in &args.tasks {
        for &length in &args.lengths {
            let name = bench::macro_bench::preset_name(task);
            println!(
                "{name} T={length}: HF and Adam {:?}, {} s each…",
                args.adam_rates, args.budget
            );
            let comparison = bench::macro_bench::Comparison {
                preset: task,
                seq_len: length,
                budget_s: args.budget,
                hf_variants: &[bench::macro_bench::HfVariant::Default],
                adam_rates: &args.adam_rates,
                sgd_rates: &[],
                success_below: Some(study.success_below),
                seed: args.seed,
                resume: args.resume,
                start: args.start,
            };
            let result = run_comparison(args.backend, &comparison, &runs)?;
            for r in &result.runs {
                println!(
                    "  {:<5} lr {:<8} {}; {} iterations, held-out {:.3} (best {:.3})",
                    r.method,
                    r.learning_rate.map_or("-".into(), |l| format!("{l:e}")),
                    r.success.map_or("not solved".into(), |s| format!(
                        "solved in {:.0} s ({} iterations)",
                        s.seconds, s.iteration
                    )),
                    r.iterations,
                    r.final_held_out,
                    r.best_held_out
                );
            }
            study.record(experiment::TaskComparison {
                task: name,
                length,
                result,
            });
            // Written after every comparison, so a stopped study keeps what it measured.
            experiment::write(&args.out, &study)?;
        }
    }
    println!("results in {}", args.out.join("results.md").display());
    Ok(())
}

fn main() -> ExitCode {
    // Warnings and errors only: burn-communication would install a subscriber that
    // prints every tensor it sends or receives.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    quiet_transport_panics();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(args),
        Command::Bench(args) => bench(args).map(|()| ExitCode::SUCCESS),
        Command::Orchestrator(args) => orchestrator(args).map(|()| ExitCode::SUCCESS),
        Command::Experiment(ExperimentCommand::RnnTasks(args)) => rnn_tasks(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(CliError::Interrupted { signal, status }) => {
            eprintln!("{}", CliError::Interrupted { signal, status });
            ExitCode::from(status)
        }
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_disk_full() && !matches!(e, CliError::Output { .. }) {
                eprintln!(
                    "the device is full: free space on it; a run with a checkpoint continues from it with \
                     --resume DIR (its files were replaced atomically, none is half-written)"
                );
            }
            ExitCode::FAILURE
        }
    }
}
