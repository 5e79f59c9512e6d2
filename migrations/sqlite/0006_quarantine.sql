-- A message that stops the daemon is quarantined (SQLite). migrations/postgres
-- holds the same schema.

-- How many times inspecting this message began: counted before the work,
-- so a message whose inspection killed the process is known at the next
-- start, and after a few such starts it is marked failed, not retried.
ALTER TABLE raw_messages ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
