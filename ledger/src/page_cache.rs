//! What the host's own files keep in the kernel's page cache (Linux only, as are its callers).
//!
//! A snapshot is written, synced, and read again only by a restart. Its pages, kept cached,
//! made the kernel take fresh pages for everything else the host writes meanwhile (the WAL,
//! the logs' new chunks): some 230 MB per snapshot at 2 million records. On a VM whose memory
//! the hypervisor backs on first touch and takes back once free (virtio-balloon free page
//! reporting, as on the benchmark machine), a fresh page costs 10-25 us instead of well under
//! one, and those costs landed in the open loop's worst seconds; pages given back as soon as
//! they are written out are taken again before they are reported. So the snapshot's writer
//! drops what it has written out ([`drop_cached`]); docs/BENCHMARKS.md ("Latest figures") has
//! the measurements, and why the WAL's own pages are left alone (sled reads its log back).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Asks the kernel to drop a range of `file` from the page cache. Only clean pages go (a
/// dirty page stays until it is written), so nothing written is lost; a later read comes from
/// the disk. Advice only: a failure changes nothing but the cache, and is ignored.
pub fn drop_cached(file: &File, offset: u64, len: u64) {
    // SAFETY: a plain system call on a file descriptor this function borrows.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        );
    }
}

/// How many of the pages of `file` in `offset..offset + len` are in the page cache (`mincore`
/// over a mapping of the range, which itself reads nothing in). For tests and diagnostics.
pub fn resident_pages(file: &File, offset: u64, len: u64) -> io::Result<usize> {
    // SAFETY: `sysconf` has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let start = offset / page * page;
    let end = (offset + len).div_ceil(page) * page;
    if end == start {
        return Ok(0);
    }
    let mapped = (end - start) as usize;
    // SAFETY: a fresh read-only shared mapping of the file's range, unmapped below before
    // returning; nothing reads through it, so a range past the file's end is never touched.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            mapped,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            start as libc::off_t,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mut residency = vec![0u8; mapped / page as usize];
    // SAFETY: `address` maps `mapped` bytes, and `residency` has one byte per page of them.
    let result = unsafe { libc::mincore(address, mapped, residency.as_mut_ptr()) };
    let error = io::Error::last_os_error();
    // SAFETY: the mapping made above, not used after this.
    unsafe { libc::munmap(address, mapped) };
    if result != 0 {
        return Err(error);
    }
    Ok(residency.iter().filter(|flags| *flags & 1 == 1).count())
}

/// A temporary directory whose files' pages can leave the cache: in the crate's directory
/// rather than the system's temporary one, which may be a tmpfs, whose pages never leave it.
#[cfg(test)]
pub(crate) fn tempdir_on_disk() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `data` in `dir`, written and synced (its pages clean, still cached).
    fn written(dir: &std::path::Path, name: &str, data: &[u8]) -> File {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .unwrap();
        file.write_all(data).unwrap();
        file.sync_all().unwrap();
        file
    }

    #[test]
    fn written_out_pages_leave_the_cache_and_the_data_stays() {
        let dir = tempdir_on_disk();
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let len = data.len() as u64;
        let dropped = written(dir.path(), "dropped", &data);
        let kept = written(dir.path(), "kept", &data);
        assert_eq!(resident_pages(&dropped, 0, len).unwrap(), 256);

        drop_cached(&dropped, 0, len);
        assert_eq!(resident_pages(&dropped, 0, len).unwrap(), 0);
        assert_eq!(
            resident_pages(&kept, 0, len).unwrap(),
            256,
            "only that file's pages go"
        );
        assert_eq!(std::fs::read(dir.path().join("dropped")).unwrap(), data);
    }
}
