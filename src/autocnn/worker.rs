//! `neuroevo worker --broker nats://HOST:PORT`: trains the genomes of any search on the broker,
//! one at a time, exactly as the in-process search does (the same seeded initial weights, the
//! same result on the same device). While a network trains, the worker tells the broker it is
//! still at it (in-progress acks); a worker that dies loses only that task, which the broker
//! hands to another after its ack deadline. Ctrl-C releases the task in training (it goes to
//! another worker) and ends the worker with exit code 130.
//!
//! A task is untrusted input: anyone who can publish on the broker can write one. The worker
//! checks it with the code that checks the search's own flags ([`SearchConfig::validate`]),
//! recomputes its cache key from the genome and settings it will train (a task whose key is
//! not that of its genome could otherwise store one genome's score under another's key, for
//! every later search to read), loads its dataset through the same loaders as the search (no
//! FIFOs or devices) and estimates its memory before training. No task ends the worker: a task
//! wrong for every worker gets a final scored-0 answer with the reason at once; one this
//! worker cannot train (other data, too little memory) goes back to the queue for another, and
//! gets that final answer on its last delivery. Results and weights are stored with retries,
//! so a broker restart in the middle of an upload costs time, not the worker.
//!
//! A task of successive halving names a budget below the full training (in its settings; part
//! of its key), which must be one of its search's lower rungs for the data as loaded here.
//! The worker keeps the networks it trained to such a budget in memory ([`Live`]); when it
//! gets the task of the next rung for one of them it trains on from there, and otherwise
//! trains from the network's seeded start (the same result, at the cost of the steps done
//! before).
use super::broker::{self, broker_err, Broker, Outcome, Status, Task, MAX_DELIVER};
use super::cache::{cache_key, Evaluation};
use super::config::{SearchConfig, ShrinkPolicy};
use super::evaluate::{train_guarded, Trained, CRASHED};
use super::genome;
use super::halving::{check_budget, Live};
use crate::data::{load_dataset, Dataset};
use crate::device::{device_name, parse_device};
use crate::error::{Error, Result};
use crate::nn::arch::{Arch, Layer};
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `neuroevo worker`.
#[derive(Clone, Debug, clap::Args)]
pub struct WorkerArgs {
    /// The broker: nats://HOST:PORT (tls://HOST:PORT requires TLS). Credentials come from
    /// NEUROEVO_NATS_TOKEN, NEUROEVO_NATS_USER + NEUROEVO_NATS_PASSWORD or NEUROEVO_NATS_CREDS.
    #[arg(long)]
    pub broker: String,
    /// Device the networks train on: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Where this machine keeps its datasets (default: the task's, then the usual places).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// CPU threads of libtorch (default: libtorch's choice); a task of a search that
    /// recorded its thread count trains with that count, on which its fitness depends.
    #[arg(long)]
    pub threads: Option<i32>,
    /// The worker's name in logs and the search's display (default: host-pid).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds without news after which the broker hands a task to another worker (used when
    /// this worker is the first on the broker; in-progress acks come every third of it).
    #[arg(long, default_value_t = 30.0)]
    pub ack_wait: f64,
    /// Stop after this many tasks (default: serve until Ctrl-C).
    #[arg(long)]
    pub max_tasks: Option<usize>,
    /// Tasks trained at once on the device: K slots, each pulling its own task, with its own
    /// connection, model and copy of the task's dataset (K copies in memory), named NAME#1 ..
    /// NAME#K in the logs. On a CPU each trains with its search's --threads.
    #[arg(long, default_value_t = 1)]
    pub per_device: usize,
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// How long an upload or a result is retried while the broker is away (a restart).
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Why a task is not trained here.
#[derive(Debug, PartialEq)]
pub(crate) enum Refusal {
    /// Wrong for every worker (bad settings, a genome outside its search space, a key that is
    /// not its genome's): a final answer at once.
    Invalid(String),
    /// This worker cannot train it (other data, a dataset it cannot read, too little memory):
    /// another worker may; a final answer on its last delivery.
    Here(String),
}

/// A search id usable in a subject (the search makes 16 hex digits).
fn usable_search_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a task as the search checks its own flags; returns the cache key computed here.
pub(crate) fn check_task(task: &Task) -> std::result::Result<String, Refusal> {
    let invalid = |why: String| Refusal::Invalid(why);
    task.cfg
        .validate()
        .map_err(|e| invalid(format!("its settings are refused: {e}")))?;
    let arch = Arch::parse(&task.genome)
        .map_err(|e| invalid(format!("its genome is not a layer list: {e}")))?;
    let filters = &task.cfg.space.filters;
    for l in &arch.layers {
        match l {
            Layer::Skip { f1, f2 } if filters.contains(f1) && filters.contains(f2) => {}
            Layer::Pool { .. } => {}
            _ => {
                return Err(invalid(format!(
                    "its genome has layer {l}, outside its search space (filters {filters:?})"
                )))
            }
        }
    }
    let key = cache_key(&task.genome, &task.cfg.fitness_settings());
    if key != task.key {
        return Err(invalid(format!(
            "its key {:?} is not the key of its genome and settings ({key})",
            super::config::shorten(&task.key)
        )));
    }
    Ok(key)
}

/// Checks that `genome` (as it will train, after a repair) is within its search's size cap
/// (no worker trains it otherwise) and that one training step of it fits in this machine's
/// memory on data of `data`'s shape.
fn check_memory(
    genome: &str,
    cfg: &SearchConfig,
    data: &Dataset,
) -> std::result::Result<(), Refusal> {
    let Ok(g) = Arch::parse(genome) else {
        return Ok(());
    };
    let sizer = super::sizecap::Sizer::new(cfg, data.shape, data.num_classes() as i64);
    if let Some(why) = sizer.over_genome(&g) {
        return Err(Refusal::Invalid(format!(
            "its genome is over its search's size cap: {why}"
        )));
    }
    let arch = match cfg.on_shrink {
        ShrinkPolicy::Repair => genome::repair(&g, data.shape).0,
        ShrinkPolicy::Zero => Some(g),
    };
    let Some(arch) = arch else { return Ok(()) };
    let classes = data.num_classes() as i64;
    let need = arch.training_bytes(data.shape, classes, cfg.train.batch_size as i64);
    crate::run::memory::check("its genome", "one training step", need)
        .map_err(|e| Refusal::Here(e.to_string()))
}

/// Runs `f` until it succeeds, waiting longer after each failure (0.25 s doubling to 8 s), for
/// at most [`RETRY_FOR`]: the broker's client reconnects by itself meanwhile.
async fn retry<T, F, Fut>(what: &str, log: &dyn Fn(String), mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() < RETRY_FOR => {
                log(format!(
                    "{what} failed ({e}); trying again in {:.1} s",
                    wait.as_secs_f64()
                ));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(8));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A running worker.
struct Worker<'a> {
    args: &'a WorkerArgs,
    b: Broker,
    name: String,
    device: tch::Device,
    /// The consumer's ack deadline (paces the progress acks).
    deadline: Duration,
    /// libtorch's CPU threads as `--threads` set them.
    threads: i32,
    /// Loaded datasets (with their hashes) by dataset and options.
    datasets: HashMap<String, (Dataset, String)>,
    /// Networks trained to a lower rung's budget, to go on with when promoted.
    live: std::sync::Arc<Live>,
}

/// What became of one message.
enum Flow {
    /// Trained (or answered from the cache): counts toward --max-tasks.
    Served,
    Next,
    /// Ctrl-C.
    Stop,
}

/// Serves tasks until Ctrl-C (or `--max-tasks`).
pub fn run_worker(args: &WorkerArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    if let Some(t) = args.threads {
        if t < 1 {
            return Err(Error::usage(format!("--threads {t}: must be at least 1")));
        }
        tch::set_num_threads(t);
    }
    if !(args.ack_wait.is_finite() && args.ack_wait >= 1.0) {
        return Err(Error::usage(format!(
            "--ack-wait {}: must be at least 1 second",
            args.ack_wait
        )));
    }
    let k = args.per_device;
    if !(1..=super::config::MAX_PER_DEVICE).contains(&k) {
        return Err(Error::usage(format!(
            "--per-device {k}: must be between 1 and {}",
            super::config::MAX_PER_DEVICE
        )));
    }
    let name = args.name.clone().unwrap_or_else(default_name);
    let rt = broker::runtime()?;
    // tasks begun, for --max-tasks across the slots
    let begun = std::sync::atomic::AtomicUsize::new(0);
    // the networks trained to a lower rung, which the slots of this device share
    let live = std::sync::Arc::new(Live::for_device(device));
    rt.block_on(async {
        let mut slots = Vec::with_capacity(k);
        for i in 1..=k {
            let slot = if k == 1 {
                name.clone()
            } else {
                format!("{name}#{i}")
            };
            slots.push(serve_slot(args, device, slot, &begun, live.clone()));
        }
        // the first slot that fails ends the worker; the others stop at their next task
        for r in futures::future::join_all(slots).await {
            r?;
        }
        Ok(())
    })
}

/// One slot of a worker: its own connection, pulling and training one task at a time.
async fn serve_slot(
    args: &WorkerArgs,
    device: tch::Device,
    name: String,
    begun: &std::sync::atomic::AtomicUsize,
    live: std::sync::Arc<Live>,
) -> Result<()> {
    use std::sync::atomic::Ordering::SeqCst;
    let ack_wait = Duration::from_secs_f64(args.ack_wait);
    let b = Broker::open(&args.broker, &format!("neuroevo worker {name}")).await?;
    let consumer = b.worker_consumer(ack_wait).await?;
    // the consumer's own deadline (set by whoever made it) paces the progress acks
    let deadline = match consumer.cached_info().config.ack_wait {
        d if d.is_zero() => ack_wait,
        d => d,
    };
    let mut w = Worker {
        args,
        b,
        name,
        device,
        deadline,
        threads: tch::get_num_threads(),
        datasets: HashMap::new(),
        live,
    };
    w.log(format!(
        "serving {} on {}",
        broker::shown(&args.broker),
        device_name(device)
    ));
    loop {
        if crate::interrupt::requested() || args.max_tasks.is_some_and(|m| begun.load(SeqCst) >= m)
        {
            return Ok(());
        }
        let mut batch = match consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(1))
            .messages()
            .await
        {
            Ok(b) => b,
            // the broker is away (a restart): try again
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let Some(Ok(msg)) = batch.next().await else {
            continue;
        };
        // another slot may have taken the last task --max-tasks allows meanwhile
        if args
            .max_tasks
            .is_some_and(|m| begun.fetch_add(1, SeqCst) >= m)
        {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
            return Ok(());
        }
        match w.serve(msg).await {
            Flow::Served => {}
            Flow::Next => {
                if args.max_tasks.is_some() {
                    begun.fetch_sub(1, SeqCst);
                }
            }
            Flow::Stop => return Ok(()),
        }
    }
}

impl Worker<'_> {
    fn log(&self, line: String) {
        eprintln!("worker {}: {line}", self.name);
    }

