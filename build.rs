//! Links libtorch for every binary, test and bench of this crate:
//! - an rpath to torch's `lib/`, so nothing needs LD_LIBRARY_PATH at run time;
//! - `-Wl,--no-as-needed -ltorch_cuda -ltorch` when the libtorch has CUDA, because with
//!   `--as-needed` the linker drops libtorch_cuda (no symbol of it is referenced directly) and
//!   CUDA then silently stays off (tch-rs issues #291, #980).
use std::path::PathBuf;

fn libtorch_lib_dir() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("LIBTORCH_LIB") {
        return Some(PathBuf::from(lib).join("lib"));
    }
    if let Ok(root) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    // LIBTORCH_USE_PYTORCH=1 without LIBTORCH: ask the python that torch-sys asks.
    let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    let p = PathBuf::from(s.trim());
    p.is_dir().then_some(p)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(lib) = libtorch_lib_dir() else {
        println!(
            "cargo:warning=libtorch not found: run scripts/setup.sh (it installs torch==2.11.0 into .venv and links .libtorch)"
        );
        return;
    };
    if !lib.join("libtorch_cpu.so").exists() && !lib.join("libtorch_cpu.dylib").exists() {
        println!(
            "cargo:warning=no libtorch in {} : run scripts/setup.sh first",
            lib.display()
        );
    }
    // Resolve the `.libtorch` link so the rpath stays valid whatever the working directory.
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
