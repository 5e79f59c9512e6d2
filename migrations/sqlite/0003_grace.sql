-- From approval to deletion (SQLite). migrations/postgres holds the same schema.

-- Where the holder's SMS goes, when the gateway accepted it, and the end of
-- the window the hotline can stop the deletion in: a durable timer, read
-- by every replica, so a restart or a daemon down over the deadline still
-- deletes once, at or after it.
ALTER TABLE requests ADD COLUMN sms_to TEXT;
ALTER TABLE requests ADD COLUMN sms_accepted_at BIGINT;
ALTER TABLE requests ADD COLUMN grace_deadline BIGINT;
ALTER TABLE requests ADD COLUMN closed_at BIGINT;
ALTER TABLE requests ADD COLUMN purged_at BIGINT;
CREATE INDEX requests_deadline ON requests (state, grace_deadline);
CREATE INDEX requests_closed ON requests (closed_at);
CREATE INDEX outbox_request ON outbox (request_id, kind);

-- When the daily digest last went out (one per day across replicas).
CREATE TABLE digests (
    day      TEXT PRIMARY KEY,
    sent_at  BIGINT NOT NULL
);
