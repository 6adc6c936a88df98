//! A loaded dataset and its splits on the device, and the seeded mini-batches the trainers
//! iterate over.
use crate::rng::GaRng;
use rand::seq::SliceRandom;
use tch::{Device, Kind, Tensor};

/// Images `[N, C, H, W]` (f32) and labels `[N]` (i64), on one device.
pub struct Split {
    pub x: Tensor,
    pub y: Tensor,
}

impl Split {
    pub fn len(&self) -> usize {
        self.y.size()[0] as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn select(&self, idx: &[i64]) -> Split {
        let i = Tensor::from_slice(idx).to_device(self.x.device());
        Split {
            x: self.x.index_select(0, &i),
            y: self.y.index_select(0, &i),
        }
    }
}

pub struct Dataset {
    pub name: String,
    pub classes: Vec<String>,
    /// `[C, H, W]`
    pub shape: [i64; 3],
    /// Range of the image values: (0, 1) for the classification sets, (-1, 1) for folders.
    pub value_range: (f32, f32),
    pub train: Split,
    pub val: Split,
    pub test: Split,
}

impl Dataset {
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }
    pub fn device(&self) -> Device {
        self.train.x.device()
    }
    /// Another handle on the same tensors (no copy): for threads that each need their own
    /// `Dataset` (a tensor handle belongs to one thread) and only read it.
    pub fn shallow_clone(&self) -> Dataset {
        let split = |s: &Split| Split {
            x: s.x.shallow_clone(),
            y: s.y.shallow_clone(),
        };
        Dataset {
            name: self.name.clone(),
            classes: self.classes.clone(),
            shape: self.shape,
            value_range: self.value_range,
            train: split(&self.train),
            val: split(&self.val),
            test: split(&self.test),
        }
    }

    /// Train and validation splits together (for a final model trained on both).
    pub fn train_and_val(&self) -> Split {
        Split {
            x: Tensor::cat(&[&self.train.x, &self.val.x], 0),
            y: Tensor::cat(&[&self.train.y, &self.val.y], 0),
        }
    }
}

/// Seeded mini-batches sliced on the device: one index upload per epoch, no host round trip
/// per batch.
pub struct Batches<'a> {
    split: &'a Split,
    perm: Option<Tensor>,
    pos: i64,
    n: i64,
    bs: i64,
}

impl<'a> Batches<'a> {
    /// Batches of `bs` in a seeded random order (`rng`), or in order when `rng` is `None`.
    pub fn new(split: &'a Split, bs: usize, rng: Option<&mut GaRng>) -> Self {
        let n = split.len() as i64;
        let perm = rng.map(|rng| {
            let mut p: Vec<i64> = (0..n).collect();
            p.shuffle(rng);
            Tensor::from_slice(&p).to_device(split.x.device())
        });
        Batches {
            split,
            perm,
            pos: 0,
            n,
            bs: bs.max(1) as i64,
        }
    }
    pub fn num_batches(&self) -> usize {
        ((self.n + self.bs - 1) / self.bs) as usize
    }
    /// Whether every batch has been taken.
    pub fn is_done(&self) -> bool {
        self.pos >= self.n
    }
    /// Batches taken so far.
    pub fn taken(&self) -> usize {
        ((self.pos + self.bs - 1) / self.bs) as usize
    }
    /// The order and how far it went, to go on later with [`Batches::resume`] (a training
    /// stopped in the middle of an epoch).
    pub fn into_parts(self) -> (Option<Tensor>, i64) {
        (self.perm, self.pos)
    }
    /// The rest of the batches of `into_parts`'s order, from image `pos` on: the same batches
    /// the uninterrupted iterator would have given.
    pub fn resume(split: &'a Split, bs: usize, perm: Option<Tensor>, pos: i64) -> Self {
        Batches {
            split,
            perm,
            pos,
            n: split.len() as i64,
            bs: bs.max(1) as i64,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = (Tensor, Tensor);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.n {
            return None;
        }
        let len = self.bs.min(self.n - self.pos);
        let out = match &self.perm {
            Some(p) => {
                let idx = p.narrow(0, self.pos, len);
                (
                    self.split.x.index_select(0, &idx),
                    self.split.y.index_select(0, &idx),
                )
            }
            None => (
                self.split.x.narrow(0, self.pos, len),
                self.split.y.narrow(0, self.pos, len),
            ),
        };
        self.pos += len;
        Some(out)
    }
}

pub(crate) fn to_split(
    x: Vec<u8>,
    y: Vec<u8>,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    device: Device,
) -> Split {
    let x = Tensor::from_slice(&x)
        .view([n as i64, c as i64, h as i64, w as i64])
        .to_device(device)
        .to_kind(Kind::Float)
        / 255.0;
    let y = Tensor::from_slice(&y)
        .to_kind(Kind::Int64)
        .to_device(device);
    Split { x, y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn batches_cover_every_sample_once() {
        let split = Split {
            x: Tensor::arange(10, (Kind::Float, Device::Cpu)).view([10, 1, 1, 1]),
            y: Tensor::arange(10, (Kind::Int64, Device::Cpu)),
        };
        let mut rng = GaRng::seed_from_u64(1);
        let b = Batches::new(&split, 4, Some(&mut rng));
        assert_eq!(b.num_batches(), 3);
        let mut seen: Vec<i64> = b
            .flat_map(|(_, y)| Vec::<i64>::try_from(&y).unwrap())
            .collect();
        assert_ne!(seen, (0..10).collect::<Vec<_>>(), "shuffled");
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
}
