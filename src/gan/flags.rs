//! Which `neuroevo gan` flags go together: those that belong to one mode, to evolution or to
//! one variant (E-GAN, PBT), refused with one line where they do not apply.
use super::config::GanArgs;
use super::{pbt, weights};
use crate::error::{Error, Result};

impl GanArgs {
    /// Flags that belong to one mode, or to evolution, given where they do not apply.
    pub(crate) fn check_mode_flags(&self, weights_mode: bool) -> Result<()> {
        if self.evolve_lr.is_some() && (weights_mode || self.no_evolution) {
            return Err(Error::usage(
                "--evolve-lr: only for the dcgan mode with evolution (learning rates evolve with the individuals)",
            ));
        }
        if self.stroke_mutation > 0 {
            if !weights_mode {
                return Err(Error::usage(
                    "--stroke-mutation: only for the weights mode (it mutates an MLP generator's output weights)",
                ));
            }
            if !(self.stroke_sigma.is_finite() && self.stroke_sigma > 0.0) {
                return Err(Error::usage(format!(
                    "--stroke-sigma {}: must be a positive number",
                    self.stroke_sigma
                )));
            }
            if !(self.stroke_width.is_finite() && (0.1..=10.0).contains(&self.stroke_width)) {
                return Err(Error::usage(format!(
                    "--stroke-width {}: must be between 0.1 and 10 pixels",
                    self.stroke_width
                )));
            }
        }
        if self.hidden_activation != weights::HiddenActivation::Sigmoid && !weights_mode {
            return Err(Error::usage(
                "--hidden-activation: only for the weights mode (the MLP generators)",
            ));
        }
        if let Some(t) = self.softmax_temperature {
            if self.hidden_activation != weights::HiddenActivation::Softmax {
                return Err(Error::usage(
                    "--softmax-temperature: only with --hidden-activation softmax",
                ));
            }
            if !(t.is_finite() && (1e-3..=100.0).contains(&t)) {
                return Err(Error::usage(format!(
                    "--softmax-temperature {t}: must be between 0.001 and 100"
                )));
            }
        }
        if weights_mode && self.no_evolution {
            return Err(Error::usage(
                "--no-evolution: in weights mode nothing else trains the generators",
            ));
        }
        self.check_egan_flags(weights_mode)
    }

