//! Deleting large files a slice at a time, off the commit path.
//!
//! ext4 frees a deleted file's blocks in the journal commit after the unlink and, mounted with
//! `discard` (as this VM's root is), tells the device about every freed range then too. The
//! WAL's syncs wait for that commit: deleting 300 MB of files at once stalled a concurrent
//! 4 KB write + `fdatasync` loop for 23-28 ms on this VM, against 1.3 ms at most without the
//! deletion; the same files shrunk 8 MB at a time, 20 ms apart, stalled it 4.2 ms at most
//! (docs/BENCHMARKS.md). The WAL's trimmed generations (about 70 MB each, three at a time
//! after a snapshot) and a snapshot's superseded files go this way, on background threads.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;
use std::time::Duration;

/// Freed between two pauses.
pub const STEP_BYTES: u64 = 8 << 20;
/// Long enough for a few group commits to pass between two steps.
pub const PAUSE: Duration = Duration::from_millis(20);

/// Deletes files and directory trees, pausing after every `step_bytes` freed (a large file is
/// shrunk by `step_bytes` at a time first). Not a durability step: a crash midway leaves a
/// shorter file, so callers delete only what nothing reads any more, or rename it first.
#[derive(Debug)]
pub struct GradualDelete {
    step_bytes: u64,
    pause: Duration,
    /// Freed since the last pause.
    freed: u64,
    /// Truncations and unlinks done, for tests.
    steps: u64,
}

impl Default for GradualDelete {
    fn default() -> Self {
        GradualDelete::new(STEP_BYTES, PAUSE)
    }
}

impl GradualDelete {
    pub fn new(step_bytes: u64, pause: Duration) -> GradualDelete {
        assert!(step_bytes > 0, "a step frees something");
        GradualDelete {
            step_bytes,
            pause,
            freed: 0,
            steps: 0,
        }
    }

    /// Removes the file at `path`.
    pub fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        let mut len = file.metadata()?.len();
        while len > self.step_bytes {
            len -= self.step_bytes;
            file.set_len(len)?;
            self.freed(self.step_bytes);
        }
        drop(file);
        fs::remove_file(path)?;
        self.freed(len);
        Ok(())
    }

    /// Removes the directory at `path` and everything in it.
    pub fn remove_dir_all(&mut self, path: &Path) -> io::Result<()> {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                self.remove_dir_all(&entry.path())?;
            } else {
                self.remove_file(&entry.path())?;
            }
        }
        fs::remove_dir(path)
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn freed(&mut self, bytes: u64) {
        self.steps += 1;
        self.freed += bytes;
        if self.freed >= self.step_bytes {
            self.freed = 0;
            std::thread::sleep(self.pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_removed_and_a_large_file_shrinks_a_step_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("gen-1");
        fs::create_dir_all(tree.join("blobs")).unwrap();
        fs::write(tree.join("db"), vec![1u8; 10 << 10]).unwrap();
        fs::write(tree.join("conf"), b"segment_size: 524288").unwrap();
        fs::write(tree.join("blobs").join("1"), b"x").unwrap();

        let mut delete = GradualDelete::new(1 << 10, Duration::ZERO);
        delete.remove_dir_all(&tree).unwrap();
        assert!(!tree.exists());
        // The 10 KB file: 9 truncations of 1 KB and the unlink of the last; one unlink each
        // for the two small files.
        assert_eq!(delete.steps(), 10 + 2);
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = GradualDelete::default()
            .remove_file(&dir.path().join("nothing"))
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
