//! What one sum of a parameter vector over 2 workers costs on burn-collective: the
//! communication of one data-parallel Gauss-Newton product. Workers as threads of
//! one process (local mode), then as 2 processes with an orchestrator (global mode,
//! over loopback WebSocket). f32 vectors on flex; medians of `--reps`.
//!
//! ```sh
//! cargo run --release -p hf-bench --example allreduce_cost -- --params 2837314 --reps 21
//! ```
//! (2 837 314: the parameters of Martens' MNIST autoencoder, 784-1000-500-250-30.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::backend::Flex;
use burn::prelude::*;
use hf_burn::{CollectiveReduction, ParamVector};
use hf_core::Reduction;

type B = Flex;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median seconds of `reps` sums of a `params`-vector on this worker (after one warm-up).
fn time_sums(reduction: &dyn Reduction<ParamVector<B>>, params: usize, reps: usize) -> f64 {
    let device = Default::default();
    let v = ParamVector::new(Tensor::<B, 1>::ones([params], &device));
    let _ = reduction.sum_vector(v.clone()).unwrap();
    let times = (0..reps)
        .map(|_| {
            let clock = Instant::now();
            let s = reduction.sum_vector(v.clone()).unwrap();
            let _ = s.tensor().clone().narrow(0, 0, 1).into_data(); // sync
            clock.elapsed().as_secs_f64()
        })
        .collect();
    median(times)
}

fn main() {
    // burn-communication logs every transfer at INFO unless a subscriber is installed.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .try_init();
    let params = arg("--params", 2_837_314);
    let reps = arg("--reps", 21);
    let timeout = Duration::from_secs(120);

    // A child: one node of the global run.
    if let Some(rank) = std::env::args().position(|a| a == "--node").map(|_| arg("--node", 0)) {
        let (orch, port) = (arg("--orchestrator", 0), arg("--port", 0));
        let r = CollectiveReduction::<B>::global(
            rank,
            2,
            Default::default(),
            &format!("ws://127.0.0.1:{orch}"),
            &format!("ws://127.0.0.1:{port}"),
            timeout,
        )
        .unwrap();
        println!("{}", time_sums(&r, params, reps));
        return;
    }

    println!(
        "sum of a {params}-entry f32 vector ({:.1} MB) over 2 workers, median of {reps}:",
        params as f64 * 4e-6
    );
    let local: Vec<f64> = (0..2)
        .map(|rank| {
            std::thread::spawn(move || {
                let r = CollectiveReduction::<B>::new(
                    rank,
                    2,
                    Default::default(),
                    burn::collective::CollectiveConfig::default().with_num_devices(2),
                    timeout,
                )
                .unwrap();
                time_sums(&r, params, reps)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    println!("  2 threads (local mode):      {:8.2} ms", 1e3 * local[0].max(local[1]));

    let ports: Vec<u16> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let orch_port = ports[0];
    let _orchestrator = std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(burn_collective::start_global_orchestrator(orch_port))
    });
    std::thread::sleep(Duration::from_millis(300));
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|rank| {
            Command::new(&me)
                .args(["--node", &rank.to_string(), "--orchestrator", &orch_port.to_string()])
                .args(["--port", &ports[1 + rank].to_string()])
                .args(["--params", &params.to_string(), "--reps", &reps.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let global: Vec<f64> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines()
                .rev()
                .find_map(|l| l.trim().parse().ok())
                .expect("the node printed its median")
        })
        .collect();
    println!(
        "  2 processes (global mode):   {:8.2} ms",
        1e3 * global[0].max(global[1])
    );
    // The orchestrator's thread never ends by itself.
    std::process::exit(0);
}
