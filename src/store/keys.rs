//! The master key: where it is kept, how the store is unlocked with it,
//! and how it is rotated.
//!
//! The key lives in the environment (`HUYTK_MASTER_KEY`) or in a file
//! readable by the desk's user only, never in the main config file. The
//! database records the ids of the keys it used, so a missing or wrong key
//! is refused at start, before any mail is read: nothing is written
//! unsealed and nothing is lost (the mail stays in the inbox).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::Row;

use super::sealed::{Keyring, MasterKey};
use super::{Store, StoreError};
use crate::domain::time::now_ms;

/// Where this process finds the master key.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The key itself, from `HUYTK_MASTER_KEY`.
    Environment(String),
    /// A file (created on first start when the database has no key yet).
    File(PathBuf),
}

impl KeySource {
    /// The environment's key if set, else the file.
    pub fn from_env_or(file: PathBuf) -> KeySource {
        match std::env::var("HUYTK_MASTER_KEY") {
            Ok(v) if !v.trim().is_empty() => KeySource::Environment(v),
            _ => KeySource::File(file),
        }
    }

    fn describe(&self) -> String {
        match self {
            KeySource::Environment(_) => "HUYTK_MASTER_KEY".into(),
            KeySource::File(p) => p.display().to_string(),
        }
    }
}

/// What unlocking did that an operator must hear of.
#[derive(Debug, Default)]
pub struct Unlocked {
    /// A new master key was created here (back it up).
    pub created: Option<PathBuf>,
    /// The id of the current master key.
    pub current: String,
    /// Messages stored before sealing existed that were sealed now.
    pub sealed_existing: u64,
}

fn key_error(message: String) -> StoreError {
    StoreError::Keys(message)
}

/// Reads a key file, refusing one that others may read.
pub fn read_key_file(path: &Path) -> Result<MasterKey, StoreError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| key_error(format!("master key file {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_error(format!(
            "master key file {} has mode {mode:o}: others may read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| key_error(format!("master key file {}: {e}", path.display())))?,
    );
    MasterKey::decode(&text)
        .map_err(|e| key_error(format!("master key file {}: {e}", path.display())))
}

