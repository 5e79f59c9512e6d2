//! The desk's data is citizens' ID photos and mail: its folders are 0700
//! and its files 0600, readable by the desk's own user alone. `main` sets
//! the umask so everything created later is born that way; these make
//! what already exists so at start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Makes every file and folder created from now on private (umask 077).
pub fn set_umask() {
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Restricts an existing folder to its owner (0700); a missing one is left.
pub fn seal_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || !dir.is_dir() {
        return Ok(());
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Restricts an existing file to its owner (0600); a missing one is left.
pub fn seal_file(file: &Path) -> std::io::Result<()> {
    if !file.is_file() {
        return Ok(());
    }
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
}

/// Writes `bytes` to `file` (replacing it) readable by this user only.
pub fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?;
    seal_file(file)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_files_become_private() {
        let dir = std::env::temp_dir().join(format!("huytk-private-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.join("desk.db");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        seal_dir(&dir).unwrap();
        seal_file(&f).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&f), 0o600);
        seal_file(&dir.join("missing")).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
