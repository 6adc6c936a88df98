//! The NATS JetStream side of a distributed search: names, messages, connection.
//!
//! - `NEUROEVO_TASKS` (subject `neuroevo.tasks`), a work-queue stream: one [`Task`] per genome to
//!   train; workers pull it through the durable consumer `workers` with explicit acks,
//!   in-progress acks while training, redelivery after the ack deadline (a dead worker's task
//!   goes to another) and a delivery limit (a genome that kills workers).
//! - `NEUROEVO_RESULTS` (subjects `neuroevo.results.<search id>`): one [`Outcome`] per trained
//!   task, read by the search through a durable consumer of its own, acked once recorded.
//! - the key-value bucket `neuroevo-fitness`: every evaluation by its cache key (genome + the
//!   settings its fitness depends on), shared by every search on the broker;
//! - the object store `neuroevo-weights`: the weights of every network trained, by cache key,
//!   so that the search's `best.ot` is the network that was scored.
//!
//! Messages are JSON with a protocol version, at most [`MAX_MESSAGE`] bytes; anything else is
//! rejected with a logged line, never a panic. Credentials come from the environment
//! (`NEUROEVO_NATS_TOKEN`, `NEUROEVO_NATS_USER` + `NEUROEVO_NATS_PASSWORD`, or a credentials
//! file in `NEUROEVO_NATS_CREDS`) and are never written anywhere; `tls://` URLs require TLS.
use super::cache::Evaluation;
use super::config::SearchConfig;
use crate::error::{Error, Result};
use async_nats::jetstream::{self, consumer::pull, stream};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The version of [`Task`] and [`Outcome`]; a worker refuses messages of another (and hands
/// them back for a worker that speaks it). 1: every task trains the full budget; 2: a task of
/// successive halving names its rung's budget in its settings (`cfg.train.budget_steps`, part
/// of its key), which a worker of version 1 cannot train.
pub const PROTOCOL: u32 = 2;
/// The largest task or result message accepted.
pub const MAX_MESSAGE: usize = 1 << 20;
pub const TASKS: &str = "NEUROEVO_TASKS";
pub const TASK_SUBJECT: &str = "neuroevo.tasks";
pub const RESULTS: &str = "NEUROEVO_RESULTS";
pub const CACHE_BUCKET: &str = "neuroevo-fitness";
pub const WEIGHTS_BUCKET: &str = "neuroevo-weights";
pub const WORKERS: &str = "workers";
/// Deliveries of a task before it is given up (it then scores 0). Refusals by workers that
/// lack its data count too, so there is room for a few.
pub const MAX_DELIVER: i64 = 5;

pub fn result_subject(search: &str) -> String {
    format!("neuroevo.results.{search}")
}

/// Where workers say what they are doing (core NATS, not stored).
pub fn status_subject(search: &str) -> String {
    format!("neuroevo.status.{search}")
}

/// One genome to train and score, with everything its fitness depends on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    pub protocol: u32,
    /// The search that wants it (its results subject).
    pub search: String,
    /// The cache key: genome + fitness settings.
    pub key: String,
    pub genome: String,
    pub cfg: SearchConfig,
    /// SHA-256 of the dataset's tensors as the search loaded them (see [`dataset_hash`]).
    pub dataset_hash: String,
}

/// A worker's answer to a task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub protocol: u32,
    pub search: String,
    pub key: String,
    pub worker: String,
    pub eval: Evaluation,
    /// Whether the weights are in the object store under `key`.
    pub weights: bool,
}

/// What a worker is doing, for the search's progress display.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub worker: String,
    pub genome: Option<String>,
}