    /// Handles one message; nothing in it can end the worker.
    async fn serve(&mut self, msg: Message) -> Flow {
        let task: Task = match broker::decode("a task", &msg.payload) {
            Ok(t) => t,
            Err(e) if broker::other_protocol(&msg.payload) => {
                // a newer (or older) neuroevo may serve it
                self.log(format!("refused a task on {}: {e}", msg.subject));
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(200))))
                    .await;
                tokio::time::sleep(Duration::from_secs(2)).await;
                return Flow::Next;
            }
            Err(e) => {
                self.log(format!("rejected a message on {}: {e}", msg.subject));
                let _ = msg.ack_with(AckKind::Term).await;
                return Flow::Next;
            }
        };
        if !usable_search_id(&task.search) {
            // no subject to answer on
            self.log(format!(
                "rejected task {} ({}): its search id {:?} is not a name of letters, digits, - and _",
                super::config::shorten(&task.key),
                super::config::shorten(&task.genome),
                super::config::shorten(&task.search)
            ));
            let _ = msg.ack_with(AckKind::Term).await;
            return Flow::Next;
        }
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let last = delivered >= MAX_DELIVER;
        let key = match check_task(&task) {
            Ok(k) => k,
            Err(r) => return self.refuse(&msg, &task, r, last).await,
        };
        match self.train(&msg, &task, &key, last).await {
            Ok(flow) => flow,
            Err(e) => {
                // the broker stayed away through every retry: another worker may do better
                self.log(format!("released task {key} ({}): {e}", task.genome));
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                Flow::Next
            }
        }
    }

    /// Refuses a task: a final scored-0 answer with the reason when no worker can train it (or
    /// on its last delivery), else back to the queue for another worker.
    async fn refuse(&self, msg: &Message, task: &Task, r: Refusal, last: bool) -> Flow {
        let (why, here) = match r {
            Refusal::Invalid(why) => (why, false),
            Refusal::Here(why) => (why, true),
        };
        let genome = super::config::shorten(&task.genome);
        let key = super::config::shorten(&task.key);
        self.log(format!("refused task {key} ({genome}): {why}"));
        if here && !last {
            let _ = msg
                .ack_with(AckKind::Nak(Some(Duration::from_millis(200))))
                .await;
            // give the workers that can train it a chance to take it
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Flow::Next;
        }
        let note = if here {
            format!("scored 0: refused by the workers on all {MAX_DELIVER} deliveries, last by {}: {why}", self.name)
        } else {
            format!("scored 0: refused by worker {}: {why}", self.name)
        };
        let eval = Evaluation::scored_zero(&task.genome, note, 0.0);
        match self.answer(task, eval, false).await {
            Ok(()) => {
                let _ = msg.ack_with(AckKind::Term).await;
            }
            Err(e) => {
                self.log(format!("could not answer task {key}: {e}"));
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
        }
        Flow::Next
    }

    /// Publishes the answer to a task on its search's results subject.
    async fn answer(&self, task: &Task, eval: Evaluation, weights: bool) -> Result<()> {
        let o = Outcome {
            protocol: broker::PROTOCOL,
            search: task.search.clone(),
            key: task.key.clone(),
            worker: self.name.clone(),
            eval,
            weights,
        };
        let bytes = broker::encode(&o)?;
        let subject = broker::result_subject(&task.search);
        retry("publishing a result", &|l| self.log(l), || {
            let (js, subject, bytes) = (self.b.js.clone(), subject.clone(), bytes.clone());
            async move {
                js.publish(subject, bytes.into())
                    .await
                    .map_err(|e| broker_err("publishing a result", e))?
                    .await
                    .map_err(|e| broker_err("publishing a result", e))?;
                Ok(())
            }
        })
        .await
    }

    async fn status(&self, search: &str, genome: Option<String>) {
        let st = Status {
            worker: self.name.clone(),
            genome,
        };
        if let Ok(bytes) = serde_json::to_vec(&st) {
            let subject = broker::status_subject(search);
            let _ = self.b.client.publish(subject, bytes.into()).await;
        }
    }

    /// Loads (once) the task's dataset as this machine has it, with its hash.
    fn dataset(&mut self, task: &Task) -> std::result::Result<String, Refusal> {
        let mut opts = task.cfg.data.clone();
        if self.args.data_dir.is_some() {
            opts.data_dir = self.args.data_dir.clone();
        }
        let label = task.cfg.dataset.label();
        let data_key = format!(
            "{label}|{}",
            serde_json::to_string(&opts).unwrap_or_default()
        );
        if !self.datasets.contains_key(&data_key) {
            let loaded = load_dataset(&task.cfg.dataset, &opts, self.device)
                .and_then(|d| broker::dataset_hash(&d).map(|h| (d, h)))
                .map_err(|e| Refusal::Here(format!("cannot load {label} here: {e}")))?;
            self.datasets.insert(data_key.clone(), loaded);
        }
        let hash = &self.datasets[&data_key].1;
        if *hash != task.dataset_hash {
            return Err(Refusal::Here(format!(
                "{label} here hashes to {}, the search's to {}",
                &hash[..12],
                task.dataset_hash.chars().take(12).collect::<String>()
            )));
        }
        Ok(data_key)
    }
}

