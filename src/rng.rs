//! The random streams of a run. A run has one seed (`--seed`, saved in `config.json`); every
//! random choice in the crate draws from one of the streams named here, each derived from that
//! seed by its own recipe, so a newcomer finds every use of the seed in one file and two streams
//! never alias. The recipes are fixed: changing one changes what a seed computes.
//!
//! | stream | recipe | drawn by |
//! |---|---|---|
//! | [`Streams::ga`] | `seed` | selection, breeding and initial genomes (gari, gan, auto-cnn) |
//! | [`Streams::class`] | `seed + class * 1_000_003` | fool: the GA of one class |
//! | [`Streams::data_split`] | `seed ^ 0x5eed_da7a` | datasets: validation split and `--subset` |
//! | [`Streams::fid_samples`] | `seed ^ 0xF1D` | gan: the real images of the FID |
//! | [`Streams::select_latents`] | `seed ^ 0x5E1E_C7` | gan: the latents of `--select-latents fixed` |
//! | [`Streams::epoch`] | `seed + epochs done` | training: shuffling and augmentation from a (re)start after that many epochs, and libtorch's RNG during it |
//! | [`Streams::init_libtorch`] | `seed` | libtorch's global RNG before weights are created (train, auto-cnn, gan) |
//! | [`Streams::resume_libtorch`] | `seed ^ generation * 0x9E37_79B9` | gan: libtorch's RNG after a resume at `generation` |
use rand::SeedableRng;

/// libtorch's global RNG is one per process (per device). Code that seeds it and then draws
/// from it while other threads may do the same (networks trained concurrently: auto-cnn's
/// `--per-device`, several GPUs) holds this lock from the seed to the last draw, so that what it
/// draws depends on its seed alone; seeding holds it too.
static LIBTORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds libtorch's global RNG (see the lock above) until the guard is dropped.
pub fn libtorch_lock() -> std::sync::MutexGuard<'static, ()> {
    LIBTORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// The RNG of every run: seedable, portable, and serialisable into checkpoints.
pub type GaRng = rand_chacha::ChaCha8Rng;

/// The named random streams of one seed. A config holds it as its seed number (serde
/// transparent), so the layers below the run layer take the streams themselves, never a
/// number to make them from again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Streams {
    seed: u64,
}

impl Streams {
    pub fn new(seed: u64) -> Self {
        Streams { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The GA's stream: initial genomes, selection, breeding.
    pub fn ga(&self) -> GaRng {
        GaRng::seed_from_u64(self.seed)
    }

    /// `fool`: the GA stream of one class (classes evolve independently).
    pub fn class(&self, class: i64) -> GaRng {
        GaRng::seed_from_u64(self.seed.wrapping_add(class as u64 * 1_000_003))
    }

    /// The validation split and the `--subset` of a dataset.
    pub fn data_split(&self) -> GaRng {
        GaRng::seed_from_u64(self.seed ^ 0x5eed_da7a)
    }

    /// `gan`: which real images the FID compares against (fixed for the run).
    pub fn fid_samples(&self) -> GaRng {
        GaRng::seed_from_u64(self.seed ^ 0xF1D)
    }

    /// `gan --pbt-every`: which real images the PBT rounds' FIDs compare against.
    pub fn pbt_samples(&self) -> GaRng {
        GaRng::seed_from_u64(self.seed ^ 0xB7_F1D)
    }

    /// `gan --select-latents fixed`: the latents every selection round scores on.
    pub fn select_latents(&self) -> GaRng {
        GaRng::seed_from_u64(self.seed ^ 0x5E1E_C7)
    }

    /// Training: the stream of a training that starts after `epoch` epochs were done (0 for a
    /// new one). Also seeds libtorch's RNG (dropout) for it.
    pub fn epoch(&self, epoch: u64) -> GaRng {
        let s = self.seed.wrapping_add(epoch);
        let _rng = libtorch_lock();
        tch::manual_seed(s as i64);
        GaRng::seed_from_u64(s)
    }

    /// Seeds libtorch's global RNG before a network's weights are created, so they depend on
    /// the seed alone.
    pub fn init_libtorch(&self) {
        tch::manual_seed(self.seed as i64);
    }

    /// `gan`: seeds libtorch's global RNG for the generation after `generation`, so that what
    /// it draws does not depend on where the run was checkpointed or resumed.
    pub fn generation_libtorch(&self, generation: u64) {
        tch::manual_seed((self.seed ^ generation.wrapping_mul(0x9E37_79B9)) as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_and_repeat() {
        let s = Streams::new(42);
        let draw = |mut r: GaRng| r.random::<u64>();
        let all = [
            draw(s.ga()),
            draw(s.class(1)),
            draw(s.data_split()),
            draw(s.fid_samples()),
            draw(s.pbt_samples()),
            draw(s.select_latents()),
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j], "streams {i} and {j} alias");
            }
        }
        assert_eq!(draw(s.ga()), draw(Streams::new(42).ga()));
        // fool's class 0 is the GA stream itself (the recipe predates the named streams)
        assert_eq!(draw(s.class(0)), draw(s.ga()));
    }
}
