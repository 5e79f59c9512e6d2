-- Citizens' data sealed at rest (sqlite). migrations/postgres holds the same
-- schema. See src/store/sealed.rs and docs/operations.md.

-- The master keys this database has used, by id (the keys themselves are
-- never here). One is current: new data keys are wrapped with it.
CREATE TABLE master_keys (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,             -- current | retired
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
CREATE UNIQUE INDEX master_keys_one_current ON master_keys (state) WHERE state = 'current';

-- One data key per stored message, wrapped by a master key. Purging a
-- request deletes its messages' keys: every copy of their blobs is then
-- noise, wherever it is.
CREATE TABLE data_keys (
    owner          TEXT PRIMARY KEY,       -- raw_messages.sha256
    master_key_id  TEXT NOT NULL REFERENCES master_keys (id),
    wrapped        BLOB NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX data_keys_master ON data_keys (master_key_id);

-- When the files that carry a purged request's data outside the database
-- (archived spool copies, outbox letters, SMS outbox lines) were removed.
ALTER TABLE requests ADD COLUMN files_removed_at BIGINT;
