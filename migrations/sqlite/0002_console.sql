-- The operator console (SQLite). migrations/postgres holds the same schema.

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,            -- operator | supervisor | admin
    password_hash TEXT NOT NULL,            -- argon2id PHC string
    disabled      BIGINT NOT NULL DEFAULT 0,
    must_change   BIGINT NOT NULL DEFAULT 0, -- one-time password printed at first start
    created_at    BIGINT NOT NULL
);

-- Sessions live in the database so replicas share them; the cookie holds a
-- random secret, the table only its SHA-256.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    operator_id  BIGINT NOT NULL REFERENCES operators (id),
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL
);
CREATE INDEX sessions_operator ON sessions (operator_id);

CREATE TABLE api_tokens (
    token_hash   TEXT PRIMARY KEY,
    operator_id  BIGINT NOT NULL REFERENCES operators (id),
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used    BIGINT,
    revoked      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_operator ON api_tokens (operator_id);

-- Failed logins, shared by replicas, for rate limiting.
CREATE TABLE login_failures (
    id      INTEGER PRIMARY KEY,
    login   TEXT NOT NULL,
    client  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX login_failures_login ON login_failures (login, at);
CREATE INDEX login_failures_client ON login_failures (client, at);

-- Who holds a request (no two operators decide the same one), which
-- account an approval chose, and a first approval awaiting its second.
ALTER TABLE requests ADD COLUMN claimed_by TEXT;
ALTER TABLE requests ADD COLUMN claimed_until BIGINT;
ALTER TABLE requests ADD COLUMN approved_account TEXT;
ALTER TABLE requests ADD COLUMN first_approver TEXT;
ALTER TABLE requests ADD COLUMN decision_note TEXT;
CREATE INDEX requests_phone ON requests (phone);
-- The queue's order (oldest due first) straight from an index, with and
-- without a state, so a page never sorts the whole table.
CREATE INDEX requests_queue ON requests (state, due_date, received_at, id);
CREATE INDEX requests_due ON requests (due_date, received_at, id);

CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

-- The embedded directory of portal accounts (the account store of the
-- embedded default; production uses LDAP, REST or SQL).
CREATE TABLE portal_accounts (
    account_id   TEXT PRIMARY KEY,
    id_number    TEXT NOT NULL,             -- 12-digit CCCD or 9-digit CMND
    full_name    TEXT NOT NULL,
    birth_date   TEXT,                      -- YYYY-MM-DD
    phone        TEXT,                      -- E.164
    email        TEXT,
    vneid_linked BIGINT NOT NULL DEFAULT 0,
    state        TEXT NOT NULL DEFAULT 'active'   -- active | locked | deleted
);
CREATE INDEX portal_accounts_number ON portal_accounts (id_number);
