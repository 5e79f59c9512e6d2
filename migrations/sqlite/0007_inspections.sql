-- Each message is inspected once (sqlite). migrations/postgres holds the same
-- schema.

-- The message's inspection in its stored form (intake's versioned JSON):
-- a request with follow-ups is judged from these, not by decoding every
-- earlier message again. NULL until inspected, and once purged.
ALTER TABLE raw_messages ADD COLUMN inspection BLOB;
