//! Models from elsewhere are untrusted input. A TorchScript file is code: a scripted module that
//! maps a file with `torch.from_file(..., shared=True)` and fills it overwrites that file when
//! it runs, so its code is checked before libtorch loads it, wherever a model is given
//! (`fool --classifier`, `--judge`, `--generator`, `gan --fid-model`); every model neuroevo
//! exports and every model traced or scripted from ordinary `torch.nn` layers still runs. A model
//! whose outputs ignore the batch, one with no outputs, and models whose one generation cannot
//! fit in memory are refused in one line before anything is written. The models are made here,
//! by PyTorch.
mod common;
use common::{python, repo, run_in_repo, s, stderr, TINY_GAN};
use std::path::Path;
use std::process::Output;

const MODELS: &str = r#"
import sys, torch, torch.nn as nn
d = sys.argv[1]
torch.manual_seed(0)
x = torch.rand(2, 1, 28, 28)

class FromFile(nn.Module):  # overwrites victim.txt through a shared mapping
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(784, 10)
        self.victim = d + "/victim.txt"
    def forward(self, x):
        t = torch.from_file(self.victim, shared=True, size=8, dtype=torch.uint8)
        t.fill_(66)
        return self.l(x.flatten(1)) + t.sum().float() * 0
torch.jit.script(FromFile()).save(d + "/from_file.pt")

class Prints(nn.Module):
    def forward(self, x):
        print("hello from a model")
        return x.flatten(1)[:, :10]
torch.jit.script(Prints()).save(d + "/prints.pt")

layers = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
    nn.MaxPool2d(2), nn.Dropout(0.1), nn.Upsample(scale_factor=2), nn.ConvTranspose2d(4, 4, 3, padding=1),
    nn.Tanh(), nn.Sigmoid(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64, 10), nn.ReLU()).eval()
torch.jit.trace(layers, x).save(d + "/traced.pt")
torch.jit.script(layers).save(d + "/scripted.pt")

class OneRow(nn.Module):  # [1, 10] whatever the batch
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(784, 10)
    def forward(self, x):
        return self.l(x.flatten(1)).sum(0, keepdim=True)
torch.jit.trace(OneRow(), x).save(d + "/one_row.pt")

class NoClasses(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :0]
torch.jit.trace(NoClasses(), x).save(d + "/no_classes.pt")

class Wide(nn.Module):  # n outputs per image, a view: nothing is allocated for them
    def __init__(self, n):
        super().__init__()
        self.n = n
    def forward(self, x):
        return x.flatten(1).mean(1, keepdim=True).expand(-1, self.n)
torch.jit.trace(Wide(100000000), x).save(d + "/wide.pt")
torch.jit.trace(Wide(1000000), x).save(d + "/million.pt")
pool = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4, 10)).eval()  # any size
torch.jit.trace(pool, x).save(d + "/pool.pt")
torch.jit.trace(Wide(1000000), x).save(d + "/wide_features.pt")
"#;

/// The models of [`MODELS`], made once per test process (PyTorch takes seconds to start), in
/// cargo's temporary directory for tests.
fn models() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("untrusted-models");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        python(MODELS, &[s(&dir)]);
        dir
    })
}

/// `fool` on `classifier` (made elsewhere, 1x28x28 in [0, 1]) with `extra`, class 0, one
/// generation of 8 unless `extra` says another population.
fn fool(classifier: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "fool",
        "-q",
        "--device",
        "cpu",
        "--classifier",
        s(classifier),
        "--input-shape",
        "1,28,28",
        "--input-range",
        "0,1",
        "--class",
        "0",
        "--generations",
        "1",
        "--out",
        s(out),
    ];
    if !extra.contains(&"--population") {
        a.extend(["--population", "8"]);
    }
    a.extend(extra);
    run_in_repo(&a)
}

/// One line `error: ...` containing every one of `says`, exit code 2, and no run directory.
fn refused(o: &Output, out: &Path, says: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for w in says {
        assert!(err.contains(w), "{w:?} not in {err}");
    }
    assert!(!out.exists(), "{} was made", out.display());
}

/// A tiny `gan` run with `fid_model`; `extra` says the mode.
fn gan(fid_model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "gan",
        "-q",
        "--device",
        "cpu",
        "--population",
        "2",
        "--generations",
        "2",
        "--fid-model",
        s(fid_model),
        "--out",
        s(out),
    ];
    a.extend(TINY_GAN);
    a.extend(extra);
    run_in_repo(&a)
}

