-- Google sign-ins in flight: what the callback must match (state, hashed), and the PKCE verifier
-- and nonce it must use. Each row is taken once.
CREATE TABLE oauth_flows (
    state_hash     TEXT PRIMARY KEY NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);
