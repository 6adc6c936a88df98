//! `--device auto|cpu|cuda|cuda:N`.
use crate::error::{Error, Result};
use tch::Device;

/// Parses a device name. `auto` is CUDA device 0 when CUDA is available, else the CPU.
/// Asking for CUDA on a machine without it is a user error, not a silent fallback.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let index = if name == "cuda" {
                0
            } else if let Some(n) = name.strip_prefix("cuda:") {
                n.parse::<usize>().map_err(|_| {
                    Error::usage(format!("--device {name}: expected cuda:N with N a number"))
                })?
            } else {
                return Err(Error::usage(format!(
                    "--device {name}: expected auto, cpu, cuda or cuda:N"
                )));
            };
            let count = if tch::Cuda::is_available() {
                tch::Cuda::device_count() as usize
            } else {
                0
            };
            if index >= count {
                return Err(Error::usage(format!(
                    "--device {name}: this machine has {count} CUDA device(s){}",
                    if count == 0 {
                        "; use --device cpu (or auto)"
                    } else {
                        ""
                    }
                )));
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// Makes glibc keep freed memory for reuse instead of returning it to the kernel (no `mmap` for
/// large blocks, no trimming of the heap). libtorch on the CPU allocates and frees activations of
/// tens of MB every step; with glibc's defaults each of them is a fresh `mmap` whose pages fault
/// in again, which doubled the time of a CPU training step here (half of it in the kernel; see
/// docs/results/auto-cnn.md). Call once, first thing in `main`. Does nothing when the user
/// set glibc's malloc variables themselves, or on other platforms.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = std::env::vars().any(|(k, v)| {
            k.starts_with("MALLOC_") || (k == "GLIBC_TUNABLES" && v.contains("malloc"))
        });
        if !user_set {
            // SAFETY: mallopt only changes allocator parameters; called before other threads
            // allocate.
            unsafe {
                libc::mallopt(libc::M_MMAP_MAX, 0);
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            }
        }
    }
}

/// The devices a run named `name` may use, `device` being `name` as [`parse_device`] read it:
/// every CUDA device for `auto`/`cuda` on a machine with several, else the one named.
pub fn devices_named(name: &str, device: Device) -> Vec<Device> {
    let all = matches!(name.trim().to_ascii_lowercase().as_str(), "auto" | "cuda");
    match device {
        Device::Cuda(_) if all => (0..tch::Cuda::device_count() as usize)
            .map(Device::Cuda)
            .collect(),
        _ => vec![device],
    }
}

/// A short name for logs and config files: `cpu`, `cuda:0`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_names_and_rejects_bad_ones() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("CPU").unwrap(), Device::Cpu);
        assert!(matches!(parse_device("gpu"), Err(Error::Usage(_))));
        assert!(matches!(parse_device("cuda:x"), Err(Error::Usage(_))));
        assert_eq!(devices_named("cpu", Device::Cpu), [Device::Cpu]);
        if !tch::Cuda::is_available() {
            assert_eq!(parse_device("auto").unwrap(), Device::Cpu);
            assert!(matches!(parse_device("cuda"), Err(Error::Usage(_))));
        }
    }
}
