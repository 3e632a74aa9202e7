//! Answers already given to financial requests, so that a retransmission (same F41, F11 and
//! F7) gets the same answer and posts nothing twice, even across a restart.

use serde::{Deserialize, Serialize};

use ledger::cow_vec::CowVec;
use ledger::transfer::BusinessDay;

use super::answer_index::AnswerIndex;
use super::ids::TerminalId;

/// F41 + F11 + F7: what identifies a request for retransmission (PROTOCOL.md 3.7).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestKey {
    pub terminal: TerminalId,
    pub stan: u32,
    pub transmitted: [u8; 10],
}

/// The parts of a response that are not echoed from the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// F39, two ASCII digits.
    pub code: [u8; 2],
    pub settlement_day: BusinessDay,
    pub rrn: Option<u64>,
    pub approval: Option<[u8; 6]>,
    /// F54: the card's balance after the request.
    pub balance_minor: Option<i64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub key: RequestKey,
    /// Digest of the request's bytes: a retransmission must match it, or it is `94`.
    pub digest: u128,
    pub reply: Reply,
    pub day: BusinessDay,
}

/// The answers kept, in the order they were given: a log in copy-on-write chunks and an index
/// by key. A snapshot shares the log's chunks and leaves the index out (restore rebuilds it),
/// so after a snapshot an answer copies at most the log's last chunk. A map shared with the
/// snapshot (the previous form) had every one of its shards copied by the first writes after
/// it: for 500,000 answers, about 90 ms of the engine thread's time at once.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// Only pushed to, or rebuilt whole (`keep_from_day`): a full chunk never changes, so a
    /// snapshot writes it to a chunk file once (`ledger::snapshot::chunks`).
    log: CowVec<Answer>,
    /// Position in `log` of each key's latest answer.
    by_key: AnswerIndex,
}

impl Answers {
    /// Rebuilds the index of a log (a snapshot's): a later answer to a key replaces an earlier one.
    pub fn from_log(log: CowVec<Answer>) -> Answers {
        let mut by_key = AnswerIndex::with_capacity(log.len());
        for (at, answer) in log.iter().enumerate() {
            by_key.set(&answer.key, position(at), key_in(&log));
        }
        Answers { log, by_key }
    }

    /// The log as of now, sharing its chunks: what a snapshot keeps.
    pub fn log(&self) -> CowVec<Answer> {
        self.log.clone()
    }

    /// Asks the CPU to fetch the index slot `get` and `insert` of `key` will start from.
    pub fn prefetch(&self, key: &RequestKey) {
        self.by_key.prefetch(key);
    }

    pub fn get(&self, key: &RequestKey) -> Option<&Answer> {
        let at = self.by_key.get(key, key_in(&self.log))?;
        self.log.get(at as usize)
    }

    /// Keys answered, each counted once.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.len() == 0
    }

    pub fn insert(&mut self, answer: Answer) {
        let at = position(self.log.len());
        self.log.push(answer);
        // Reads the keys of earlier answers whose hash matches, to tell them apart.
        self.by_key.set(&answer.key, at, key_in(&self.log));
    }

    /// Keeps the latest answer of each key given on `keep_from` or later; drops the rest and
    /// the answers later ones replaced. Once a day: it rewrites the whole log.
    pub fn keep_from_day(&mut self, keep_from: BusinessDay) {
        let latest = self.log.iter().enumerate().filter(|(at, answer)| {
            self.by_key.get(&answer.key, key_in(&self.log)) == Some(position(*at))
        });
        let kept: CowVec<Answer> = latest
            .map(|(_, answer)| *answer)
            .filter(|answer| answer.day >= keep_from)
            .collect();
        *self = Answers::from_log(kept);
    }
}

/// Reads the key of the answer at a position of `log`, for the index to confirm a match.
fn key_in(log: &CowVec<Answer>) -> impl Fn(u32) -> RequestKey + '_ {
    |at| {
        log.get(at as usize)
            .expect("the index names answers in the log")
            .key
    }
}

fn position(at: usize) -> u32 {
    // Below u32::MAX: the index stores the position plus one.
    u32::try_from(at)
        .ok()
        .filter(|at| *at < u32::MAX)
        .expect("fewer than 2^32 - 1 answers kept (they are dropped each day)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(stan: u32, day: u32, code: &[u8; 2]) -> Answer {
        Answer {
            key: RequestKey {
                terminal: TerminalId::parse("T0000001").expect("terminal id"),
                stan,
                transmitted: *b"1123083015",
            },
            digest: stan as u128,
            reply: Reply {
                code: *code,
                settlement_day: BusinessDay(day),
                rrn: None,
                approval: None,
                balance_minor: None,
            },
            day: BusinessDay(day),
        }
    }

    #[test]
    fn a_later_answer_to_a_key_wins_live_after_restore_and_after_the_day() {
        let mut answers = Answers::default();
        answers.insert(answer(1, 1, b"51"));
        answers.insert(answer(2, 1, b"00"));
        answers.insert(answer(1, 2, b"00"));
        answers.insert(answer(3, 2, b"05"));
        let kept = answers.log();
        answers.insert(answer(4, 2, b"00"));
        assert_eq!(answers.len(), 4);
        assert_eq!(
            answers.get(&answer(1, 0, b"00").key).map(|a| a.reply.code),
            Some(*b"00")
        );

        let restored = Answers::from_log(kept);
        assert_eq!(
            restored.len(),
            3,
            "the snapshot does not see the answer after it"
        );
        assert_eq!(
            restored.get(&answer(1, 0, b"00").key).map(|a| a.day),
            Some(BusinessDay(2))
        );
        assert!(restored.get(&answer(4, 0, b"00").key).is_none());

        answers.keep_from_day(BusinessDay(2));
        assert_eq!(answers.len(), 3);
        assert_eq!(
            answers.log().len(),
            3,
            "replaced and old answers leave the log"
        );
        assert!(answers.get(&answer(2, 0, b"00").key).is_none());
        assert_eq!(
            answers.get(&answer(1, 0, b"00").key).map(|a| a.day),
            Some(BusinessDay(2))
        );
        assert_eq!(
            answers.get(&answer(3, 0, b"00").key).map(|a| a.reply.code),
            Some(*b"05")
        );
    }
}
