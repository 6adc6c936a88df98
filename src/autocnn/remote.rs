//! The `nats` evaluation backend (`auto-cnn search --broker nats://HOST:PORT`): genomes become
//! tasks on the broker's work queue, `neuroevo worker` processes anywhere train them, and their
//! evaluations come back one at a time, in any order. Genomes the broker's shared fitness cache
//! already holds are not published at all (two searches with the same settings never train
//! the same genome twice; a resumed search never retrains what a worker already scored), and a
//! task published again after a resume is dropped by the stream's duplicate window.
use super::broker::{self, broker_err, Broker, Outcome, Status, Task};
use super::cache::{cache_key, Evaluation};
use super::config::SearchConfig;
use super::evaluate::{Evaluator, Job, JobsDone, Trained};
use crate::error::{Error, Result};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

pub struct NatsEvaluator {
    rt: tokio::runtime::Runtime,
    broker: Broker,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    /// This search's id on the broker (its results subject).
    search: String,
    dataset_hash: String,
}

impl NatsEvaluator {
    /// Connects to `url` for the search `search` whose data hashes to `dataset_hash`.
    pub fn connect(url: &str, search: &str, dataset_hash: String) -> Result<Self> {
        let rt = broker::runtime()?;
        let (broker, consumer) = rt.block_on(async {
            let b = Broker::open(url, &format!("auto-cnn search {search}")).await?;
            let c = b.result_consumer(search).await?;
            Ok::<_, Error>((b, c))
        })?;
        Ok(NatsEvaluator {
            rt,
            broker,
            consumer,
            search: search.to_string(),
            dataset_hash,
        })
    }
}

/// The evaluation of a task given up after [`broker::MAX_DELIVER`] deliveries.
fn given_up(genome: &str) -> Evaluation {
    Evaluation::scored_zero(
        genome,
        format!(
            "scored 0: no worker answered it in {} deliveries (each worker that took it died, \
             was killed or lost the broker while training it)",
            broker::MAX_DELIVER
        ),
        0.0,
    )
}

/// The tasks of one call not answered yet.
#[derive(Default)]
struct Pending {
    /// Cache key -> (index of the genome, when its task was published).
    by_key: HashMap<String, (usize, Instant)>,
    /// Stream sequence of a task -> its key (the delivery advisories name the sequence).
    by_seq: HashMap<u64, String>,
}

/// Who trains what, and when each worker last handed in a result (it was free from then on).
#[derive(Default)]
struct Workers {
    training: BTreeMap<String, Option<String>>,
    free_since: HashMap<String, Instant>,
}

impl Evaluator for NatsEvaluator {
    /// A whole generation at once: the workers share it out.
    fn slots(&self) -> usize {
        usize::MAX
    }

    fn overlaps(&self) -> bool {
        true
    }

    fn evaluate(
        &mut self,
        genomes: &[String],
        cfg: &SearchConfig,
        bars: Option<&MultiProgress>,
        bar: Option<&ProgressBar>,
        done: &mut dyn FnMut(usize, Result<Trained>) -> Result<()>,
    ) -> Result<()> {
        let jobs = genomes
            .iter()
            .map(|g| Job {
                genome: g.clone(),
                cfg: cfg.clone(),
            })
            .collect();
        self.evaluate_jobs(jobs, bars, bar, &mut |i, r| {
            done(i, r)?;
            Ok(Vec::new())
        })
    }

    /// Publishes the jobs and, as results come, the jobs `done` makes ready (the next rungs
    /// of networks promoted meanwhile), until every job is answered.
    fn evaluate_jobs(
        &mut self,
        mut jobs: Vec<Job>,
        _bars: Option<&MultiProgress>,
        bar: Option<&ProgressBar>,
        done: JobsDone<'_>,
    ) -> Result<()> {
        let b = &self.broker;
        let search = &self.search;
        self.rt.block_on(async {
            let mut status = b
                .client
                .subscribe(broker::status_subject(search))
                .await
                .map_err(|e| broker_err("the workers' status", e))?;
            let mut advisories = b
                .client
                .subscribe(format!(
                    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
                    broker::TASKS,
                    broker::WORKERS
                ))
                .await
                .map_err(|e| broker_err("the delivery advisories", e))?;
            let mut pending = Pending::default();
            let mut published = self.publish(&mut jobs, 0, &mut pending, done).await?;
            if pending.by_key.is_empty() {
                return Ok(());
            }
            let mut results = self
                .consumer
                .messages()
                .await
                .map_err(|e| broker_err("reading results", e))?;
            let mut workers = Workers::default();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            while !pending.by_key.is_empty() {
                tokio::select! {
                    m = results.next() => {
                        let Some(m) = m else { return Err(broker_err("reading results", "the stream ended")) };
                        let m = match m {
                            Ok(m) => m,
                            // a broker restart: the consumer carries on once it is back
                            Err(_) => continue,
                        };
                        self.on_result(m, &mut jobs, &mut pending, &mut workers, bar, done).await?;
                    }
                    s = status.next() => {
                        if let Some(s) = s {
                            if let Ok(st) = serde_json::from_slice::<Status>(&s.payload) {
                                workers.training.insert(st.worker, st.genome);
                                if let Some(bar) = bar {
                                    let list: Vec<String> = workers.training.iter().map(|(w, g)| {
                                        format!("{w}: {}", g.as_deref().unwrap_or("idle"))
                                    }).collect();
                                    bar.set_message(format!("{} waiting | {}", pending.by_key.len(), list.join(" | ")));
                                }
                            }
                        }
                    }
                    a = advisories.next() => {
                        let seq = a.and_then(|a| serde_json::from_slice::<serde_json::Value>(&a.payload).ok())
                            .and_then(|v| v["stream_seq"].as_u64());
                        if let Some(key) = seq.and_then(|s| pending.by_seq.get(&s)) {
                            if let Some((i, _)) = pending.by_key.remove(key) {
                                let eval = given_up(&jobs[i].genome);
                                jobs.extend(done(i, Ok(Trained { eval, weights: None, overhead_s: None }))?);
                            }
                        }
                    }
                    _ = tick.tick() => {
                        if crate::interrupt::requested() {
                            // the tasks stay queued; their evaluations reach the shared cache
                            return Ok(());
                        }
                    }
                }
                // the jobs the results made ready go out at once
                if jobs.len() > published {
                    published = self.publish(&mut jobs, published, &mut pending, done).await?;
                }
            }
            Ok(())
        })
    }
}

