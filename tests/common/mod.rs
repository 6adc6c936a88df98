//! Helpers shared by the CLI tests: the binaries, their stderr, a run's log and config, the
//! flags of tiny runs, a real NATS server and workers.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn neuroevo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_neuroevo"))
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The flags of a tiny train run: 300 images through a 4-filter convolution.
pub const TINY_TRAIN: [&str; 4] = ["--subset", "300", "--arch", "S4-4 F8"];

/// The flags of a tiny gan run: 256 images, FID on 100 samples, batches of 16.
pub const TINY_GAN: [&str; 8] = [
    "--subset",
    "256",
    "--fid-samples",
    "100",
    "--batch-size",
    "16",
    "--eval-batch",
    "16",
];

/// A tiny dcgan run on the CPU: `gan` with narrow networks, a population of two and
/// [`TINY_GAN`]'s data and batches.
pub fn tiny_dcgan() -> Vec<&'static str> {
    let gan = [
        "gan", "-q", "--device", "cpu", "--mode", "dcgan", "--width", "4",
    ];
    [&gan[..], &["--population", "2"], &TINY_GAN].concat()
}

/// The records of a run's `log.jsonl`.
pub fn log(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is whole JSON"))
        .collect()
}

/// A JSON array of numbers (a log's FIDs, a mixture's weights) as f64s.
pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    let a = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    a.iter().map(|x| x.as_f64().unwrap()).collect()
}

/// A run's `config.json`.
pub fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

