//! Reading the files an operator names (the web configuration, certificates, keys, CA bundles) with bounds: a
//! regular file only, so a FIFO cannot hang the start and `/dev/zero` cannot exhaust memory, and at most
//! [`MAX_FILE_BYTES`].

use std::io::Read;
use std::path::Path;

/// The largest file read: far above any configuration, certificate chain or CA bundle (Mozilla's whole bundle is
/// about 220 KB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads `path` whole, refusing anything that is not a regular file (after symlinks) or is over the bound.
/// The error is one sentence without the file's bytes.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {} KiB", MAX_FILE_BYTES / 1024));
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may have grown since the stat: read one byte past the bound to tell.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {} KiB", MAX_FILE_BYTES / 1024));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let dir = std::env::temp_dir().join(format!("marketfeed-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(read_bounded(&small).unwrap(), b"hello");
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        assert_eq!(read_bounded(&big).unwrap_err(), "larger than 1024 KiB");
        assert_eq!(
            read_bounded(Path::new("/dev/zero")).unwrap_err(),
            "not a regular file"
        );
        assert_eq!(read_bounded(&dir).unwrap_err(), "not a regular file");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert_eq!(read_bounded(&fifo).unwrap_err(), "not a regular file");
        }
        assert!(
            read_bounded(&dir.join("missing"))
                .unwrap_err()
                .contains("No such file")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
