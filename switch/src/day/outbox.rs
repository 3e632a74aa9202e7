//! Publishing files for the bank: each written to a temporary name, fsynced, renamed into
//! place, and the directory fsynced, so the bank never sees half a file; a `NAME.sha256`
//! beside each, in `sha256sum` format.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Writes `name` and `name.sha256` atomically into `dir`; returns the two file names.
pub fn publish(dir: &Path, name: &str, contents: &[u8]) -> anyhow::Result<[String; 2]> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let checksum_name = format!("{name}.sha256");
    let checksum = format!("{}  {name}\n", hex::encode(Sha256::digest(contents)));
    write_atomically(dir, name, contents)?;
    write_atomically(dir, &checksum_name, checksum.as_bytes())?;
    Ok([name.to_owned(), checksum_name])
}

fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> anyhow::Result<()> {
    let temporary = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    drop(file);
    fs::rename(&temporary, &target)
        .with_context(|| format!("cannot rename into {}", target.display()))?;
    // The rename itself is durable only once the directory is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_the_file_and_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let names = publish(dir.path(), "CLR_1_20261123_1.csv", b"T,0\n").unwrap();
        assert_eq!(names[1], "CLR_1_20261123_1.csv.sha256");
        let checksum = fs::read_to_string(dir.path().join(&names[1])).unwrap();
        assert_eq!(
            checksum,
            format!(
                "{}  CLR_1_20261123_1.csv\n",
                hex::encode(Sha256::digest(b"T,0\n"))
            )
        );
        assert_eq!(fs::read(dir.path().join(&names[0])).unwrap(), b"T,0\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left behind");
    }
}
