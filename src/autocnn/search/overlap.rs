//! Successive halving with an evaluator whose workers take tasks of several rungs at once
//! (`--broker`): no worker waits for a whole rung when there is promotable work. A network is
//! promoted the moment its promotion is certain ([`halving::certain_promotions`]) and its next
//! rung's task goes out in the same call, while the rest of its rung still trains; the
//! promotions end as the synchronous rule's, so the records are the same.
//!
//! The checkpoint holds, per individual, the rung it reached and whether it is promoted; its
//! fitness at the rungs below comes from the cache, which keys each by its budget. So a
//! resumed search re-derives every rung's state, promotes what became certain, and goes on
//! with the tasks still out (whose results the broker kept), several rungs at once. A search
//! resumed without its broker goes on the same way, one wave of local trainings at a time.
use super::*;

impl Search {
    /// Whether this generation's rungs are evaluated overlapping: with successive halving, an
    /// evaluator that overlaps rungs, or a checkpoint with networks ahead of its lowest rung.
    pub(super) fn overlapping(&self) -> bool {
        let e = self.evaluator.as_ref();
        self.halving() && (e.is_some_and(|e| e.overlaps()) || self.rungs_mixed())
    }

    fn list(&self) -> &[Individual] {
        match self.state.generation {
            0 => &self.state.population,
            _ => &self.state.offspring,
        }
    }

    /// Whether some network of the current list is ahead of the checkpoint's rung (promoted
    /// from it or beyond), which the rung-by-rung evaluation never leaves behind.
    fn rungs_mixed(&self) -> bool {
        let rung = self.state.rung;
        self.list()
            .iter()
            .any(|p| p.rung > rung || (p.promoted && p.rung >= rung))
    }

    /// (index, fitness) of the networks scored at each rung so far: the fitness at the rung a
    /// network reached is its own, those below come from the cache.
    fn rung_scores(&self) -> Result<Vec<Vec<(usize, f64)>>> {
        let settings: Vec<String> = (0..=self.top()).map(|r| self.settings_at(r)).collect();
        let mut scored = vec![Vec::new(); settings.len()];
        for (i, p) in self.list().iter().enumerate() {
            let Some(f) = p.fitness else { continue };
            for (r, s) in settings.iter().enumerate().take(p.rung) {
                let Some(e) = self.cache.entries.get(&cache_key(&p.genome, s)) else {
                    return Err(crate::error::Error::Other(format!(
                        "the checkpoint says {} reached rung {} but the cache has no \
                         evaluation of it at rung {r}",
                        p.genome, p.rung
                    )));
                };
                scored[r].push((i, e.fitness));
            }
            scored[p.rung].push((i, f));
        }
        Ok(scored)
    }

    /// Promotes every network whose promotion became certain (its record logged, promoted, in
    /// rank order), logs the records of the rungs now complete (not promoted) and moves the
    /// checkpoint's rung to the lowest rung not complete. The (index, rung) of the trainings
    /// the promotions made ready.
    fn promote_certain(&mut self, ctx: &mut Ctx) -> Result<Vec<(usize, usize)>> {
        let scored = self.rung_scores()?;
        let n = self.list().len();
        let certain = halving::certain_promotions(n, self.cfg.eta, &scored);
        let mut ready = Vec::new();
        for (r, up) in certain.iter().enumerate() {
            for &i in up {
                let p = &mut self.current()[i];
                if p.rung != r || p.promoted {
                    continue; // promoted before
                }
                p.promoted = true;
                ready.push((i, r + 1));
                if let Some(mut record) = p.record.take() {
                    if let Some(rung) = record.rung.as_mut() {
                        rung.promoted = true;
                    }
                    self.log(ctx, &record)?;
                }
            }
        }
        // a rung is complete when every network of it is scored: then what is not promoted
        // stays so
        let mut lowest_open = 0;
        while lowest_open < self.top() {
            let r = lowest_open;
            let complete = match r {
                0 => self.list().iter().all(|p| p.fitness.is_some()),
                _ => !self.list().iter().any(|p| p.rung == r - 1 && p.promoted),
            };
            if !complete {
                break;
            }
            for i in 0..n {
                let p = &mut self.current()[i];
                if p.rung == r && !p.promoted {
                    if let Some(record) = p.record.take() {
                        self.log(ctx, &record)?;
                    }
                }
            }
            lowest_open += 1;
        }
        self.state.rung = lowest_open;
        self.save(ctx.clocks)?;
        Ok(ready)
    }

