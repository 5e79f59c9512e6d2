-- The supervisors' reports (PostgreSQL). migrations/sqlite holds the same schema.
-- Requests received per day are counted from an index on the arrival time,
-- and the waiting requests' ages from one on (state, arrival), so the
-- dashboard reads no request row however many there are. Decisions and
-- grace-period ends are read through audit_log_action (action, at).

CREATE INDEX requests_received ON requests (received_at);
CREATE INDEX requests_state_received ON requests (state, received_at);