/// Parses a message: size, JSON and protocol checked.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX_MESSAGE {
        return Err(Error::Other(format!(
            "{what} of {} bytes is over the {MAX_MESSAGE}-byte limit",
            bytes.len()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Other(format!("{what} is not JSON: {e}")))?;
    match v.get("protocol").and_then(|p| p.as_u64()) {
        Some(p) if p == PROTOCOL as u64 => {}
        Some(p) => {
            return Err(Error::Other(format!(
                "{what} speaks protocol {p}; this neuroevo speaks {PROTOCOL}"
            )))
        }
        None => return Err(Error::Other(format!("{what} has no protocol version"))),
    }
    serde_json::from_value(v).map_err(|e| Error::Other(format!("{what} is malformed: {e}")))
}

/// Whether `bytes` is a readable message of another protocol version (which another worker may
/// serve, unlike a malformed one).
pub fn other_protocol(bytes: &[u8]) -> bool {
    bytes.len() <= MAX_MESSAGE
        && serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| v.get("protocol").and_then(|p| p.as_u64()))
            .is_some_and(|p| p != PROTOCOL as u64)
}

pub fn encode(value: &impl Serialize) -> Result<Vec<u8>> {
    let bytes = serde_json::to_vec(value)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(Error::Other(format!(
            "a message of {} bytes is over the {MAX_MESSAGE}-byte limit",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// SHA-256 of a dataset's splits (shape, images, labels): a worker trains a task only on data
/// with the same hash as the search's.
pub fn dataset_hash(data: &crate::data::Dataset) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(format!("{:?}", data.shape));
    for split in [&data.train, &data.val, &data.test] {
        let x: Vec<f32> = Vec::try_from(
            split
                .x
                .to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Float)
                .flatten(0, -1),
        )?;
        let y: Vec<i64> = Vec::try_from(
            split
                .y
                .to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Int64)
                .flatten(0, -1),
        )?;
        for v in x {
            h.update(v.to_le_bytes());
        }
        for v in y {
            h.update(v.to_le_bytes());
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The broker URL without credentials (what logs and records may show).
pub fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Connects within a few seconds (a wrong address is a usage error naming it), with the
/// credentials of the environment; reconnects on its own afterwards.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
    if let Ok(token) = std::env::var("NEUROEVO_NATS_TOKEN") {
        opts = opts.token(token);
    }
    if let (Ok(u), Ok(p)) = (
        std::env::var("NEUROEVO_NATS_USER"),
        std::env::var("NEUROEVO_NATS_PASSWORD"),
    ) {
        opts = opts.user_and_password(u, p);
    }
    if let Ok(creds) = std::env::var("NEUROEVO_NATS_CREDS") {
        opts = opts.credentials_file(&creds).await.map_err(|e| {
            Error::usage(format!("NEUROEVO_NATS_CREDS {creds}: cannot read it: {e}"))
        })?;
    }
    if url.starts_with("tls://") {
        opts = opts.require_tls(true);
    }
    let connecting = opts.connect(url);
    match tokio::time::timeout(Duration::from_secs(8), connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Error::usage(format!(
            "--broker {}: cannot connect: {e}",
            shown(url)
        ))),
        Err(_) => Err(Error::usage(format!(
            "--broker {}: no answer within 8 s",
            shown(url)
        ))),
    }
}

/// An error of the broker while doing `what` (the one wording of the search, the worker and
/// the broker's setup).
pub(crate) fn broker_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("broker: {what}: {e}"))
}

/// The streams, the bucket and the object store, made when missing.
pub struct Broker {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub tasks: stream::Stream,
    pub results: stream::Stream,
    pub cache: jetstream::kv::Store,
    pub weights: jetstream::object_store::ObjectStore,
}

