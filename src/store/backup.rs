//! `huytk backup` and `huytk restore` for the embedded SQLite database.
//!
//! A backup is a consistent copy taken while the desk runs (SQLite's
//! `VACUUM INTO`). It holds the mail sealed: it is useless without the
//! master key, which it does not contain — keep the key's own backup
//! apart. PostgreSQL is backed up with `pg_dump` (README, Operations).

use std::path::{Path, PathBuf};

use super::{Dialect, Store, StoreError};

impl Store {
    /// Writes a consistent copy of the database to `to` (which must not
    /// exist), readable by this user only.
    pub async fn backup_to(&self, to: &Path) -> Result<(), StoreError> {
        if self.dialect() != Dialect::Sqlite {
            return Err(StoreError::Backup(
                "PostgreSQL is backed up with pg_dump (README, Operations)".into(),
            ));
        }
        if to.exists() {
            return Err(StoreError::Backup(format!(
                "{} exists already",
                to.display()
            )));
        }
        let path = to
            .to_str()
            .ok_or_else(|| StoreError::Backup(format!("{}: not a UTF-8 path", to.display())))?;
        sqlx::query(&format!("VACUUM INTO '{}'", path.replace('\'', "''")))
            .execute(self.pool())
            .await?;
        crate::private::seal_file(to).map_err(|e| StoreError::Io(path.to_owned(), e))?;
        Ok(())
    }
}

/// Puts the backup `from` in place of the SQLite database at `url` (the
/// desk must be stopped): the backup is checked to open first, and the
/// database it replaces is kept beside it as `….replaced`. Returns where
/// the old one went, if there was one.
pub async fn restore_sqlite(url: &str, from: &Path) -> Result<Option<PathBuf>, StoreError> {
    let db = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| PathBuf::from(p.split('?').next().unwrap_or(p)))
        .ok_or_else(|| {
            StoreError::Backup(
                "restore is for a SQLite desk; PostgreSQL restores with pg_restore/psql".into(),
            )
        })?;
    // A copy of the backup, brought up to this version's schema: it must
    // open as a desk database before it replaces anything.
    let staged = db.with_extension("restoring");
    std::fs::copy(from, &staged).map_err(|e| StoreError::Io(staged.display().to_string(), e))?;
    crate::private::seal_file(&staged)
        .map_err(|e| StoreError::Io(staged.display().to_string(), e))?;
    match Store::connect(&format!("sqlite://{}", staged.display())).await {
        Ok(s) => {
            s.count("requests", "").await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(s.pool())
                .await?;
            s.pool().close().await;
        }
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(StoreError::Backup(format!("{}: {e}", from.display())));
        }
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", staged.display()));
    }
    let mut kept = None;
    if db.exists() {
        let old = db.with_extension("replaced");
        std::fs::rename(&db, &old).map_err(|e| StoreError::Io(db.display().to_string(), e))?;
        kept = Some(old);
    }
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        let _ = std::fs::remove_file(side);
    }
    std::fs::rename(&staged, &db).map_err(|e| StoreError::Io(db.display().to_string(), e))?;
    Ok(kept)
}
