//! Shared parts of the flat-genome populations (`flat_cpu`, `flat_tensor`): the trait the jobs
//! use, initialisation, and the checkpoint payload format.
use super::plan::Population;
use super::GaRng;
use crate::error::{Error, Result};
use rand::Rng;
use std::io::{Read, Write};

/// A population of fixed-length `f32` genomes.
pub trait FlatPopulation: Population {
    fn n_genes(&self) -> usize;
    /// A copy of individual `i`'s genes.
    fn genome(&self, i: usize) -> Vec<f32>;
}

/// `p * n` genes uniform in `[low, high)`, row-major (individual by individual).
pub fn init_uniform(p: usize, n: usize, low: f32, high: f32, rng: &mut GaRng) -> Vec<f32> {
    (0..p * n).map(|_| rng.random_range(low..high)).collect()
}

const FLAT_MAGIC: &[u8; 8] = b"FLATPOP1";

/// Payload: magic, P and N (u64 LE), P*N genes (f32 LE), P fitness values (f64 LE).
pub fn write_flat<'a>(
    w: &mut dyn Write,
    p: usize,
    n: usize,
    rows: impl Iterator<Item = std::borrow::Cow<'a, [f32]>>,
    fitness: &[f64],
) -> std::io::Result<()> {
    w.write_all(FLAT_MAGIC)?;
    w.write_all(&(p as u64).to_le_bytes())?;
    w.write_all(&(n as u64).to_le_bytes())?;
    let mut buf = Vec::with_capacity(n * 4);
    for row in rows {
        buf.clear();
        for x in row.iter() {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    for f in fitness {
        w.write_all(&f.to_le_bytes())?;
    }
    Ok(())
}

/// Reads a payload of `write_flat`, checking that it holds `p` genomes of `n` genes.
pub fn read_flat(r: &mut dyn Read, p: usize, n: usize) -> Result<(Vec<f32>, Vec<f64>)> {
    let bad = |m: &str| Error::Corrupt {
        path: Default::default(),
        msg: m.to_string(),
    };
    let mut head = [0u8; 24];
    r.read_exact(&mut head)
        .map_err(|_| bad("truncated population header"))?;
    if &head[..8] != FLAT_MAGIC {
        return Err(bad("population payload has a bad magic number"));
    }
    let fp = u64::from_le_bytes(head[8..16].try_into().unwrap()) as usize;
    let fn_ = u64::from_le_bytes(head[16..24].try_into().unwrap()) as usize;
    if fp != p || fn_ != n {
        return Err(bad(&format!(
            "checkpoint holds {fp} genomes of {fn_} genes, this run expects {p} of {n}"
        )));
    }
    let mut bytes = vec![0u8; p * n * 4];
    r.read_exact(&mut bytes)
        .map_err(|_| bad("truncated population genes"))?;
    let genes = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut fb = vec![0u8; p * 8];
    r.read_exact(&mut fb)
        .map_err(|_| bad("truncated population fitness"))?;
    let fitness = fb
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Ok((genes, fitness))
}
