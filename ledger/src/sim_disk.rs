//! A simulated disk for crash tests: a byte log that knows which of its bytes were synced.
//!
//! A crash keeps the synced bytes and loses every unsynced write, except that it may keep a
//! prefix of them (a torn write), and may flip one bit anywhere (media damage). Every choice
//! comes from a seed, so a failing crash replays exactly from the seed it prints.
//!
//! Clones share the disk: a test keeps one handle to cut the power or read the image while
//! the engine writes through another.
//!
//! Simplification: trimming removes whole synced records at the front and is durable at
//! once, as deleting a segment file would be.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::{decode_frame, encode_frame, Frame, FRAME_HEADER_LEN};
use crate::wal::{RecordGroup, Recovered, Sequence, TornTail, Visit, Wal, WalError};

/// SplitMix64: tiny, deterministic, good enough to choose faults.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0);
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }
}

/// Which faults a crash injects.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CrashFaults {
    /// Keep a random prefix of the unsynced bytes.
    pub tear: bool,
    /// Flip one random bit of the image.
    pub flip: bool,
}

/// The disk as a crash left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCrash {
    pub seed: u64,
    pub image: Vec<u8>,
    /// Bytes that were synced before the crash.
    pub synced_len: usize,
    /// Unsynced bytes the torn write kept, if the crash tore it.
    pub torn_kept: Option<usize>,
    /// Byte offset and xor mask of the flipped bit, if any.
    pub flipped: Option<(usize, u8)>,
}

/// Where the power fails: at the `at_op`-th call to `append` or `sync` (from 1).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub at_op: u64,
    /// If that call is a `sync`, complete it first (records durable, caller never told).
    pub after_sync: bool,
    pub seed: u64,
    pub faults: CrashFaults,
}

#[derive(Debug, Default)]
struct Disk {
    data: Vec<u8>,
    synced_len: usize,
    next_seq: Option<u64>,
    ops: u64,
    syncs: u64,
    cut: Option<Cut>,
    crash: Option<SimCrash>,
}