/// Writes a new key file (mode 0600); refuses to replace one. The key is
/// written to a temporary file first and then linked into place, so a
/// process that races this one finds either no file or the whole key.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), StoreError> {
    let io = |e: std::io::Error| key_error(format!("writing master key {}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".master-key-{}-{}.tmp",
        std::process::id(),
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(key.encode().as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written.map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// The file a rotation writes its new key to before the database moves.
fn pending_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// Where a rotated-out key is kept (backups made before need it).
fn retired_path(file: &Path, id: &str) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(format!(".{id}.retired"));
    PathBuf::from(p)
}

impl Store {
    /// The master key ids the database uses: the current one, and every
    /// one some data key is still wrapped with.
    async fn key_ids(&self) -> Result<(Option<String>, Vec<String>), StoreError> {
        let current = sqlx::query("SELECT id FROM master_keys WHERE state = 'current'")
            .fetch_optional(self.pool())
            .await?
            .map(|r| r.try_get::<String, _>("id"))
            .transpose()?;
        let used = sqlx::query("SELECT DISTINCT master_key_id FROM data_keys")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("master_key_id"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((current, used))
    }

    /// Unlocks the store with the master key from `source`: refuses a
    /// missing or wrong key, creates one for a database that has none yet
    /// (in the file, when the source is a file), finishes a rotation that
    /// stopped half-way, and seals messages stored before sealing existed.
    pub async fn unlock(self, source: &KeySource) -> Result<(Store, Unlocked), StoreError> {
        let mut held: Vec<MasterKey> = Vec::new();
        match source {
            KeySource::Environment(text) => held.push(
                MasterKey::decode(text).map_err(|e| key_error(format!("HUYTK_MASTER_KEY: {e}")))?,
            ),
            KeySource::File(path) => {
                if path.exists() {
                    held.push(read_key_file(path)?);
                }
                let pending = pending_path(path);
                if pending.exists() {
                    held.push(read_key_file(&pending)?);
                }
            }
        }
        let mut unlocked = Unlocked::default();
        let (current, used) = self.key_ids().await?;
        let current = match current {
            Some(id) => id,
            None => {
                // A database with no key yet: this one becomes its key.
                if held.is_empty() {
                    let KeySource::File(path) = source else {
                        unreachable!("the environment always holds a key")
                    };
                    let key = MasterKey::generate();
                    match write_key_file(path, &key) {
                        Ok(()) => {
                            unlocked.created = Some(path.clone());
                            held.push(key);
                        }
                        // Another process made it meanwhile: use that.
                        Err(_) if path.exists() => held.push(read_key_file(path)?),
                        Err(e) => return Err(e),
                    }
                }
                sqlx::query(
                    "INSERT INTO master_keys (id, state, created_at) VALUES ($1, 'current', $2)
                     ON CONFLICT DO NOTHING",
                )
                .bind(held[0].id())
                .bind(now_ms())
                .execute(self.pool())
                .await?;
                self.key_ids()
                    .await?
                    .0
                    .ok_or_else(|| key_error("no current master key recorded".into()))?
            }
        };
        let Some(at) = held.iter().position(|k| k.id() == current) else {
            return Err(key_error(if held.is_empty() {
                format!(
                    "no master key: this database's data is sealed under key {current}; \
                     set HUYTK_MASTER_KEY or restore the key file {}",
                    source.describe()
                )
            } else {
                format!(
                    "wrong master key: {} holds key {}, this database is sealed under key {current}",
                    source.describe(),
                    held.iter().map(|k| k.id()).collect::<Vec<_>>().join(", ")
                )
            }));
        };
        let key = held.remove(at);
        let ring = Keyring::new(key, held);
        if let Some(missing) = used.iter().find(|id| ring.get(id).is_none()) {
            return Err(key_error(format!(
                "master key {missing} is missing: some data keys are still wrapped with it \
                 (a rotation that did not finish?); give its file as {}.new",
                source.describe()
            )));
        }
        if let KeySource::File(path) = source {
            finish_rotation(path, &current)?;
        }
        unlocked.current = current;
        let store = Store {
            keys: Some(Arc::new(ring)),
            ..self
        };
        unlocked.sealed_existing = store.seal_existing().await?;
        Ok((store, unlocked))
    }

    /// Re-wraps every data key under `new` (the blobs are not rewritten)
    /// in one transaction, and makes it the current key. Returns how many
    /// data keys moved.
    pub async fn rotate_master_key(&self, new: &MasterKey) -> Result<u64, StoreError> {
        let ring = self.keyring()?;
        let mut tx = self.begin().await?;
        let rows = sqlx::query("SELECT owner, master_key_id, wrapped FROM data_keys")
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE master_keys SET state = 'retired', retired_at = $1 WHERE state = 'current'",
        )
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO master_keys (id, state, created_at) VALUES ($1, 'current', $2)")
            .bind(new.id())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let mut n = 0;
        for r in rows {
            let owner: String = r.try_get("owner")?;
            let id: String = r.try_get("master_key_id")?;
            let wrapped: Vec<u8> = r.try_get("wrapped")?;
            let old = ring
                .get(&id)
                .ok_or_else(|| key_error(format!("master key {id} is not held")))?;
            let key = old
                .unwrap(&wrapped, &owner)
                .map_err(|e| key_error(format!("data key of {owner}: {e}")))?;
            sqlx::query("UPDATE data_keys SET master_key_id = $1, wrapped = $2 WHERE owner = $3")
                .bind(new.id())
                .bind(new.wrap(&key, &owner))
                .bind(&owner)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// How many data keys each master key wraps, by id (for `keys status`).
    pub async fn key_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.state, COUNT(d.owner) AS n FROM master_keys m
             LEFT JOIN data_keys d ON d.master_key_id = m.id
             GROUP BY m.id, m.state ORDER BY m.created_at",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}

/// A rotation writes `file.new`, moves the database, then renames: after a
/// stop in between, the next start (whose database already names the new
/// key) finishes the renames.
fn finish_rotation(file: &Path, current: &str) -> Result<(), StoreError> {
    let pending = pending_path(file);
    if !pending.exists() || read_key_file(&pending)?.id() != current {
        return Ok(());
    }
    let io = |e: std::io::Error| key_error(format!("finishing a key rotation: {e}"));
    if file.exists() {
        let old = read_key_file(file)?;
        std::fs::rename(file, retired_path(file, old.id())).map_err(io)?;
    }
    std::fs::rename(&pending, file).map_err(io)
}

/// Rotates the master key kept in `file`: the new key goes to `file.new`,
/// the data keys move under it, then the old key is kept as
/// `file.<id>.retired` (backups made before need it) and the new one takes
/// its place. Returns the new key's id, the retired file and the count.
pub async fn rotate_file(store: &Store, file: &Path) -> Result<(String, PathBuf, u64), StoreError> {
    let old = store.keyring()?.current().id().to_owned();
    let pending = pending_path(file);
    if pending.exists() {
        std::fs::remove_file(&pending)
            .map_err(|e| key_error(format!("{}: {e}", pending.display())))?;
    }
    let new = MasterKey::generate();
    write_key_file(&pending, &new)?;
    let n = store.rotate_master_key(&new).await?;
    finish_rotation(file, new.id())?;
    Ok((new.id().to_owned(), retired_path(file, &old), n))
}