#[test]
fn a_model_that_writes_a_file_is_refused_wherever_it_is_given_and_the_file_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let made = models();
    let victim = made.join("victim.txt");
    let bytes = b"precious data\n";
    std::fs::write(&victim, bytes).unwrap();
    let evil = made.join("from_file.pt");
    let out = t.join("out");
    let why = "runs torch.from_file, which is not a tensor operator (reads or writes files)";
    // as the classifier, the judge and the generator
    let o = fool(&evil, &out, &["--judge", "none"]);
    refused(&o, &out, &[s(&evil), why, "--trust-model"]);
    let traced = made.join("traced.pt");
    let o = fool(&traced, &out, &["--judge", s(&evil)]);
    refused(&o, &out, &[s(&evil), why]);
    let o = fool(
        &traced,
        &out,
        &[
            "--judge",
            "none",
            "--space",
            "latent",
            "--generator",
            s(&evil),
        ],
    );
    refused(&o, &out, &[s(&evil), why]);
    // as gan's FID model
    let o = gan(
        &evil,
        &out,
        &[
            "--mode",
            "weights",
            "--fid-input-shape",
            "1,28,28",
            "--fid-input-range",
            "0,1",
        ],
    );
    refused(&o, &out, &[s(&evil), why]);
    // printing is a side effect too
    let prints = made.join("prints.pt");
    let o = fool(&prints, &out, &["--judge", "none"]);
    refused(&o, &out, &[s(&prints), "runs print,"]);
    assert_eq!(std::fs::read(&victim).unwrap(), bytes);

    // --trust-model runs it: the check is what kept the file
    let o = fool(&evil, &out, &["--judge", "none", "--trust-model"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&victim).unwrap()[..8], b"BBBBBBBB");
}

#[test]
fn models_neuroevo_exports_and_torch_nn_models_traced_or_scripted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let made = models();
    // traced and scripted torch.nn layers, as classifier and judge
    for name in ["traced", "scripted"] {
        let m = made.join(format!("{name}.pt"));
        let o = fool(&m, &t.join(format!("fool-{name}")), &["--judge", s(&m)]);
        assert!(o.status.success(), "{}: {}", m.display(), stderr(&o));
    }
    // a classifier exported by train with every kind of layer, as classifier and FID model
    let exported = t.join("every-layer.pt");
    let o = run_in_repo(&[
        "train",
        "-q",
        "--device",
        "cpu",
        "--subset",
        "300",
        "--epochs",
        "1",
        "--arch",
        "S4-4 P:avg S4-4 P:max F8 D0.3",
        "--out",
        s(&t.join("train")),
        "--export",
        s(&exported),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in_repo(&[
        "fool",
        "-q",
        "--device",
        "cpu",
        "--classifier",
        s(&exported),
        "--class",
        "1",
        "--population",
        "8",
        "--generations",
        "1",
        "--out",
        s(&t.join("fool-exported")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // the shipped classifier, judge and FID features; gan's generators of both modes
    for mode in ["weights", "dcgan"] {
        let g = t.join(format!("gan-{mode}"));
        let o = gan(
            &repo("models/mnist-cnn.pt"),
            &g,
            &["--mode", mode, "--width", "4"],
        );
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        let o = run_in_repo(&[
            "fool",
            "-q",
            "--device",
            "cpu",
            "--space",
            "latent",
            "--generator",
            s(&g.join("best-generator.pt")),
            "--class",
            "3",
            "--population",
            "8",
            "--generations",
            "1",
            "--out",
            s(&t.join(format!("fool-{mode}"))),
        ]);
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        let r: serde_json::Value = serde_json::from_slice(
            &std::fs::read(t.join(format!("fool-{mode}/result.json"))).unwrap(),
        )
        .unwrap();
        assert!(r["classes"][0]["judge_confidence"].is_number(), "{r}");
    }
}

#[test]
fn outputs_that_ignore_the_batch_or_are_empty_are_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let made = models();
    let out = t.join("out");
    let m = made.join("one_row.pt");
    let o = fool(&m, &out, &["--judge", "none"]);
    refused(&o, &out, &[s(&m), "[1, 10]", "batch of 2"]);
    let m = made.join("no_classes.pt");
    let o = fool(&m, &out, &["--judge", "none"]);
    refused(&o, &out, &[s(&m), "gives no outputs"]);
}

#[test]
fn a_generation_that_cannot_fit_in_memory_is_refused_before_the_run_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let made = models();
    let out = t.join("out");
    // 1e6 classes: their scores for 100000 images are ~2 TB
    let o = fool(
        &made.join("million.pt"),
        &out,
        &["--judge", "none", "--population", "100000"],
    );
    refused(&o, &out, &["--population 100000", "1000000 classes", "TB"]);
    // 1e8 classes: more than a classifier may have (each would be named, and be a population)
    let wide = made.join("wide.pt");
    let o = fool(&wide, &out, &["--judge", "none"]);
    refused(&o, &out, &[s(&wide), "100000000 outputs", "at most"]);
    // 100000 images of 1x4096x4096: ~20 TB
    let o = run_in_repo(&[
        "fool",
        "-q",
        "--device",
        "cpu",
        "--classifier",
        s(&made.join("pool.pt")),
        "--judge",
        "none",
        "--input-shape",
        "1,4096,4096",
        "--input-range",
        "0,1",
        "--population",
        "100000",
        "--out",
        s(&out),
    ]);
    refused(
        &o,
        &out,
        &["--population 100000", "[100000, 1, 4096, 4096]"],
    );
    // FID statistics of 1e6 features: ~48 TB
    let wide = made.join("wide_features.pt");
    let o = gan(
        &wide,
        &out,
        &[
            "--mode",
            "weights",
            "--fid-input-shape",
            "1,28,28",
            "--fid-input-range",
            "0,1",
        ],
    );
    refused(&o, &out, &[s(&wide), "1000000 features", "TB"]);
}
