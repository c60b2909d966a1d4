-- The first seed's tables, plus one-time sign-in codes.
-- Times are RFC 3339 UTC text written by the server; ids are hyphenated UUID text.

CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

CREATE TABLE sessions (
    id                     TEXT PRIMARY KEY NOT NULL,
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status                 TEXT NOT NULL
                           CHECK (status IN ('provisioning', 'started', 'ended', 'timeout', 'failed')),
    start_time             TEXT NOT NULL,
    expires_at             TEXT NOT NULL,
    end_time               TEXT,
    cluster_name           TEXT NOT NULL UNIQUE,
    kubeconfig_path        TEXT,
    terminal_container_id  TEXT,
    extended               INTEGER NOT NULL DEFAULT 0 CHECK (extended IN (0, 1)),
    notes                  TEXT NOT NULL DEFAULT ''
);

-- One live session per user, enforced by the database itself.
CREATE UNIQUE INDEX sessions_one_live_per_user
    ON sessions (user_id) WHERE status IN ('provisioning', 'started');
CREATE INDEX sessions_by_status_expiry ON sessions (status, expires_at);

CREATE TABLE allocated_ports (
    port          INTEGER PRIMARY KEY NOT NULL CHECK (port BETWEEN 1 AND 65535),
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    port_type     TEXT NOT NULL CHECK (port_type IN ('api', 'ingress', 'ingress_https')),
    allocated_at  TEXT NOT NULL
);
CREATE INDEX allocated_ports_by_session ON allocated_ports (session_id);

-- Task ids are the slugs of the files in tasks/ (the seed's integer ids would not survive a reorder).
CREATE TABLE tasks (
    id          TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    difficulty  TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE one_time_codes (
    id           TEXT PRIMARY KEY NOT NULL,
    email        TEXT NOT NULL COLLATE NOCASE,
    code_hash    TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    consumed_at  TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX one_time_codes_by_email ON one_time_codes (email, created_at);
