//! The library's error type. `Usage` is a mistake of the user (bad flag, bad file): the CLI prints
//! it as one line and exits with code 2. Everything else is a failure of the run itself.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user's mistake: wrong value, missing or unreadable input. Exit code 2.
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot read image: {source}")]
    Image {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("{path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error("libtorch: {}", torch_reason(.0))]
    Torch(#[from] tch::TchError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("plot: {0}")]
    Plot(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn corrupt(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
    /// True for errors caused by the user's input (exit code 2): bad flags, missing, unreadable
    /// or corrupt input files.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Usage(_) | Error::Image { .. } | Error::Corrupt { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::NotADirectory
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// libtorch's reason without its C++ backtrace: the text before `Exception raised from` (or
/// its first line), so that an error of libtorch prints as one line.
fn torch_reason(e: &tch::TchError) -> String {
    let text = e.to_string();
    let reason = text.split("Exception raised from").next().unwrap_or("");
    let first = reason.lines().map(str::trim).find(|l| !l.is_empty());
    first.unwrap_or(text.trim()).to_string()
}

/// Shorthand: `ensure!(cond, "message {}", x)` returns a `Usage` error when `cond` is false.
#[macro_export]
macro_rules! ensure_usage {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::error::Error::Usage(format!($($arg)*)));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_libtorch_error_prints_as_one_line_without_cpp_frames() {
        let t = tch::Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu));
        let raw = t.f_matmul(&t).unwrap_err();
        // libtorch's own text carries its C++ frames
        assert!(raw.to_string().contains("frame #"), "{raw}");
        let e: Error = raw.into();
        let shown = e.to_string();
        assert_eq!(shown.lines().count(), 1, "{shown}");
        assert!(
            shown.starts_with("libtorch: ") && shown.contains("mat"),
            "{shown}"
        );
        assert!(!shown.contains("frame #"), "{shown}");
    }
}
