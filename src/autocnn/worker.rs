//! `neuroevo worker --broker nats://HOST:PORT`: trains the genomes of any search on the broker,
//! one at a time, exactly as the in-process search does (the same seeded initial weights, the
//! same result on the same device). While a network trains, the worker tells the broker it is
//! still at it (in-progress acks); a worker that dies loses only that task, which the broker
//! hands to another after its ack deadline. A task whose dataset hash this worker cannot match,
//! or a message it cannot read, is refused with a line in its log; Ctrl-C releases the task in
//! training (it goes to another worker) and ends the worker with exit code 130.
use super::broker::{self, Broker, Outcome, Status, Task};
use super::evaluate::{train_genome, Trained};
use crate::data::{load_dataset, Dataset};
use crate::device::{device_name, parse_device};
use crate::error::{Error, Result};
use async_nats::jetstream::AckKind;
use futures::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

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
    /// CPU threads of libtorch (default: libtorch's choice).
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
}

fn broker_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("broker: {what}: {e}"))
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
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
    let name = args.name.clone().unwrap_or_else(default_name);
    let ack_wait = Duration::from_secs_f64(args.ack_wait);
    let rt = broker::runtime()?;
    rt.block_on(async {
        let b = Broker::open(&args.broker, &format!("neuroevo worker {name}")).await?;
        let consumer = b.worker_consumer(ack_wait).await?;
        // the consumer's own deadline (set by whoever made it) paces the progress acks
        let deadline = match consumer.cached_info().config.ack_wait {
            d if d.is_zero() => ack_wait,
            d => d,
        };
        let log = |line: String| eprintln!("worker {name}: {line}");
        log(format!(
            "serving {} on {}",
            broker::shown(&args.broker),
            device_name(device)
        ));
        let mut datasets: HashMap<String, (Dataset, String)> = HashMap::new();
        let mut served = 0usize;
        loop {
            if crate::interrupt::requested() || args.max_tasks.is_some_and(|m| served >= m) {
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
            let msg = match batch.next().await {
                Some(Ok(m)) => m,
                _ => continue,
            };
            let task: Task = match broker::decode("a task", &msg.payload) {
                Ok(t) => t,
                Err(e) if broker::other_protocol(&msg.payload) => {
                    // a newer (or older) neuroevo may serve it
                    log(format!("refused a task on {}: {e}", msg.subject));
                    let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_millis(200)))).await;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
                Err(e) => {
                    log(format!("rejected a message on {}: {e}", msg.subject));
                    let _ = msg.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            let publish = |eval, weights| {
                let o = Outcome {
                    protocol: broker::PROTOCOL,
                    search: task.search.clone(),
                    key: task.key.clone(),
                    worker: name.clone(),
                    eval,
                    weights,
                };
                let subject = broker::result_subject(&task.search);
                let js = b.js.clone();
                async move {
                    js.publish(subject, broker::encode(&o)?.into())
                        .await
                        .map_err(|e| broker_err("publishing a result", e))?
                        .await
                        .map_err(|e| broker_err("publishing a result", e))?;
                    Ok::<(), Error>(())
                }
            };
            // already scored (a redelivery after the result went out): answer again
            if let Some(eval) = b.cached(&task.key).await? {
                let weights = b.weights.info(&task.key).await.is_ok();
                publish(eval, weights).await?;
                let _ = msg.double_ack().await;
                continue;
            }
            // the data, loaded here, must be the search's
            let mut data_opts = task.cfg.data.clone();
            if args.data_dir.is_some() {
                data_opts.data_dir = args.data_dir.clone();
            }
            let data_key = format!("{}|{}", task.cfg.dataset.label(), serde_json::to_string(&data_opts)?);
            if !datasets.contains_key(&data_key) {
                match load_dataset(&task.cfg.dataset, &data_opts, device)
                    .and_then(|d| broker::dataset_hash(&d).map(|h| (d, h)))
                {
                    Ok(loaded) => {
                        datasets.insert(data_key.clone(), loaded);
                    }
                    Err(e) => {
                        log(format!(
                            "refused task {} ({}): cannot load {} here: {e}",
                            task.key, task.genome, task.cfg.dataset.label()
                        ));
                        let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_millis(200)))).await;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    }
                }
            }
            let (data, hash) = datasets.remove(&data_key).expect("loaded above");
            if hash != task.dataset_hash {
                log(format!(
                    "refused task {} ({}): {} here hashes to {}, the search's to {}",
                    task.key,
                    task.genome,
                    task.cfg.dataset.label(),
                    &hash[..12],
                    &task.dataset_hash[..12.min(task.dataset_hash.len())]
                ));
                datasets.insert(data_key, (data, hash));
                let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_millis(200)))).await;
                // give the workers that have the data a chance to take it
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            let status = |genome: Option<String>| {
                let st = Status {
                    worker: name.clone(),
                    genome,
                };
                let client = b.client.clone();
                let subject = broker::status_subject(&task.search);
                async move {
                    if let Ok(bytes) = serde_json::to_vec(&st) {
                        let _ = client.publish(subject, bytes.into()).await;
                    }
                }
            };
            status(Some(task.genome.clone())).await;
            log(format!("training {} (task {})", task.genome, task.key));
            // train in a thread of its own; tell the broker we are at it meanwhile
            let (tx, mut rx) = tokio::sync::oneshot::channel();
            let (genome, cfg) = (task.genome.clone(), task.cfg.clone());
            std::thread::spawn(move || {
                let mut data = data;
                let r = train_genome(&genome, &cfg, &mut data, None, None);
                let _ = tx.send((r, data));
            });
            let mut beat = tokio::time::interval(deadline / 3);
            beat.tick().await;
            let (result, data) = loop {
                tokio::select! {
                    r = &mut rx => break r.map_err(|_| Error::Other("the training thread died".into()))?,
                    _ = beat.tick() => {
                        let _ = msg.ack_with(AckKind::Progress).await;
                        status(Some(task.genome.clone())).await;
                    }
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if crate::interrupt::requested() {
                            let _ = msg.ack_with(AckKind::Nak(None)).await;
                            log(format!("released task {} ({}): interrupted", task.key, task.genome));
                            status(None).await;
                            return Ok(());
                        }
                    }
                }
            };
            datasets.insert(data_key, (data, hash));
            let Trained { eval, weights, .. } = match result {
                Ok(t) => t,
                Err(e) => {
                    // a genome the training cannot even start (a user error in the task)
                    log(format!("task {} ({}) failed: {e}", task.key, task.genome));
                    let _ = msg.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            let stored = match &weights {
                Some(bytes) => {
                    let mut reader = bytes.as_slice();
                    b.weights
                        .put(task.key.as_str(), &mut reader)
                        .await
                        .map_err(|e| broker_err("storing weights", e))?;
                    true
                }
                None => false,
            };
            b.cache
                .put(&task.key, serde_json::to_vec(&eval)?.into())
                .await
                .map_err(|e| broker_err("storing the evaluation", e))?;
            log(format!(
                "done {} (task {}): fitness {:.4} in {:.1} s",
                task.genome, task.key, eval.fitness, eval.seconds
            ));
            publish(eval, stored).await?;
            let _ = msg.double_ack().await;
            status(None).await;
            served += 1;
        }
    })
}
