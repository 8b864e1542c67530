//! [`CollectiveReduction`]: hf-core's [`Reduction`] on burn-collective, for workers
//! on several devices of one process (local mode) or in several processes and
//! machines (global mode, coordinated by an orchestrator).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use std::str::FromStr;

use burn::collective::{self, AllReduceStrategy, CollectiveConfig, CollectiveError, PeerId, ReduceOperation};
use burn::prelude::*;
use burn::tensor::{DType, TensorPrimitive};
use burn_communication::Address;
use hf_core::{BoxError, Reduction};

use crate::backend::tensor_from_f64;
use crate::vector::ParamVector;

/// How long a worker waits for the others in one collective before it declares
/// them lost, by default. A curvature product or a gradient on a worker's shard
/// takes far less; the first collective of a run also waits for every worker to
/// load its data and build its network.
pub const DEFAULT_COLLECTIVE_TIMEOUT: Duration = Duration::from_secs(60);

type Job = Box<dyn FnOnce() + Send>;

/// The name of the first collective, in messages.
const REGISTRATION: &str = "registration";

/// One worker's end of a data-parallel run on burn-collective.
///
/// Every collective runs on a thread of its own and is awaited with a timeout, since
/// burn-collective's calls block without one: a worker that died or cannot be
/// reached makes the others return [`hf_core::Error::Reduction`] naming it within the
/// timeout, never hang. After a timeout the reduction refuses further calls.
///
/// Sums of vectors run on the parameters' backend `B` (use the inner backend of an
/// autodiff one); sums of scalars run in `f64` where the device supports it.
///
/// # Example
/// Two workers on one CPU (local mode):
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use hf_burn::{CollectiveReduction, ParamVector};
/// use hf_core::Reduction;
///
/// type B = NdArray<f64>;
/// let handles: Vec<_> = (0..2)
///     .map(|rank| std::thread::spawn(move || {
///         let device = Default::default();
///         let r = CollectiveReduction::<B>::local(rank, 2, device).unwrap();
///         let v = ParamVector::new(Tensor::<B, 1>::from_data([rank as f64, 1.0], &device));
///         r.sum_vector(v).unwrap().to_vec()
///     }))
///     .collect();
/// for h in handles {
///     assert_eq!(h.join().unwrap(), vec![1.0, 2.0]);
/// }
/// ```
pub struct CollectiveReduction<B: Backend> {
    rank: usize,
    workers: usize,
    device: B::Device,
    scalar_dtype: DType,
    timeout: Duration,
    jobs: Mutex<mpsc::Sender<Job>>,
    lost: AtomicBool,
}

impl<B: Backend> CollectiveReduction<B> {
    /// Worker `rank` of `workers` threads of this process, each on its own `device`
    /// (burn-collective's local mode). Blocks until every worker has registered.
    ///
    /// # Errors
    /// [`hf_core::Error::InvalidArgument`] for `rank ≥ workers`;
    /// [`hf_core::Error::Reduction`]: burn-collective refused the registration, or the
    /// others did not register within [`DEFAULT_COLLECTIVE_TIMEOUT`].
    pub fn local(rank: usize, workers: usize, device: B::Device) -> hf_core::Result<Self> {
        let config = CollectiveConfig::default().with_num_devices(workers);
        Self::new(rank, workers, device, config, DEFAULT_COLLECTIVE_TIMEOUT)
    }

    /// Worker `rank` of `nodes` processes (or machines), one worker each,
    /// coordinated by the orchestrator at `orchestrator` (burn-collective's global
    /// mode; `hessfree orchestrator` runs one). This node's data service listens on
    /// the port of `address`, on every interface; `address` (`ws://host:port`) is how
    /// the other nodes reach it. Waits at most `timeout` in any collective, the
    /// registration included. Blocks until every node has registered.
    ///
    /// The all-reduce runs as a tree (burn-collective's default ring fails on
    /// vectors shorter than the node count, such as a few scalars). Every run needs
    /// an orchestrator of its own: one keeps its node count across runs.
    ///
    /// # Errors
    /// [`hf_core::Error::InvalidArgument`] for an address that is not
    /// `ws://host:port`; otherwise as [`local`](Self::local).
    pub fn global(
        rank: usize,
        nodes: usize,
        device: B::Device,
        orchestrator: &str,
        address: &str,
        timeout: Duration,
    ) -> hf_core::Result<Self> {
        let port = ws_port(address, "the node's address")?;
        ws_port(orchestrator, "the orchestrator's address")?;
        let nodes_u32 = u32::try_from(nodes).map_err(|_| hf_core::Error::InvalidArgument {
            name: "nodes",
            value: nodes.to_string(),
            allowed: "at most 2³² − 1",
        })?;
        let config = CollectiveConfig::default()
            .with_num_devices(1)
            .with_num_nodes(nodes_u32)
            .with_global_address(Address::from_str(orchestrator).expect("infallible"))
            .with_node_address(Address::from_str(address).expect("infallible"))
            .with_data_service_port(port)
            .with_global_all_reduce_strategy(AllReduceStrategy::Tree(2));
        Self::new(rank, nodes, device, config, timeout)
    }

