//! A progress line on stderr for long files: redrawn in place on a terminal, a line every
//! tenth of the way otherwise (so a log of a scripted run stays short).

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    what: &'static str,
    total: usize,
    done: usize,
    rejected: usize,
    started: Instant,
    terminal: bool,
    last_tenth: usize,
    quiet: bool,
}

const WIDTH: usize = 30;

impl Progress {
    pub fn new(what: &'static str, total: usize, quiet: bool) -> Progress {
        Progress {
            what,
            total,
            done: 0,
            rejected: 0,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            last_tenth: 0,
            quiet,
        }
    }

    /// Counts `done` more rows handled, `rejected` of them refused.
    pub fn advance(&mut self, done: usize, rejected: usize) {
        self.done += done;
        self.rejected += rejected;
        if self.quiet || self.total == 0 {
            return;
        }
        let tenth = self.done * 10 / self.total;
        if !self.terminal && tenth == self.last_tenth && self.done < self.total {
            return;
        }
        self.last_tenth = tenth;
        let filled = self.done * WIDTH / self.total;
        let line = format!(
            "[{}{}] {}/{} {}, {} rejected, {:.1} s",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.done,
            self.total,
            self.what,
            self.rejected,
            self.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{line}");
            if self.done >= self.total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
