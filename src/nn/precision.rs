//! `--precision`: the number format convolutions compute in while a network trains.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// How a [`LayerNet`](super::LayerNet) computes its convolutions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats throughout (what the exported TorchScript model always computes in).
    #[default]
    Fp32,
    /// Mixed precision: the weights stay 32-bit (the optimiser updates those), convolutions and
    /// batch-norm compute in bfloat16 on channels-last tensors, the classifier in fp32. On a CPU
    /// with AVX512-BF16 this trains 2-3x faster (see docs/results/auto-cnn.md).
    Bf16,
}

impl Precision {
    /// `auto` is bf16 on a CPU that computes it natively (AVX512-BF16 or AMX), fp32 elsewhere
    /// (CUDA included: not measured there yet).
    pub fn parse(s: &str, device: Device) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float" | "f32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "auto" => Ok(if device == Device::Cpu && cpu_has_native_bf16() {
                Precision::Bf16
            } else {
                Precision::Fp32
            }),
            other => Err(Error::usage(format!(
                "--precision {other}: expected auto, fp32 or bf16"
            ))),
        }
    }

    /// The kind activations and convolution weights are cast to.
    pub fn kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

/// Whether this CPU has bfloat16 arithmetic (without it, bf16 is emulated and slower than fp32).
pub fn cpu_has_native_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::fs::read_to_string("/proc/cpuinfo")
            .map(|s| {
                s.lines().find(|l| l.starts_with("flags")).is_some_and(|l| {
                    l.split_whitespace()
                        .any(|f| f == "avx512_bf16" || f == "amx_bf16")
                })
            })
            .unwrap_or(false)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The same values laid out channels-last (NHWC strides) for a 4-d tensor; what oneDNN's fast
/// convolutions want. Differentiable.
pub fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            Precision::parse("fp32", Device::Cpu).unwrap(),
            Precision::Fp32
        );
        assert_eq!(
            Precision::parse("BF16", Device::Cpu).unwrap(),
            Precision::Bf16
        );
        assert_eq!(
            Precision::parse("auto", Device::Cuda(0)).unwrap(),
            Precision::Fp32
        );
        assert!(matches!(
            Precision::parse("fp8", Device::Cpu),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn channels_last_keeps_values_and_changes_strides() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        let c = channels_last(&t);
        assert_eq!(c.size(), t.size());
        assert_eq!(c.stride(), vec![60, 1, 15, 3]);
        assert!(c.equal(&t));
    }
}