    /// `--g-losses` and `--diversity-weight`, refused where E-GAN makes no sense.
    fn check_egan_flags(&self, weights_mode: bool) -> Result<()> {
        if let Some(w) = self.diversity_weight {
            if self.g_losses.is_empty() {
                return Err(Error::usage(
                    "--diversity-weight: only with --g-losses (it weighs E-GAN's diversity fitness)",
                ));
            }
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::usage(format!(
                    "--diversity-weight {w}: must be a number >= 0"
                )));
            }
        }
        if self.g_losses.is_empty() {
            return Ok(());
        }
        let why = if weights_mode {
            Some("only for the dcgan mode (E-GAN varies DCGAN generators by gradient steps)")
        } else if self.no_evolution {
            Some("E-GAN's selection of the children is evolution; drop --no-evolution")
        } else if self.grad_steps == 0 {
            Some("a child is one Adam step: needs --grad-steps of at least 1")
        } else if self.evolve_lr.is_some() {
            Some("not with --evolve-lr (E-GAN does not breed the generators)")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::usage(format!("--g-losses: {why}")));
        }
        for (i, l) in self.g_losses.iter().enumerate() {
            if self.g_losses[..i].contains(l) {
                return Err(Error::usage(format!(
                    "--g-losses: {} is listed twice",
                    l.name()
                )));
            }
        }
        Ok(())
    }

    /// `--pbt-every`, `--pbt-fid-samples` and `--halving`: the PBT settings of the run (None:
    /// off), refused where PBT makes no sense.
    pub(crate) fn pbt_config(
        &self,
        weights_mode: bool,
        population: usize,
        d_population: usize,
    ) -> Result<Option<pbt::PbtConfig>> {
        let Some(every) = self.pbt_every else {
            if self.pbt_fid_samples.is_some() && self.epoch_select.is_none() {
                return Err(Error::usage(
                    "--pbt-fid-samples: only with --pbt-every or --epoch-select",
                ));
            }
            if self.halving {
                return Err(Error::usage(
                    "--halving: only with --pbt-every N (a round every N generations)",
                ));
            }
            return Ok(None);
        };
        if self.halving && d_population != population {
            return Err(Error::usage(format!(
                "--halving: every generator has its own discriminator; drop --d-population {d_population} (or make it {population})"
            )));
        }
        if self.halving && self.mixture {
            return Err(Error::usage(
                "--halving: not with --mixture (one generator is left at the end)",
            ));
        }
        let why = if weights_mode {
            Some("only for the dcgan mode (it trains the generators by gradient)".to_string())
        } else if every == 0 {
            Some("must be at least 1 (a round every N generations)".to_string())
        } else if population < 2 {
            Some(format!(
                "needs --population 2 or more (the worse copy the better), not {population}"
            ))
        } else if self.no_evolution {
            Some("its exploit step is the evolution; drop --no-evolution".to_string())
        } else if !self.g_losses.is_empty() {
            Some("not with --g-losses (E-GAN selects the generators itself)".to_string())
        } else if self.evolve_lr.is_some() {
            Some("not with --evolve-lr (PBT explores the rates itself)".to_string())
        } else if self.grad_steps == 0 {
            Some("needs --grad-steps of at least 1 (PBT trains by gradient)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::usage(format!("--pbt-every {every}: {why}")));
        }
        Ok(Some(pbt::PbtConfig {
            every,
            fid_samples: self.selection_fid_samples()?,
            halving: self.halving,
        }))
    }

    /// `--pbt-fid-samples` (or its default), checked.
    fn selection_fid_samples(&self) -> Result<i64> {
        let n = self.pbt_fid_samples.unwrap_or(pbt::DEFAULT_FID_SAMPLES);
        if !(10..=100_000).contains(&n) {
            return Err(Error::usage(format!(
                "--pbt-fid-samples {n}: must be between 10 and 100000"
            )));
        }
        Ok(n)
    }

    /// `--epoch-select`: the images of each selection FID (None: off), refused where the run
    /// selects otherwise or not at all.
    pub(crate) fn epoch_select_config(&self, weights_mode: bool) -> Result<Option<i64>> {
        if self.epoch_select.is_none() {
            if self.select_latents.is_some() {
                return Err(Error::usage(
                    "--select-latents: only with --epoch-select (the latents of its rounds)",
                ));
            }
            if self.select_crossover {
                return Err(Error::usage(
                    "--select-crossover: only with --epoch-select (a child of its rounds)",
                ));
            }
            return Ok(None);
        }
        if weights_mode {
            return Err(Error::usage(
                "--epoch-select: only for the dcgan mode (it goes back along gradient training)",
            ));
        }
        if self.no_evolution {
            return Err(Error::usage(
                "--epoch-select: its selection is evolution; drop --no-evolution",
            ));
        }
        if self.pbt_every.is_some() {
            return Err(Error::usage(
                "--epoch-select: not with --pbt-every (PBT and halving select on their own rounds)",
            ));
        }
        self.selection_fid_samples().map(Some)
    }

    /// `--select-crossover` averages two states of one network, so it needs one generator and
    /// one discriminator (a population's rows are not one lineage each).
    pub(crate) fn check_crossover(&self, population: usize, d_population: usize) -> Result<()> {
        if self.select_crossover && self.epoch_select == Some(super::config::SelectMode::Revert) {
            return Err(Error::usage(
                "--select-crossover: only with --epoch-select keep (training never goes on from \
                 a crossover)",
            ));
        }
        if self.select_crossover && (population, d_population) != (1, 1) {
            return Err(Error::usage(format!(
                "--select-crossover: averages two states of one network; needs --population 1 \
                 (and --d-population 1), not {population} ({d_population})"
            )));
        }
        Ok(())
    }

    /// `--mixture`: a mixture of a dcgan population's generators, so refused in weights mode
    /// and for a population under 2.
    pub(crate) fn check_mixture(&self, weights_mode: bool, population: usize) -> Result<()> {
        if self.mixture && weights_mode {
            return Err(Error::usage(
                "--mixture: only for the dcgan mode (a mixture of its population's generators)",
            ));
        }
        if self.mixture && population < 2 {
            return Err(Error::usage(format!(
                "--mixture: needs --population 2 or more (a mixture of the population's \
                 generators), not {population}"
            )));
        }
        Ok(())
    }
}