impl NatsEvaluator {
    /// Hands back what the shared cache already holds and publishes a task for every other
    /// job from `from` on (and for those `done` makes ready meanwhile); how many jobs are
    /// handled then.
    async fn publish(
        &self,
        jobs: &mut Vec<Job>,
        from: usize,
        pending: &mut Pending,
        done: JobsDone<'_>,
    ) -> Result<usize> {
        let b = &self.broker;
        let search = &self.search;
        let mut i = from;
        while i < jobs.len() {
            let Job { genome, cfg } = jobs[i].clone();
            // the settings of the job: a rung's budget is part of them (and of the task's cfg)
            let key = cache_key(&genome, &cfg.fitness_settings());
            // an entry of another genome under this key is not this genome's fitness
            if let Some(mut eval) = b.cached(&key).await?.filter(|e| e.genome == genome) {
                eval.genome = genome.clone();
                let weights = b.weights_of(&key).await?;
                let t = Trained {
                    eval,
                    weights,
                    overhead_s: None,
                };
                jobs.extend(done(i, Ok(t))?);
                i += 1;
                continue;
            }
            let task = Task {
                protocol: broker::PROTOCOL,
                search: search.clone(),
                key: key.clone(),
                genome,
                cfg,
                dataset_hash: self.dataset_hash.clone(),
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{search}.{key}").as_str(),
            );
            let ack = b
                .js
                .publish_with_headers(broker::TASK_SUBJECT, headers, broker::encode(&task)?.into())
                .await
                .map_err(|e| broker_err("publishing a task", e))?
                .await
                .map_err(|e| broker_err("publishing a task", e))?;
            pending.by_seq.insert(ack.sequence, key.clone());
            pending.by_key.insert(key, (i, Instant::now()));
            i += 1;
        }
        Ok(i)
    }

    /// One message on the search's results subject: the evaluation of a pending task is handed
    /// back (with the broker's overhead), anything else is acknowledged and dropped.
    async fn on_result(
        &self,
        m: async_nats::jetstream::Message,
        jobs: &mut Vec<Job>,
        pending: &mut Pending,
        workers: &mut Workers,
        bar: Option<&ProgressBar>,
        done: JobsDone<'_>,
    ) -> Result<()> {
        let pending = &mut pending.by_key;
        match broker::decode::<Outcome>("a result", &m.payload) {
            Ok(o)
                if pending
                    .get(&o.key)
                    .is_some_and(|(i, _)| o.eval.genome != jobs[*i].genome) =>
            {
                eprintln!(
                    "warning: ignored a result of {} for task {}: it scores {:?}, not {:?}",
                    o.worker, o.key, o.eval.genome, jobs[pending[&o.key].0].genome
                );
                let _ = m.ack_with(async_nats::jetstream::AckKind::Term).await;
            }
            Ok(o) => {
                if let Some((i, sent)) = pending.remove(&o.key) {
                    let weights = if o.weights {
                        self.broker.weights_of(&o.key).await?
                    } else {
                        None
                    };
                    let mut eval = o.eval;
                    eval.genome = jobs[i].genome.clone();
                    let now = Instant::now();
                    let from = workers
                        .free_since
                        .get(&o.worker)
                        .map_or(sent, |f| (*f).max(sent));
                    let overhead = ((now - from).as_secs_f64() - eval.seconds).max(0.0);
                    workers.free_since.insert(o.worker.clone(), now);
                    if let Some(bar) = bar {
                        bar.set_message(format!(
                            "{}: {} scored {:.4} ({:.1} s training, {:.0} ms broker)",
                            o.worker,
                            eval.genome,
                            eval.fitness,
                            eval.seconds,
                            1000.0 * overhead
                        ));
                    }
                    let t = Trained {
                        eval,
                        weights,
                        overhead_s: Some(overhead),
                    };
                    jobs.extend(done(i, Ok(t))?);
                }
                let _ = m.ack().await;
            }
            Err(e) => {
                eprintln!("warning: rejected a message on {}: {e}", m.subject);
                let _ = m.ack_with(async_nats::jetstream::AckKind::Term).await;
            }
        }
        Ok(())
    }
}