    /// Worker `rank` of `workers` with a burn-collective configuration of its own
    /// (global mode: one with `with_num_nodes`, `with_global_address`,
    /// `with_node_address` and `with_data_service_port`), waiting at most `timeout`
    /// in any collective. Blocks until every worker has registered.
    ///
    /// # Errors
    /// [`hf_core::Error::InvalidArgument`] for `rank ≥ workers`; otherwise as
    /// [`local`](Self::local).
    pub fn new(
        rank: usize,
        workers: usize,
        device: B::Device,
        config: CollectiveConfig,
        timeout: Duration,
    ) -> hf_core::Result<Self> {
        if rank >= workers.max(1) {
            return Err(hf_core::Error::InvalidArgument {
                name: "rank",
                value: format!("{rank} (of {workers} workers)"),
                allowed: "0 to workers − 1, a distinct rank per worker",
            });
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("hf-collective-{rank}"))
            .spawn(move || queue.into_iter().for_each(|job| job()))
            .map_err(|e| hf_core::Error::Reduction(Box::new(e)))?;
        let scalar_dtype = if B::supports_dtype(&device, DType::F64) {
            DType::F64
        } else {
            DType::F32
        };
        let reduction = Self {
            rank,
            workers: workers.max(1),
            device: device.clone(),
            scalar_dtype,
            timeout,
            jobs: Mutex::new(jobs),
            lost: AtomicBool::new(false),
        };
        let peer = reduction.peer();
        reduction.call(REGISTRATION, move || collective::register::<B>(peer, device, config))?;
        Ok(reduction)
    }

    fn peer(&self) -> PeerId {
        PeerId::from(self.rank)
    }

    /// Ranks other than this one, for messages.
    fn others(&self) -> String {
        let others: Vec<String> = (0..self.workers)
            .filter(|&k| k != self.rank)
            .map(|k| k.to_string())
            .collect();
        match others.len() {
            1 => format!("worker {}", others[0]),
            _ => format!("one of workers {}", others.join(", ")),
        }
    }

    /// Runs `f` on the collective thread and waits for it at most the timeout.
    fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce() -> Result<T, CollectiveError> + Send + 'static,
    ) -> hf_core::Result<T> {
        let fail = |reason: String| hf_core::Error::Reduction(BoxError::from(reason));
        if self.lost.load(Ordering::Relaxed) {
            return Err(fail(format!(
                "worker {} lost {} in an earlier collective; no further collective is tried",
                self.rank,
                self.others()
            )));
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let sent = self
            .jobs
            .lock()
            .map_err(|_| fail("the collective thread's queue is poisoned".into()))?
            .send(Box::new(move || {
                let _ = reply.send(f());
            }));
        if sent.is_err() {
            return Err(fail(format!("worker {}: the collective thread has stopped", self.rank)));
        }
        match answer.recv_timeout(self.timeout) {
            Ok(Ok(value)) => Ok(value),
            // Refused at registration: the workers' settings disagree; nobody is lost.
            Ok(Err(e)) if what == REGISTRATION => Err(fail(format!(
                "worker {}: burn-collective refused the {what}: {e:?}; start every worker with the same \
                 settings and a distinct rank",
                self.rank
            ))),
            // After it, any failure means a peer went away: burn's global errors, or its
            // local server dying of one (`LocalServerMissing`).
            Ok(Err(e)) => Err(self.lost(
                what,
                &format!("it stopped or cannot be reached (burn-collective: {e:?})"),
            )),
            Err(RecvTimeoutError::Timeout) => Err(self.lost(
                what,
                &format!(
                    "no answer in {} s: it stopped, was killed, or its address or port is blocked",
                    self.timeout.as_secs_f64()
                ),
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err(self.lost(what, "burn-collective's transport failed (a connection broke)"))
            }
        }
    }

    /// The error of a collective that lost the other workers; no collective is tried
    /// after it. Node ids in burn-collective's errors are its registration order, not
    /// ranks: the message names the ranks.
    fn lost(&self, what: &str, why: &str) -> hf_core::Error {
        self.lost.store(true, Ordering::Relaxed);
        hf_core::Error::Reduction(BoxError::from(format!(
            "worker {} lost {} in the {what}: {why}; the last checkpoint is intact, continue the run with --resume",
            self.rank,
            self.others()
        )))
    }

    fn sum_tensor(&self, what: &'static str, t: Tensor<B, 1>) -> hf_core::Result<Tensor<B, 1>> {
        let peer = self.peer();
        let p = t.into_primitive().tensor();
        let summed = self.call(what, move || collective::all_reduce::<B>(peer, p, ReduceOperation::Sum))?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(summed)))
    }
}

