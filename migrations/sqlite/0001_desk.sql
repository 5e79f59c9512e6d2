-- The desk's schema (SQLite). migrations/postgres holds the same schema.
-- Times are Unix milliseconds; flags are 0/1 integers (one code path for both).

CREATE TABLE raw_messages (
    sha256       TEXT PRIMARY KEY,          -- content address
    received_at  BIGINT NOT NULL,
    source       TEXT NOT NULL,             -- where it was read (maildir file, imap uid)
    size         BIGINT NOT NULL,
    raw          BLOB,                      -- NULL once purged by retention
    message_id   TEXT,
    sender       TEXT,
    subject      TEXT,
    status       TEXT NOT NULL DEFAULT 'stored',   -- stored | processed | failed
    error        TEXT,
    kind         TEXT,                      -- deletion_request | auto_reply | bounce | other
    request_id   BIGINT,
    processed_at BIGINT
);
CREATE INDEX raw_messages_status ON raw_messages (status);
CREATE INDEX raw_messages_message_id ON raw_messages (message_id);

CREATE TABLE requests (
    id                    INTEGER PRIMARY KEY,
    reference             TEXT UNIQUE,
    state                 TEXT NOT NULL,
    email                 TEXT NOT NULL,     -- the citizen's address (first message's sender)
    id_number             TEXT,
    id_type               TEXT,
    full_name             TEXT,
    phone                 TEXT,
    reason                TEXT,
    problems              TEXT NOT NULL DEFAULT '',   -- comma-separated codes
    warnings              TEXT NOT NULL DEFAULT '',
    assessment            TEXT,              -- the latest inspection report (JSON)
    received_at           BIGINT NOT NULL,
    due_date              TEXT NOT NULL,     -- YYYY-MM-DD, 20 working days after receipt
    updated_at            BIGINT NOT NULL,
    duplicate_submissions BIGINT NOT NULL DEFAULT 0,
    version               BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX requests_state ON requests (state, due_date);
CREATE INDEX requests_id_number ON requests (id_number);
CREATE INDEX requests_email ON requests (email);

CREATE TABLE request_messages (
    request_id   BIGINT NOT NULL REFERENCES requests (id),
    sha256       TEXT NOT NULL REFERENCES raw_messages (sha256),
    message_id   TEXT,
    position     BIGINT NOT NULL,
    PRIMARY KEY (request_id, sha256)
);
CREATE INDEX request_messages_message_id ON request_messages (message_id);

CREATE TABLE photos (
    request_id   BIGINT NOT NULL REFERENCES requests (id),
    sha256       TEXT NOT NULL,
    message      TEXT NOT NULL,             -- raw_messages.sha256 it came in
    filename     TEXT,
    format       TEXT,
    width        BIGINT,
    height       BIGINT,
    role         TEXT NOT NULL,
    usable       BIGINT NOT NULL,
    dhash        TEXT,
    PRIMARY KEY (request_id, sha256)
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           BIGINT NOT NULL,
    request_id   BIGINT,
    actor        TEXT NOT NULL,             -- system, or an operator's login
    action       TEXT NOT NULL,
    from_state   TEXT,
    to_state     TEXT,
    detail       TEXT
);
CREATE INDEX audit_log_request ON audit_log (request_id, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,          -- email (sms, account calls later)
    request_id      BIGINT,
    dedupe_key      TEXT NOT NULL UNIQUE,   -- one side effect per cause, never two
    recipient       TEXT NOT NULL,
    payload         TEXT NOT NULL,          -- JSON, rendered at enqueue time
    state           TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);

CREATE TABLE mailbox_state (
    mailbox      TEXT PRIMARY KEY,
    uidvalidity  BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL
);