#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    disk: Arc<Mutex<Disk>>,
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// A disk holding `image`, all of it synced: what a machine finds after a restart.
    pub fn from_image(image: Vec<u8>) -> SimDisk {
        let synced_len = image.len();
        SimDisk {
            disk: Arc::new(Mutex::new(Disk {
                data: image,
                synced_len,
                ..Disk::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        // A test thread that panicked while holding the disk leaves it usable for the report.
        self.disk
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cuts the power at a later call (see [`Cut`]).
    pub fn cut(&self, cut: Cut) {
        let mut disk = self.lock();
        assert!(disk.crash.is_none(), "power already cut");
        assert!(
            cut.at_op > disk.ops,
            "cut at op {} is in the past",
            cut.at_op
        );
        disk.cut = Some(cut);
    }

    /// The crash a [`Cut`] caused, once it happened.
    pub fn crashed(&self) -> Option<SimCrash> {
        self.lock().crash.clone()
    }

    /// Crashes now with faults chosen by the seed (a torn write half the time, a flipped bit
    /// a quarter of the time). The disk itself is left as it was.
    pub fn crash(&self, seed: u64) -> SimCrash {
        let mut rng = SimRng::new(seed);
        let faults = CrashFaults {
            tear: rng.chance(1, 2),
            flip: rng.chance(1, 4),
        };
        self.crash_with(rng.next_u64(), faults)
    }

    /// Crashes now with the given faults, placed by the seed.
    pub fn crash_with(&self, seed: u64, faults: CrashFaults) -> SimCrash {
        crash_image(&self.lock(), seed, faults)
    }

    pub fn synced_len(&self) -> usize {
        self.lock().synced_len
    }

    pub fn len(&self) -> usize {
        self.lock().data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().data.is_empty()
    }

    /// Completed syncs.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Calls to `append` and `sync` so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Complete frames of an image: `(offset, len, seq)`. Stops at the first bad frame.
    pub fn frames(image: &[u8]) -> Vec<(usize, usize, u64)> {
        let mut frames = Vec::new();
        let mut offset = 0;
        while let Frame::Complete { seq, len, .. } = decode_frame(&image[offset..]) {
            frames.push((offset, len, seq));
            offset += len;
        }
        frames
    }
}

fn crash_image(disk: &Disk, seed: u64, faults: CrashFaults) -> SimCrash {
    let mut rng = SimRng::new(seed);
    let mut image = disk.data[..disk.synced_len].to_vec();
    let unsynced = &disk.data[disk.synced_len..];
    let mut torn_kept = None;
    if faults.tear && !unsynced.is_empty() {
        let kept = rng.below(unsynced.len() as u64 + 1) as usize;
        image.extend_from_slice(&unsynced[..kept]);
        torn_kept = Some(kept);
    }
    let mut flipped = None;
    if faults.flip && !image.is_empty() {
        let at = rng.below(image.len() as u64) as usize;
        let mask = 1u8 << rng.below(8);
        image[at] ^= mask;
        flipped = Some((at, mask));
    }
    SimCrash {
        seed,
        image,
        synced_len: disk.synced_len,
        torn_kept,
        flipped,
    }
}

impl Disk {
    /// Counts a call and cuts the power if it is the chosen one. `Ok(true)`: go on.
    fn step(&mut self, is_sync: bool) -> io::Result<()> {
        if self.crash.is_some() {
            return Err(io::Error::other("simulated power cut: the disk is gone"));
        }
        self.ops += 1;
        let Some(cut) = self.cut else { return Ok(()) };
        if cut.at_op != self.ops {
            return Ok(());
        }
        if is_sync && cut.after_sync {
            self.synced_len = self.data.len();
            self.syncs += 1;
        }
        self.crash = Some(crash_image(self, cut.seed, cut.faults));
        Err(io::Error::other("simulated power cut"))
    }
}

impl Wal for SimDisk {
    fn recover(&mut self, from_seq: u64, visit: &mut Visit<'_>) -> Result<Recovered, WalError> {
        let mut disk = self.lock();
        assert!(
            disk.crash.is_none(),
            "recover a crashed disk from its image"
        );
        let mut sequence = Sequence::new(from_seq);
        let mut recovered = Recovered::default();
        let mut offset = 0usize;
        // The last record before `from_seq`, to name a damaged record that follows it.
        let mut last_seen: Option<u64> = None;
        while offset < disk.data.len() {
            let rest = &disk.data[offset..];
            let torn_reason = match decode_frame(rest) {
                Frame::Complete { seq, payload, len } => {
                    if seq >= from_seq {
                        sequence.accept(seq)?;
                        recovered.first_seq.get_or_insert(seq);
                        visit(seq, payload).map_err(|reason| WalError::Rejected { seq, reason })?;
                        recovered.records += 1;
                    } else if let Some(last) = last_seen {
                        if seq != last + 1 {
                            return Err(WalError::Missing { seq: last + 1 });
                        }
                    }
                    last_seen = Some(seq);
                    offset += len;
                    continue;
                }
                // Whole, and unreadable by this build: neither damage nor a torn write.
                Frame::FormatBefore { seq } => return Err(WalError::FormatBefore { seq }),
                Frame::Incomplete => "record runs past the end of the log".to_string(),
                Frame::BadPayload { seq, len } => {
                    if offset + len < disk.data.len() {
                        let reason = "payload checksum mismatch".to_string();
                        return Err(WalError::Corrupt { seq, reason });
                    }
                    "payload checksum mismatch".to_string()
                }
                Frame::BadHeader => {
                    // The length cannot be trusted, so look for any later valid header: if
                    // one exists, this was not the last record.
                    if let Some(next_seq) = later_header(rest) {
                        let seq = last_seen.map_or(next_seq.saturating_sub(1), |last| last + 1);
                        let reason = "header checksum mismatch".to_string();
                        return Err(WalError::Corrupt { seq, reason });
                    }
                    "header checksum mismatch".to_string()
                }
            };
            let seq = last_seen.map(|last| last + 1);
            tracing::warn!(?seq, offset, reason = %torn_reason, "WAL: dropping torn last record");
            recovered.torn_tail = Some(TornTail {
                seq,
                reason: torn_reason,
            });
            disk.data.truncate(offset);
            disk.synced_len = disk.synced_len.min(offset);
            break;
        }
        if recovered.first_seq.is_none() && last_seen.is_some_and(|last| last + 1 < from_seq) {
            return Err(WalError::Missing {
                seq: last_seen.expect("checked") + 1,
            });
        }
        recovered.last_seq = sequence.last();
        disk.next_seq = sequence.last().or(last_seen).map(|last| last + 1);
        Ok(recovered)
    }

    fn append(&mut self, group: &RecordGroup) -> io::Result<()> {
        let mut disk = self.lock();
        disk.step(false)?;
        if let Some(next_seq) = disk.next_seq {
            assert_eq!(
                group.first_seq(),
                next_seq,
                "records must follow each other"
            );
        }
        let mut bytes = Vec::with_capacity(group.payload_bytes() + group.len() * FRAME_HEADER_LEN);
        for (seq, payload) in group.iter() {
            encode_frame(seq, payload, &mut bytes);
        }
        disk.data.extend_from_slice(&bytes);
        if !group.is_empty() {
            disk.next_seq = Some(group.last_seq() + 1);
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut disk = self.lock();
        disk.step(true)?;
        disk.synced_len = disk.data.len();
        disk.syncs += 1;
        Ok(())
    }

    fn trim_before(&mut self, seq: u64, records_max: usize) -> io::Result<usize> {
        let mut disk = self.lock();
        if disk.crash.is_some() {
            return Err(io::Error::other("simulated power cut: the disk is gone"));
        }
        let mut offset = 0;
        let mut removed = 0;
        while removed < records_max {
            match decode_frame(&disk.data[offset..]) {
                Frame::Complete {
                    seq: record_seq,
                    len,
                    ..
                } if record_seq < seq => {
                    offset += len;
                    removed += 1;
                }
                _ => break,
            }
        }
        assert!(
            offset <= disk.synced_len,
            "trimming records that are not durable"
        );
        disk.data.drain(..offset);
        disk.synced_len -= offset;
        Ok(removed)
    }
}

/// The sequence number of the first valid frame header after the start of `bytes`.
fn later_header(bytes: &[u8]) -> Option<u64> {
    (1..bytes.len()).find_map(|offset| match decode_frame(&bytes[offset..]) {
        Frame::Complete { seq, .. }
        | Frame::BadPayload { seq, .. }
        | Frame::FormatBefore { seq } => Some(seq),
        Frame::Incomplete if bytes.len() - offset >= FRAME_HEADER_LEN => {
            // A valid header whose record runs past the end: a torn record after this one.
            let seq =
                u64::from_le_bytes(bytes[offset + 4..offset + 12].try_into().expect("8 bytes"));
            Some(seq)
        }
        _ => None,
    })
}
