//! Evolve your own genome with your own fitness on neuroevo's engine: bit strings that should
//! spell a target pattern (OneMax with a twist), in a run directory with a log and checkpoints.
//!
//! `cargo run --release --example custom_fitness` (writes runs/custom-fitness-example/).
use neuroevo::ga::{Breeding, GaRng, Pairing, Population, Replacement, Selection};
use neuroevo::run::engine::{Engine, EngineState, GaConfig};
use neuroevo::run::{RunDir, StopCriteria};
use rand::{Rng, SeedableRng};

const TARGET: &str = "neuroevolution on libtorch, in rust";

/// A population of bit strings: the genome, its operators and its fitness are all yours.
struct Bits {
    genomes: Vec<Vec<u8>>,
    fitness: Vec<f64>,
}

fn fitness(g: &[u8]) -> f64 {
    g.iter()
        .zip(TARGET.bytes())
        .map(|(a, b)| (!(a ^ b)).count_ones() as f64)
        .sum()
}

impl Population for Bits {
    fn len(&self) -> usize {
        self.genomes.len()
    }
    fn fitness(&self) -> &[f64] {
        &self.fitness
    }
    fn next_generation(
        &mut self,
        survivors: &[usize],
        pairs: &[(usize, usize)],
        rng: &mut GaRng,
    ) -> neuroevo::Result<()> {
        let mut next: Vec<Vec<u8>> = survivors.iter().map(|&i| self.genomes[i].clone()).collect();
        for &(a, b) in pairs {
            let cut = rng.random_range(0..TARGET.len());
            let mut child = [&self.genomes[a][..cut], &self.genomes[b][cut..]].concat();
            child[rng.random_range(0..TARGET.len())] ^= 1 << rng.random_range(0..8); // one bit flip
            next.push(child);
        }
        self.fitness = next.iter().map(|g| fitness(g)).collect();
        self.genomes = next;
        Ok(())
    }
    fn save(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        w.write_all(&self.genomes.concat())
    }
    fn load(&mut self, r: &mut dyn std::io::Read) -> neuroevo::Result<()> {
        let mut bytes = vec![0; self.genomes.len() * TARGET.len()];
        r.read_exact(&mut bytes)
            .map_err(|e| neuroevo::Error::Other(e.to_string()))?;
        self.genomes = bytes.chunks(TARGET.len()).map(<[u8]>::to_vec).collect();
        self.fitness = self.genomes.iter().map(|g| fitness(g)).collect();
        Ok(())
    }
}

fn main() -> neuroevo::Result<()> {
    let cfg = GaConfig {
        breeding: Breeding {
            population: 64,
            parents: 16,
            selection: Selection::Tournament { k: 3 },
            pairing: Pairing::RandomPairs,
            replacement: Replacement::Elitism { k: 2 },
        },
        stop: StopCriteria {
            generations: Some(2000),
            target_fitness: Some(8.0 * TARGET.len() as f64),
            ..Default::default()
        },
        checkpoint_every: 500,
        log_every: 50,
    };
    cfg.validate()?;
    let mut rng = GaRng::seed_from_u64(1);
    let genomes: Vec<Vec<u8>> = (0..64)
        .map(|_| (0..TARGET.len()).map(|_| rng.random()).collect())
        .collect();
    let mut pop = Bits {
        fitness: genomes.iter().map(|g| fitness(g)).collect(),
        genomes,
    };
    let engine = Engine {
        cfg: &cfg,
        dir: RunDir::new("runs/custom-fitness-example"),
        progress: true,
    };
    let out = engine.run(&mut pop, &mut EngineState::new(rng), &mut (), false)?;
    let best = String::from_utf8_lossy(&pop.genomes[out.best]).into_owned();
    println!(
        "generation {} ({}): fitness {} of {}: {best:?}",
        out.generation,
        out.reason,
        out.best_fitness,
        8 * TARGET.len()
    );
    Ok(())
}