    /// The trainings not done yet: (index, rung) of every network without a fitness (rung 0)
    /// or promoted and not trained at its next rung.
    fn open_trainings(&self) -> Vec<(usize, usize)> {
        let top = self.top();
        self.list()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.fitness {
                None => Some((i, 0)),
                Some(_) if p.promoted && p.rung < top => Some((i, p.rung + 1)),
                Some(_) => None,
            })
            .collect()
    }

    /// Says which rungs are in flight and how many trainings each has left.
    fn flight_message(&self, ctx: &Ctx) {
        let mut left = vec![0usize; self.top() + 1];
        for (_, r) in self.open_trainings() {
            left[r] += 1;
        }
        let rungs: Vec<String> = left
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(r, n)| format!("rung {r}: {n} left"))
            .collect();
        self.set_message(ctx, &format!("in flight: {}", rungs.join(", ")));
    }

    /// Evaluates the current list through every rung, the rungs overlapping: the evaluator
    /// gets every training ready and, as results come, the next rungs of the networks they
    /// made certain. `Some` when the time budget ran out or Ctrl-C came first (the promoted
    /// networks then wait in the checkpoint).
    pub(super) fn evaluate_overlapping(&mut self, ctx: &mut Ctx) -> Result<Option<StopReason>> {
        loop {
            self.promote_certain(ctx)?;
            let open = self.open_trainings();
            if open.is_empty() {
                return Ok(None);
            }
            if let Some(reason) = ctx.stop_now() {
                return Ok(Some(reason));
            }
            let key_of = |s: &Self, (i, r): (usize, usize)| {
                cache_key(&s.list()[i].genome, &s.settings_at(r))
            };
            // cached trainings first: no training
            let hit = open
                .iter()
                .find_map(|&t| self.cache.entries.get(&key_of(self, t)).map(|e| (t, e)));
            if let Some(((i, r), e)) = hit {
                let e = e.clone();
                self.record(ctx, r, i, e, true, None)?;
                continue;
            }
            // one training per genome and budget at a time: a copy of a genome waits for the
            // first's result, which it then takes from the cache
            let mut sent: Vec<((usize, usize), String)> = Vec::new();
            for &t in &open {
                let key = key_of(self, t);
                if sent.iter().all(|(_, k)| *k != key) {
                    sent.push((t, key));
                }
            }
            let job = |s: &Self, (i, r): (usize, usize)| Job {
                genome: s.list()[i].genome.clone(),
                cfg: s.cfg_at(r),
            };
            let jobs: Vec<Job> = sent.iter().map(|&(t, _)| job(self, t)).collect();
            self.flight_message(ctx);
            let mut evaluator = self.evaluator.take().expect("the search has an evaluator");
            let bars = self.bars.clone();
            let result =
                evaluator.evaluate_jobs(jobs, bars.as_ref(), Some(ctx.bar), &mut |k, res| {
                    let t = res?;
                    let (i, r) = sent[k].0;
                    self.overhead_s = t.overhead_s;
                    self.record(ctx, r, i, t.eval, false, t.weights.as_deref())?;
                    let ready = self.promote_certain(ctx)?;
                    let mut more = Vec::new();
                    // past the time budget the promoted wait in the checkpoint
                    if ctx.stop_now().is_none() {
                        for t in ready {
                            let key = key_of(self, t);
                            let known = self.cache.entries.contains_key(&key);
                            if !known && sent.iter().all(|(_, k)| *k != key) {
                                more.push(job(self, t));
                                sent.push((t, key));
                            }
                        }
                    }
                    self.flight_message(ctx);
                    Ok(more)
                });
            self.evaluator = Some(evaluator);
            result?;
        }
    }
}
