-- Single-use tickets for the terminal socket, here so that any replica serves any socket. A
-- ticket is a bearer secret: only its SHA-256 (hex) is kept. Its expiry is in milliseconds since
-- the epoch, so that both databases compare it in SQL (the purge of expired ones).
CREATE TABLE terminal_tickets (
    hash        TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX terminal_tickets_by_expiry ON terminal_tickets (expires_at);
