-- Every byte of a request is a stranger's claim (SQLite). migrations/postgres
-- holds the same schema.

-- The unguessable secret of a request's mail thread: in every letter's
-- Message-ID and subject, and the only way a follow-up joins (besides the
-- same address writing about the same number). Requests from before get one.
ALTER TABLE requests ADD COLUMN thread_token TEXT;
UPDATE requests SET thread_token = lower(hex(randomblob(10))) WHERE thread_token IS NULL;
CREATE UNIQUE INDEX requests_thread_token ON requests (thread_token);

-- Mail from another address about an open request changes nothing on it:
-- it opens a request of its own, linked to the one it is about.
ALTER TABLE requests ADD COLUMN linked_to BIGINT;
-- A message kept on a request for people to read, never used to assess it
-- (why: another_sender).
ALTER TABLE request_messages ADD COLUMN flag TEXT;

-- A supervisor's confirmation that an account may be approved although its
-- holder cannot be told through the account's own phone, or although it was
-- found only through the card QR's other number.
ALTER TABLE requests ADD COLUMN holder_risk_account TEXT;
ALTER TABLE requests ADD COLUMN holder_risk_by TEXT;

-- At most one open window per portal account: two requests can never both
-- be approved for the same account at once.
CREATE UNIQUE INDEX requests_one_window_per_account ON requests (approved_account)
    WHERE state IN ('grace_period', 'deleting');
