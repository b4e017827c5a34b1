//! In-process sync rounds over the sans-IO core, with optional faults on the frames.
//! Depends on the engine alone: the fuzz crate includes this file by path.

use td_engine::sync::{FrameDecoder, RoundStats, SyncSession};
use td_engine::Store;

/// What happens to one frame in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered once.
    Deliver,
    /// Lost.
    Drop,
    /// Delivered twice.
    Duplicate,
    /// Held back and delivered after the next frame.
    Delay,
    /// Delivered with the byte at this position (modulo the length) XORed with the value
    /// (a corrupted or forged frame; the fuzz targets draw these).
    Flip(usize, u8),
    /// Delivered cut to this many bytes (modulo the length plus one).
    Cut(usize),
}

fn payloads(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut d = FrameDecoder::default();
    frames
        .into_iter()
        .flat_map(|f| d.push(&f).expect("well-formed frames"))
        .collect()
}

/// Delivers the next frame of `inbox` to `to` (through `fate`), queueing its answers.
fn step(
    to: &mut SyncSession<&mut Store>,
    inbox: &mut Vec<Vec<u8>>,
    outbox: &mut Vec<Vec<u8>>,
    held: &mut Option<Vec<u8>>,
    fate: &mut impl FnMut() -> Fate,
) -> Result<(), String> {
    if inbox.is_empty() {
        return Ok(());
    }
    let f = inbox.remove(0);
    let deliveries = match fate() {
        Fate::Deliver => vec![f],
        Fate::Drop => vec![],
        Fate::Duplicate => vec![f.clone(), f],
        Fate::Delay => held.replace(f).into_iter().collect(),
        Fate::Flip(at, x) => {
            let mut f = f;
            if !f.is_empty() {
                let at = at % f.len();
                f[at] ^= x;
            }
            vec![f]
        }
        Fate::Cut(keep) => {
            let mut f = f;
            f.truncate(keep % (f.len() + 1));
            vec![f]
        }
    };
    for p in deliveries {
        let out = to.receive(&p).map_err(|e| e.error.to_string())?;
        outbox.extend(payloads(out));
    }
    Ok(())
}

/// Runs one round between `a` and `b`, passing every frame through `fate`. Returns the two
/// sides' stats when the round finished, or `Err` with a message when it failed or stalled
/// (a stalled round is what a timeout ends in the real transport).
pub fn round(
    a: &mut Store,
    b: &mut Store,
    mut fate: impl FnMut() -> Fate,
) -> Result<(RoundStats, RoundStats), String> {
    let mut sa = SyncSession::new(&mut *a);
    let mut sb = SyncSession::new(&mut *b);
    let mut to_b: Vec<Vec<u8>> = payloads(sa.start().map_err(|e| e.error.to_string())?);
    let mut to_a: Vec<Vec<u8>> = payloads(sb.start().map_err(|e| e.error.to_string())?);
    let mut held_b: Option<Vec<u8>> = None;
    let mut held_a: Option<Vec<u8>> = None;
    for _ in 0..100_000 {
        if sa.is_finished() && sb.is_finished() {
            let stats = (sa.stats().clone(), sb.stats().clone());
            drop((sa, sb));
            // As the transport does after a round: the key upkeep the round made necessary
            // (docs/encryption.md), sent in the next round.
            for s in [&mut *a, &mut *b] {
                let session = s.upkeep_session();
                s.maintain_keys(&session).map_err(|e| e.to_string())?;
            }
            return Ok(stats);
        }
        if to_a.is_empty() && to_b.is_empty() {
            // Deliver anything held back, else the round has stalled.
            match (held_a.take(), held_b.take()) {
                (None, None) => return Err("round stalled (frames lost)".into()),
                (ha, hb) => {
                    to_a.extend(ha);
                    to_b.extend(hb);
                    continue;
                }
            }
        }
        step(&mut sb, &mut to_b, &mut to_a, &mut held_b, &mut fate)?;
        step(&mut sa, &mut to_a, &mut to_b, &mut held_a, &mut fate)?;
    }
    Err("round did not finish".into())
}

/// The fates of a round's frames from a list of numbers (0 drop, 1 duplicate, 2 delay,
/// anything else deliver; deliver once the list runs out), as property tests draw them.
pub fn fates(faults: Vec<u8>) -> impl FnMut() -> Fate {
    let mut it = faults.into_iter();
    move || match it.next() {
        Some(0) => Fate::Drop,
        Some(1) => Fate::Duplicate,
        Some(2) => Fate::Delay,
        _ => Fate::Deliver,
    }
}

/// A fault-free round that must succeed.
pub fn clean_round(a: &mut Store, b: &mut Store) -> (RoundStats, RoundStats) {
    round(a, b, || Fate::Deliver).expect("clean sync round")
}
