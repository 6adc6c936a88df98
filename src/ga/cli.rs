//! Command-line options shared by the jobs whose genomes are flat vectors.
use super::ops::{FlatOps, GeneCount, Mutation};
use crate::error::{Error, Result};

/// Mutation options; each one left out keeps the job's (or preset's) value.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct MutationArgs {
    /// Mutation: replace (uniform random values), gaussian (add N(0, sigma²)) or polynomial
    /// (Deb's polynomial steps).
    #[arg(long, value_parser = mutation_values())]
    pub mutation: Option<String>,
    /// Percent of the genes each mutated child changes, in (0, 100].
    #[arg(long, conflicts_with_all = ["mutation_genes", "mutation_rate"])]
    pub mutation_percent: Option<f64>,
    /// Exact number of genes each mutated child changes.
    #[arg(long, conflicts_with = "mutation_rate")]
    pub mutation_genes: Option<usize>,
    /// Probability that each gene of a mutated child changes.
    #[arg(long)]
    pub mutation_rate: Option<f64>,
    /// Standard deviation of Gaussian mutation.
    #[arg(long)]
    pub mutation_sigma: Option<f32>,
    /// Distribution index of polynomial mutation (larger: smaller steps).
    #[arg(long)]
    pub mutation_eta: Option<f32>,
    /// Range of mutated genes as LOW,HIGH.
    #[arg(long)]
    pub mutation_range: Option<String>,
    /// Probability that a child is mutated at all.
    #[arg(long)]
    pub mutation_prob: Option<f64>,
}

fn parse_range(s: &str) -> Result<(f32, f32)> {
    let bad = || Error::usage(format!("--mutation-range {s}: expected LOW,HIGH, e.g. 0,1"));
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

impl MutationArgs {
    /// True when any mutation option was given.
    pub fn any(&self) -> bool {
        self.mutation.is_some()
            || self.mutation_percent.is_some()
            || self.mutation_genes.is_some()
            || self.mutation_rate.is_some()
            || self.mutation_sigma.is_some()
            || self.mutation_eta.is_some()
            || self.mutation_range.is_some()
            || self.mutation_prob.is_some()
    }

    /// Applies the given options on top of `ops`.
    pub fn apply(&self, ops: &mut FlatOps) -> Result<()> {
        let (mut genes, mut low, mut high, mut sigma, mut eta) = match ops.mutation {
            Mutation::Replace { genes, low, high } => (genes, low, high, 0.1, 20.0),
            Mutation::Gaussian {
                genes,
                sigma,
                low,
                high,
            } => (genes, low, high, sigma, 20.0),
            Mutation::Polynomial {
                genes,
                eta,
                low,
                high,
            } => (genes, low, high, 0.1, eta),
        };
        let kind = match &self.mutation {
            Some(m) => m.trim().to_ascii_lowercase(),
            None => match ops.mutation {
                Mutation::Replace { .. } => "replace".into(),
                Mutation::Gaussian { .. } => "gaussian".into(),
                Mutation::Polynomial { .. } => "polynomial".into(),
            },
        };
        if let Some(p) = self.mutation_percent {
            genes = GeneCount::Percent(p);
        }
        if let Some(k) = self.mutation_genes {
            genes = GeneCount::Count(k);
        }
        if let Some(r) = self.mutation_rate {
            genes = GeneCount::Probability(r);
        }
        if let Some(s) = self.mutation_sigma {
            sigma = s;
        }
        if let Some(e) = self.mutation_eta {
            eta = e;
        }
        if let Some(r) = &self.mutation_range {
            (low, high) = parse_range(r)?;
        }
        ops.mutation = match kind.as_str() {
            "replace" | "random" => Mutation::Replace { genes, low, high },
            "gaussian" | "normal" => Mutation::Gaussian {
                genes,
                sigma,
                low,
                high,
            },
            "polynomial" | "poly" => Mutation::Polynomial {
                genes,
                eta,
                low,
                high,
            },
            other => {
                return Err(Error::usage(format!(
                    "--mutation {other}: expected replace, gaussian or polynomial"
                )))
            }
        };
        if let Some(p) = self.mutation_prob {
            ops.mutation_prob = p;
        }
        Ok(())
    }
}

/// `--selection`: truncation, tournament, tournament:K, roulette or rank.
pub fn selection(s: &str) -> std::result::Result<crate::ga::Selection, String> {
    crate::ga::Selection::parse(s).map_err(|e| e.to_string())
}

/// The choices of a closed-set flag, listed by `--help`; each is parsed by its type's `parse`.
pub fn choices(values: &[(&'static str, &[&'static str])]) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(values.iter().map(|(name, aliases)| {
        clap::builder::PossibleValue::new(*name).aliases(aliases.iter().copied())
    }))
}

/// `--crossover` of the flat-genome jobs.
pub fn crossover_values() -> clap::builder::PossibleValuesParser {
    choices(&[
        ("half-swap", &["half", "half_swap"]),
        ("single-point", &["single", "one-point", "single_point"]),
        ("two-point", &["two", "two_point"]),
        ("uniform", &[]),
        ("none", &[]),
    ])
}

/// `--crossover` of `gan`: the flat ones and per-tensor.
pub fn gan_crossover_values() -> clap::builder::PossibleValuesParser {
    choices(&[
        ("single-point", &["single", "one-point", "single_point"]),
        ("two-point", &["two", "two_point"]),
        ("uniform", &[]),
        ("per-tensor", &["tensor", "per_tensor"]),
        ("none", &[]),
        ("half-swap", &["half", "half_swap"]),
    ])
}

/// `--pairing`.
pub fn pairing_values() -> clap::builder::PossibleValuesParser {
    choices(&[("ring", &[]), ("random", &["random-pairs"])])
}

/// `--mutation`.
pub fn mutation_values() -> clap::builder::PossibleValuesParser {
    choices(&[
        ("replace", &["random"]),
        ("gaussian", &["normal"]),
        ("polynomial", &["poly"]),
    ])
}