impl Worker<'_> {
    /// Trains a checked task (or answers it from the shared cache), stores its evaluation and
    /// weights under `key` and answers the search. An error is the broker's, after retries.
    async fn train(&mut self, msg: &Message, task: &Task, key: &str, last: bool) -> Result<Flow> {
        let log = |l: String| self.log(l);
        // already scored (a redelivery after the result went out): answer again
        let cached = retry("reading the fitness bucket", &log, || self.b.cached(key)).await?;
        if let Some(eval) = cached.filter(|e| e.genome == task.genome) {
            let weights = self.b.weights.info(key).await.is_ok();
            self.answer(task, eval, weights).await?;
            let _ = msg.double_ack().await;
            return Ok(Flow::Served);
        }
        // the data, loaded here, must be the search's
        let data_key = match self.dataset(task) {
            Ok(k) => k,
            Err(r) => return Ok(self.refuse(msg, task, r, last).await),
        };
        let (data, hash) = self.datasets.remove(&data_key).expect("loaded above");
        let budget = check_budget(&task.cfg, data.train.len())
            .map_err(|e| Refusal::Invalid(format!("its settings are refused: {e}")));
        if let Err(r) = budget.and_then(|_| check_memory(&task.genome, &task.cfg, &data)) {
            self.datasets.insert(data_key, (data, hash));
            return Ok(self.refuse(msg, task, r, last).await);
        }
        self.status(&task.search, Some(task.genome.clone())).await;
        let to = task
            .cfg
            .train
            .budget_steps
            .map(|b| format!(" to {b} steps"))
            .unwrap_or_default();
        self.log(format!("training {}{to} (task {key})", task.genome));
        // train in a thread of its own; tell the broker we are at it meanwhile
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let (genome, cfg) = (task.genome.clone(), task.cfg.clone());
        let own_threads = self.threads;
        let live = self.live.clone();
        std::thread::spawn(move || {
            // a search that recorded its thread count gets it (in train_guarded), others ours
            if cfg.threads.is_none() {
                tch::set_num_threads(own_threads);
            }
            let mut data = data;
            let r = train_guarded(&genome, &cfg, &mut data, Some(&live), None, None);
            let _ = tx.send((r, data));
        });
        let mut beat = tokio::time::interval(self.deadline / 3);
        beat.tick().await;
        let received = loop {
            tokio::select! {
                r = &mut rx => break r.ok(),
                _ = beat.tick() => {
                    let _ = msg.ack_with(AckKind::Progress).await;
                    self.status(&task.search, Some(task.genome.clone())).await;
                }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if crate::interrupt::requested() {
                        let _ = msg.ack_with(AckKind::Nak(None)).await;
                        self.log(format!("released task {key} ({}): interrupted", task.genome));
                        self.status(&task.search, None).await;
                        return Ok(Flow::Stop);
                    }
                }
            }
        };
        let result = match received {
            Some((r, data)) => {
                self.datasets.insert(data_key, (data, hash));
                r
            }
            None => Err(Error::Other(
                "the training thread ended without an answer".into(),
            )),
        };
        let Trained { eval, weights, .. } = match result {
            Ok(t) => t,
            // a genome the training cannot even start: no worker can train it
            Err(e) => {
                let r = Refusal::Invalid(format!("its training cannot start: {e}"));
                return Ok(self.refuse(msg, task, r, last).await);
            }
        };
        let crashed = eval.note.as_deref().is_some_and(|n| n.starts_with(CRASHED));
        let stored = self.store(key, &eval, weights.as_deref(), crashed).await?;
        self.log(format!(
            "done {} (task {key}): fitness {:.4} in {:.1} s{}",
            task.genome,
            eval.fitness,
            eval.seconds,
            eval.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
        self.answer(task, eval, stored).await?;
        let _ = msg.double_ack().await;
        self.status(&task.search, None).await;
        Ok(Flow::Served)
    }

    /// Stores the weights (if any) and the evaluation under `key`, retrying across a broker
    /// restart; a crash is answered but not shared (another version may train it). Whether the
    /// weights are stored.
    async fn store(
        &self,
        key: &str,
        eval: &Evaluation,
        weights: Option<&[u8]>,
        crashed: bool,
    ) -> Result<bool> {
        let log = |l: String| self.log(l);
        if let Some(bytes) = weights {
            self.log(format!(
                "uploading the weights of task {key} ({} bytes)",
                bytes.len()
            ));
            retry("storing weights", &log, || async move {
                let mut reader = bytes;
                self.b
                    .weights
                    .put(key, &mut reader)
                    .await
                    .map(|_| ())
                    .map_err(|e| broker_err("storing weights", e))
            })
            .await?;
        }
        if !crashed {
            let value = serde_json::to_vec(eval)?;
            retry("storing the evaluation", &log, || {
                let value = value.clone();
                async move {
                    self.b
                        .cache
                        .put(key, value.into())
                        .await
                        .map(|_| ())
                        .map_err(|e| broker_err("storing the evaluation", e))
                }
            })
            .await?;
        }
        Ok(weights.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(genome: &str) -> Task {
        let cfg = crate::autocnn::search::tests::cfg(3);
        Task {
            protocol: broker::PROTOCOL,
            search: "0123456789abcdef".into(),
            key: cache_key(genome, &cfg.fitness_settings()),
            genome: genome.into(),
            cfg,
            dataset_hash: String::new(),
        }
    }

    #[test]
    fn tasks_are_checked_as_the_search_checks_its_flags() {
        assert!(check_task(&task("S32-64 P:max")).is_ok());
        let invalid = |t: &Task| match check_task(t) {
            Err(Refusal::Invalid(why)) => why,
            other => panic!("{other:?}"),
        };
        // another genome under this one's key
        let mut t = task("S32-64 P:max");
        t.genome = "P:avg".into();
        assert!(invalid(&t).contains("not the key of its genome"));
        // settings the search would refuse
        let mut t = task("S32-64");
        t.cfg.train.lr = 1e308;
        assert!(invalid(&t).contains("--lr"));
        let mut t = task("S32-64");
        t.cfg.population = 0;
        assert!(invalid(&t).contains("--population"));
        // a genome outside the space, or not a genome
        assert!(invalid(&task("S4096-4096")).contains("outside its search space"));
        assert!(invalid(&task("F10")).contains("outside"));
        assert!(invalid(&task("")).contains("not a layer list"));
        // a budget below the full training: successive halving's, within its key
        let mut t = task("S32-64");
        t.cfg.train.budget_steps = Some(5);
        t.key = cache_key(&t.genome, &t.cfg.fitness_settings());
        assert!(invalid(&t).contains("--fidelity halving"));
        t.cfg.fidelity = crate::autocnn::Fidelity::Halving;
        assert!(check_task(&t).is_ok());
        // the key of the full training is not the key of a rung
        t.key = task("S32-64").key;
        assert!(invalid(&t).contains("not the key of its genome"));
    }

    #[test]
    fn search_ids_are_subject_tokens() {
        assert!(usable_search_id("0123456789abcdef"));
        for bad in ["", "x.*", "a b", "a>", &"x".repeat(65)] {
            assert!(!usable_search_id(bad), "{bad:?}");
        }
    }
}
