//! The closed-set flags of network training (`--optimizer`, `--schedule`, `--precision`), listed
//! by `--help` for every job that trains networks; each is parsed by its type's `parse`.
use crate::ga::cli::choices;

/// `--optimizer`.
pub fn optimizer_values() -> clap::builder::PossibleValuesParser {
    choices(&[("adam", &[]), ("sgd", &[])])
}

/// `--schedule`.
pub fn schedule_values() -> clap::builder::PossibleValuesParser {
    choices(&[("constant", &["none"]), ("cosine", &[])])
}

/// `--precision`.
pub fn precision_values() -> clap::builder::PossibleValuesParser {
    choices(&[
        ("auto", &[]),
        ("fp32", &["float", "f32"]),
        ("bf16", &["bfloat16"]),
    ])
}