/// A run's `result.json`.
pub fn result(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

/// Waits up to two minutes for `path` to appear (a checkpoint of a run in progress).
pub fn wait_for_file(path: &Path) {
    let t = std::time::Instant::now();
    while !path.exists() {
        assert!(t.elapsed().as_secs() < 120, "{path:?} never appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The one line `error: ...` a user's mistake prints (fails the test on anything else).
pub fn one_line_error(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

/// Runs `neuroevo args` in the checkout (where `models/` is) and waits for it.
pub fn run_in_repo(args: &[&str]) -> Output {
    neuroevo()
        .current_dir(repo(""))
        .args(args)
        .output()
        .unwrap()
}

/// A file of the checkout (models/, assets/, tests/golden/).
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(std::fs::read(path).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A real `nats-server -js` on 127.0.0.1 (a free port, a store in `store`), stopped on drop.
pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    extra: Vec<String>,
    child: Option<std::process::Child>,
}

impl NatsServer {
    pub fn start(store: &Path) -> NatsServer {
        Self::start_with(store, &[])
    }

    /// With more `nats-server` options (e.g. `--auth TOKEN`).
    pub fn start_with(store: &Path, extra: &[&str]) -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = NatsServer {
            port,
            store: store.to_path_buf(),
            extra: extra.iter().map(|e| e.to_string()).collect(),
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and store.
    pub fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (Debian package nats-server) must be installed");
        self.child = Some(child);
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t.elapsed().as_secs() < 20, "nats-server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL, as a crash or a power cut) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// A client of the broker for tests that write or read raw messages themselves.
pub struct NatsClient {
    rt: tokio::runtime::Runtime,
    js: async_nats::jetstream::Context,
}

impl NatsClient {
    pub fn connect(url: &str) -> NatsClient {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let js = rt.block_on(async {
            async_nats::jetstream::new(async_nats::connect(url).await.unwrap())
        });
        NatsClient { rt, js }
    }

    /// Publishes `bytes` on `subject` into JetStream and waits for the broker's ack.
    pub fn publish(&self, subject: &str, bytes: Vec<u8>) {
        self.rt.block_on(async {
            self.js
                .publish(subject.to_string(), bytes.into())
                .await
                .unwrap()
                .await
                .unwrap();
        })
    }

    /// Every message stored in `stream` (JSON), oldest first.
    pub fn messages(&self, stream: &str) -> Vec<serde_json::Value> {
        self.rt.block_on(async {
            let Ok(mut st) = self.js.get_stream(stream).await else {
                return Vec::new();
            };
            let info = st.info().await.unwrap().state.clone();
            let mut out = Vec::new();
            for seq in info.first_sequence..=info.last_sequence {
                if let Ok(m) = st.get_raw_message(seq).await {
                    if let Ok(v) = serde_json::from_slice(&m.payload) {
                        out.push(v);
                    }
                }
            }
            out
        })
    }

    /// Drops every message of `stream`.
    pub fn purge(&self, stream: &str) {
        self.rt.block_on(async {
            self.js
                .get_stream(stream)
                .await
                .unwrap()
                .purge()
                .await
                .unwrap();
        });
    }
}

/// Waits up to `secs` seconds for `cond`, failing with `what`.
pub fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Makes a FIFO (named pipe) at `path`.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {path:?}"
    );
}

/// Runs `cmd` to its end; SIGKILLs it and fails the test if it takes more than `secs` seconds
/// (a process blocked on its input would hang the test otherwise).
pub fn output_within(cmd: &mut Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("still running after {secs} s (SIGKILLed): {}", stderr(&o));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The Python of the checkout's `.venv` (made by `scripts/setup.sh`, with torch and
/// tensorboard).
pub fn venv_python() -> PathBuf {
    let p = repo(".venv/bin/python");
    assert!(p.exists(), "{} missing: run scripts/setup.sh", p.display());
    p
}

/// Runs `script` with the `.venv` python of `scripts/setup.sh` (torch), `args` as `sys.argv[1:]`;
/// from a file, since `torch.jit.script` reads the source of what it compiles.
pub fn python(script: &str, args: &[&str]) {
    let file = tempfile::Builder::new().suffix(".py").tempfile().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let o = Command::new(venv_python())
        .arg(file.path())
        .args(args)
        .output()
        .expect("the .venv of scripts/setup.sh");
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A `neuroevo worker` whose log lines are collected.
pub struct Worker {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    pub fn start(url: &str, name: &str, extra: &[&str]) -> Worker {
        let mut child = neuroevo()
            .current_dir(repo(""))
            .args([
                "worker",
                "--broker",
                url,
                "--device",
                "cpu",
                "--threads",
                "1",
            ])
            .args(["--name", name])
            // 3 s unless `extra` names another
            .args(
                ["--ack-wait", "3"]
                    .iter()
                    .filter(|_| !extra.contains(&"--ack-wait")),
            )
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stderr.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                l.lock().unwrap().push(line);
            }
        });
        let w = Worker { child, lines };
        w.wait_for("serving");
        w
    }

    /// Whether the worker process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn wait_for(&self, needle: &str) {
        let t = Instant::now();
        while !self.log().iter().any(|l| l.contains(needle)) {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "no {needle:?} in {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Task keys this worker trained to the end.
    pub fn done(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter(|l| l.contains(": done "))
            .filter_map(|l| l.split("(task ").nth(1).map(|k| k[..24].to_string()))
            .collect()
    }

    /// Fails unless every task this worker finished, it finished once (none trained twice).
    pub fn assert_each_task_done_once(&self) {
        let done = self.done();
        let mut distinct = done.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            done.len(),
            distinct.len(),
            "no task trained twice: {:?}",
            self.log()
        );
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The four IDX files of a tiny MNIST-shaped set in `dir/mnist`; `flip` changes one label.
pub fn idx_set(dir: &Path, flip: bool) {
    let sub = dir.join("mnist");
    std::fs::create_dir_all(&sub).unwrap();
    let idx = |dims: &[u32], data: &[u8]| {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    };
    let pixels = |n: usize| -> Vec<u8> {
        (0..n * 784)
            .map(|i| ((i * 2_654_435_761) >> 13) as u8)
            .collect()
    };
    let labels = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 10) as u8).collect() };
    let mut train_labels = labels(300);
    if flip {
        train_labels[7] = (train_labels[7] + 1) % 10;
    }
    let w = |name: &str, bytes: Vec<u8>| std::fs::write(sub.join(name), bytes).unwrap();
    w("train-images-idx3-ubyte", idx(&[300, 28, 28], &pixels(300)));
    w("train-labels-idx1-ubyte", idx(&[300], &train_labels));
    w("t10k-images-idx3-ubyte", idx(&[100, 28, 28], &pixels(100)));
    w("t10k-labels-idx1-ubyte", idx(&[100], &labels(100)));
}