impl<B: Backend> Reduction<ParamVector<B>> for CollectiveReduction<B> {
    fn rank(&self) -> usize {
        self.rank
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn sum_vector(&self, v: ParamVector<B>) -> hf_core::Result<ParamVector<B>> {
        self.sum_tensor("sum of a parameter vector", v.into_tensor())
            .map(ParamVector::new)
    }

    fn sum_scalars(&self, values: &mut [f64]) -> hf_core::Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let t = tensor_from_f64::<B, 1>(values.to_vec(), [values.len()], &self.device, self.scalar_dtype);
        let summed = self.sum_tensor("sum of scalars", t)?;
        for (x, s) in values.iter_mut().zip(summed.into_data().iter::<f64>()) {
            *x = s;
        }
        Ok(())
    }
}

impl<B: Backend> Drop for CollectiveReduction<B> {
    /// Leaves the collective (after the last collective of the run), unless a worker
    /// was lost: then nothing waits on it.
    fn drop(&mut self) {
        if !self.lost.load(Ordering::Relaxed) {
            let peer = self.peer();
            let _ = self.call("finish", move || collective::finish_collective::<B>(peer));
        }
    }
}

/// The port of a `ws://host:port` address.
fn ws_port(address: &str, name: &'static str) -> hf_core::Result<u16> {
    let invalid = || hf_core::Error::InvalidArgument {
        name,
        value: address.to_string(),
        allowed: "ws://HOST:PORT, e.g. ws://10.0.0.1:3000",
    };
    let rest = address.strip_prefix("ws://").ok_or_else(invalid)?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':').ok_or_else(invalid)?;
    if host.is_empty() {
        return Err(invalid());
    }
    port.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(invalid)
}

/// The device of worker `rank` on backend `B`: the `rank`-th device of the default
/// device's kind (`cuda:rank`, the `rank`-th adapter of wgpu's kind), cycling when
/// there are fewer devices than workers; on a CPU backend every worker shares its one
/// device (and its threads).
pub fn worker_device<B: Backend>(rank: usize) -> B::Device {
    use burn_backend::Device as _;
    let default = B::Device::default();
    let mut id = default.to_id();
    let count = B::device_count(id.type_id);
    if count <= 1 {
        return default;
    }
    id.index_id = u16::try_from(rank % count).unwrap_or(0);
    B::Device::from_id(id)
}

#[cfg(test)]
mod tests {
    use super::ws_port;

    #[test]
    fn a_rank_outside_the_workers_is_refused_before_registering() {
        let e = super::CollectiveReduction::<burn::backend::NdArray>::local(2, 2, Default::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("rank") && e.contains("2 (of 2 workers)"), "{e}");
    }

    #[test]
    fn addresses_must_be_websocket_urls_with_a_port() {
        assert_eq!(ws_port("ws://127.0.0.1:3000", "a").unwrap(), 3000);
        assert_eq!(ws_port("ws://node-7.cluster:41000/", "a").unwrap(), 41000);
        for bad in [
            "127.0.0.1:3000",
            "ws://127.0.0.1",
            "ws://:3000",
            "ws://h:0",
            "ws://h:70000",
            "http://h:1",
        ] {
            let e = ws_port(bad, "the node's address").unwrap_err().to_string();
            assert!(e.contains("ws://HOST:PORT") && e.contains(bad), "{bad}: {e}");
        }
    }
}
