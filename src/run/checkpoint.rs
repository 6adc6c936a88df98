//! Every job's checkpoint goes through this one seam: a JSON state and an optional tensor
//! payload beside it, under the names `run/dir.rs` gives them, each written atomically (bytes
//! serialised in memory, then Rust I/O: a full disk is an error, never libtorch's abort). The
//! payload is written first and the state last, so the state is the commit point: a run
//! killed between the two resumes from the previous state, whose payload the new one only
//! replaced if it got as far as the state. Reading is the same seam backwards, with a corrupt
//! file named in one line.
//!
//! gari's and fool's engine keeps its state and population in one file ([`save_packed`]): the
//! JSON state as a header, then the population's own bytes.
use super::RunDir;
use crate::error::{Error, Result};
use crate::fsutil;
use serde::{de::DeserializeOwned, Serialize};
use std::io::{Read, Write};
use std::path::Path;
use tch::{nn::VarStore, Device, Tensor};

/// What a checkpoint holds besides its JSON state.
pub enum Payload<'a> {
    /// Named tensors (moved to the CPU), in libtorch's multi-tensor format.
    Tensors(Vec<(String, Tensor)>),
    /// A var store's variables, as `VarStore::save` writes them.
    Vars(&'a VarStore),
}

/// Writes `payload` (when there is one) to `dir/payload_name`, then `state` to
/// `dir/state_name`.
pub fn save(
    dir: &RunDir,
    state_name: &str,
    state: &impl Serialize,
    payload: Option<(&str, Payload)>,
) -> Result<()> {
    if let Some((name, payload)) = payload {
        let path = dir.file(name);
        match payload {
            Payload::Tensors(named) => {
                let cpu: Vec<(String, Tensor)> = named
                    .into_iter()
                    .map(|(n, t)| (n, t.to_device(Device::Cpu)))
                    .collect();
                fsutil::write_torch(&path, |buf| {
                    Tensor::save_multi_to_stream(&cpu, buf).map_err(Error::from)
                })?
            }
            Payload::Vars(vs) => fsutil::write_torch(&path, |buf| Ok(vs.save_to_stream(buf)?))?,
        }
    }
    fsutil::write_json_atomic(&dir.file(state_name), state)
}

/// The JSON state of a checkpoint; `None` when the run stopped before its first one.
pub fn load_state<S: DeserializeOwned>(dir: &RunDir, state_name: &str) -> Result<Option<S>> {
    let path = dir.file(state_name);
    if !path.is_file() {
        return Ok(None);
    }
    fsutil::read_json(&path).map(Some)
}

/// The tensors of a checkpoint's payload, by name.
pub fn load_tensors(dir: &RunDir, name: &str) -> Result<std::collections::HashMap<String, Tensor>> {
    let path = dir.file(name);
    let named = Tensor::load_multi(&path).map_err(|e| {
        Error::corrupt(
            &path,
            format!("cannot read the checkpoint's tensors: {}", first_line(&e)),
        )
    })?;
    Ok(named.into_iter().collect())
}

/// Loads a checkpoint's payload into the variables of `vs` (`what` names them in an error).
pub fn load_vars(dir: &RunDir, name: &str, vs: &mut VarStore, what: &str) -> Result<()> {
    let path = dir.file(name);
    vs.load(&path)
        .map_err(|e| Error::corrupt(&path, format!("cannot load {what}: {}", first_line(&e))))
}

fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}

const PACKED_MAGIC: &[u8; 16] = b"NEUROEVO-CKPT-1\n";

/// Writes a one-file checkpoint atomically: the state as a JSON header, then what `payload`
/// writes (the engine's population).
pub fn save_packed(
    path: &Path,
    state: &impl Serialize,
    payload: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let json = serde_json::to_vec(state)?;
    fsutil::write_atomic_with(path, |w| {
        w.write_all(PACKED_MAGIC)?;
        w.write_all(&(json.len() as u64).to_le_bytes())?;
        w.write_all(&json)?;
        payload(w)
    })
}

/// Reads a one-file checkpoint: its state, with `payload` reading the rest.
pub fn load_packed<S: DeserializeOwned>(
    path: &Path,
    payload: impl FnOnce(&mut dyn Read) -> Result<()>,
) -> Result<S> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = std::io::BufReader::new(file);
    let mut magic = [0u8; 16];
    r.read_exact(&mut magic)
        .map_err(|_| Error::corrupt(path, "not a neuroevo checkpoint (too short)"))?;
    if &magic != PACKED_MAGIC {
        return Err(Error::corrupt(
            path,
            "not a neuroevo checkpoint (bad magic)",
        ));
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len)
        .map_err(|_| Error::corrupt(path, "truncated checkpoint header"))?;
    let len = u64::from_le_bytes(len);
    if len > 1 << 30 {
        return Err(Error::corrupt(
            path,
            "checkpoint header length is implausible",
        ));
    }
    let mut json = vec![0u8; len as usize];
    r.read_exact(&mut json)
        .map_err(|_| Error::corrupt(path, "truncated checkpoint header"))?;
    let state: S = serde_json::from_slice(&json)
        .map_err(|e| Error::corrupt(path, format!("checkpoint state: {e}")))?;
    payload(&mut r).map_err(|e| match e {
        Error::Corrupt { msg, .. } => Error::corrupt(path, msg),
        other => other,
    })?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_written_after_its_payload_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path());
        assert!(load_state::<u32>(&dir, "s.json").unwrap().is_none());
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let payload = Payload::Tensors(vec![("t".into(), t.shallow_clone())]);
        save(&dir, "s.json", &7u32, Some(("p.pt", payload))).unwrap();
        assert_eq!(load_state::<u32>(&dir, "s.json").unwrap(), Some(7));
        let back = load_tensors(&dir, "p.pt").unwrap();
        assert!(back["t"].equal(&t));
        // a payload that is not one is named in one line
        std::fs::write(dir.file("p.pt"), b"junk").unwrap();
        let e = load_tensors(&dir, "p.pt").unwrap_err().to_string();
        assert!(e.contains("p.pt") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn a_packed_checkpoint_round_trips_and_refuses_other_files() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c.bin");
        save_packed(&p, &vec![1u8, 2], |w| w.write_all(b"pop")).unwrap();
        let mut rest = Vec::new();
        let s: Vec<u8> = load_packed(&p, |r| {
            r.read_to_end(&mut rest).unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!((s, rest), (vec![1, 2], b"pop".to_vec()));
        std::fs::write(&p, b"something else entirely").unwrap();
        let e = load_packed::<Vec<u8>>(&p, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad magic"), "{e}");
    }
}