impl Broker {
    pub async fn open(url: &str, name: &str) -> Result<Broker> {
        let client = connect(url, name).await?;
        let js = jetstream::new(client.clone());
        let tasks = js
            .get_or_create_stream(stream::Config {
                name: TASKS.into(),
                subjects: vec![TASK_SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                max_message_size: MAX_MESSAGE as i32,
                duplicate_window: Duration::from_secs(600),
                ..Default::default()
            })
            .await
            .map_err(|e| broker_err("the tasks stream", e))?;
        let results = js
            .get_or_create_stream(stream::Config {
                name: RESULTS.into(),
                subjects: vec!["neuroevo.results.*".into()],
                max_message_size: MAX_MESSAGE as i32,
                max_age: Duration::from_secs(7 * 86_400),
                ..Default::default()
            })
            .await
            .map_err(|e| broker_err("the results stream", e))?;
        let cache = match js.get_key_value(CACHE_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(jetstream::kv::Config {
                    bucket: CACHE_BUCKET.into(),
                    history: 1,
                    ..Default::default()
                })
                .await
                .map_err(|e| broker_err("the fitness bucket", e))?,
        };
        let weights = match js.get_object_store(WEIGHTS_BUCKET).await {
            Ok(os) => os,
            Err(_) => js
                .create_object_store(jetstream::object_store::Config {
                    bucket: WEIGHTS_BUCKET.into(),
                    ..Default::default()
                })
                .await
                .map_err(|e| broker_err("the weights store", e))?,
        };
        Ok(Broker {
            client,
            js,
            tasks,
            results,
            cache,
            weights,
        })
    }

    /// The workers' durable pull consumer (the first to come makes it with `ack_wait`).
    pub async fn worker_consumer(
        &self,
        ack_wait: Duration,
    ) -> Result<jetstream::consumer::PullConsumer> {
        self.tasks
            .get_or_create_consumer(
                WORKERS,
                pull::Config {
                    durable_name: Some(WORKERS.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait,
                    max_deliver: MAX_DELIVER,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| broker_err("the workers' consumer", e))
    }

    /// A search's durable consumer of its results.
    pub async fn result_consumer(&self, search: &str) -> Result<jetstream::consumer::PullConsumer> {
        self.results
            .get_or_create_consumer(
                &format!("search-{search}"),
                pull::Config {
                    durable_name: Some(format!("search-{search}")),
                    filter_subject: result_subject(search),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(60),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| broker_err("the search's results consumer", e))
    }

    /// An evaluation in the shared cache.
    pub async fn cached(&self, key: &str) -> Result<Option<Evaluation>> {
        match self.cache.get(key).await {
            Ok(Some(bytes)) => Ok(serde_json::from_slice(&bytes).ok()),
            Ok(None) => Ok(None),
            Err(e) => Err(broker_err("reading the fitness bucket", e)),
        }
    }

    /// The weights of a trained network, if stored.
    pub async fn weights_of(&self, key: &str) -> Result<Option<Vec<u8>>> {
        use tokio::io::AsyncReadExt;
        let mut object = match self.weights.get(key).await {
            Ok(o) => o,
            Err(_) => return Ok(None),
        };
        let mut buf = Vec::new();
        object
            .read_to_end(&mut buf)
            .await
            .map_err(|e| broker_err("reading weights", e))?;
        Ok(Some(buf))
    }
}

/// A runtime for the broker's async client under the synchronous search and worker.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the broker client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn messages_are_size_and_version_checked() {
        assert!(decode::<Status>("a task", b"not json").is_err());
        let e = decode::<Status>("a task", br#"{"protocol": 99, "worker": "w"}"#).unwrap_err();
        assert!(e.to_string().contains("protocol 99"), "{e}");
        let big = vec![b' '; MAX_MESSAGE + 1];
        assert!(decode::<Status>("a task", &big).is_err());
        assert!(other_protocol(br#"{"protocol": 99}"#));
        // a task of a search from before rung tasks is another version, and so is ours to an
        // older worker
        assert_eq!(PROTOCOL, 2);
        let e = decode::<Status>("a task", br#"{"protocol": 1, "worker": "w"}"#).unwrap_err();
        assert!(
            e.to_string().contains("protocol 1; this neuroevo speaks 2"),
            "{e}"
        );
        assert!(other_protocol(br#"{"protocol": 1}"#));
        assert!(!other_protocol(br#"{"protocol": 2}"#) && !other_protocol(b"junk"));
        assert_eq!(shown("nats://u:secret@host:4222"), "nats://host:4222");
        assert_eq!(shown("nats://host:4222"), "nats://host:4222");
    }
}
