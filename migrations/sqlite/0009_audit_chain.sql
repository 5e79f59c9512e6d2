-- A tamper-evident audit log (SQLite). migrations/postgres holds the same schema.
-- Every row carries its position in the chain, the hash of the row before
-- it and its own hash (SHA-256 over all its columns, see src/store/audit.rs).
-- Rows from before this migration are chained by the daemon at its next
-- start, in id order: those up to the id recorded here, never a row
-- written later outside the chain (`huytk audit verify` names such a row).

ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
-- Two writers that read the same head cannot both link to it.
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE UNIQUE INDEX audit_log_prev_hash ON audit_log (prev_hash);
CREATE INDEX audit_log_unchained ON audit_log (id) WHERE seq IS NULL;
-- The supervisors' filters: by action (views) and time.
CREATE INDEX audit_log_action ON audit_log (action, at);

-- The last row written before the chain: the start chains up to it.
CREATE TABLE audit_chain_backfill (legacy_until BIGINT NOT NULL);
INSERT INTO audit_chain_backfill (legacy_until) SELECT COALESCE(MAX(id), 0) FROM audit_log;
