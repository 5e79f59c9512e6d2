-- The console's locks (SQLite). migrations/postgres holds the same schema.

-- Failed logins are counted per login name and client together, so a
-- stranger's wrong passwords lock out only the stranger.
CREATE INDEX login_failures_pair ON login_failures (login, client, at);

-- API tokens end: at their expiry, and whenever their operator's password
-- changes or is reset (revoked = 1, as on disable).
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
UPDATE api_tokens SET expires_at = created_at + 7776000000 WHERE expires_at IS NULL;
