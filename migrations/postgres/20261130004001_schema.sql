-- The PostgreSQL schema: the tables that the SQLite migrations in the folder above build, up to
-- and including this version, in one step (no Postgres database predates it). From here on each
-- migration comes as a pair with the same version, one file per folder.
-- Times are timestamptz, flags boolean, numbers bigint; ids are hyphenated UUID text, as on SQLite.

-- Emails compare without regard to case, as SQLite's NOCASE does, in equality and uniqueness.
CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    email              TEXT COLLATE nocase NOT NULL UNIQUE,
    name               TEXT NOT NULL DEFAULT '',
    created_at         TIMESTAMPTZ NOT NULL,
    password_hash      TEXT,
    -- When the email was proven (a mailed code or Google); never-proven accounts cannot sign in.
    email_verified_at  TIMESTAMPTZ
);

CREATE TABLE sessions (
    id                     TEXT PRIMARY KEY,
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status                 TEXT NOT NULL
                           CHECK (status IN ('provisioning', 'started', 'ended', 'timeout', 'failed')),
    start_time             TIMESTAMPTZ NOT NULL,
    expires_at             TIMESTAMPTZ NOT NULL,
    end_time               TIMESTAMPTZ,
    cluster_name           TEXT NOT NULL UNIQUE,
    kubeconfig_path        TEXT,
    terminal_container_id  TEXT,
    extended               BOOLEAN NOT NULL DEFAULT FALSE,
    notes                  TEXT NOT NULL DEFAULT '',
    -- The exam this session is; NULL for practice.
    exam_id                TEXT,
    -- When the removal of the live session began (one remover at a time claims it).
    ending_since           TIMESTAMPTZ
);

-- One live session per user, enforced by the database itself.
CREATE UNIQUE INDEX sessions_one_live_per_user
    ON sessions (user_id) WHERE status IN ('provisioning', 'started');
CREATE INDEX sessions_by_status_expiry ON sessions (status, expires_at);

-- The warm pool: clusters (with their terminals) made ahead for no one yet, deleted in the
-- transaction that hands one to a session.
CREATE TABLE pool_members (
    id            TEXT PRIMARY KEY,
    cluster_name  TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('filling', 'ready')),
    created_at    TIMESTAMPTZ NOT NULL,
    ready_at      TIMESTAMPTZ
);

-- Host ports, held by a session or by a pool member, never both; the port is the key, so no
-- port is ever held twice.
CREATE TABLE allocated_ports (
    port            BIGINT PRIMARY KEY CHECK (port BETWEEN 1 AND 65535),
    session_id      TEXT REFERENCES sessions (id) ON DELETE CASCADE,
    pool_member_id  TEXT REFERENCES pool_members (id) ON DELETE CASCADE,
    port_type       TEXT NOT NULL CHECK (port_type IN ('api', 'ingress', 'ingress_https')),
    allocated_at    TIMESTAMPTZ NOT NULL,
    CHECK ((session_id IS NULL) <> (pool_member_id IS NULL))
);
CREATE INDEX allocated_ports_by_session ON allocated_ports (session_id);
CREATE INDEX allocated_ports_by_pool_member ON allocated_ports (pool_member_id);

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    difficulty  TEXT NOT NULL
);

-- A rotated token names its successor, which tells a replay (revoke the family) from a logout.
CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id    TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    replaced_by  TEXT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE one_time_codes (
    id           TEXT PRIMARY KEY,
    email        TEXT COLLATE nocase NOT NULL,
    code_hash    TEXT NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    consumed_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX one_time_codes_by_email ON one_time_codes (email, created_at);

-- Google sign-ins in flight, each taken once.
CREATE TABLE oauth_flows (
    state_hash     TEXT PRIMARY KEY,
    pkce_verifier  TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE exam_results (
    session_id  TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    exam_id     TEXT NOT NULL,
    score       BIGINT NOT NULL,
    max_score   BIGINT NOT NULL,
    graded_at   TIMESTAMPTZ NOT NULL,
    -- JSON: every task's weight, points and check outcomes, as graded when the exam ended.
    tasks       TEXT NOT NULL
);

-- The platform's name on a shared Docker engine when PLATFORM_INSTANCE is unset, made with the
-- database.
CREATE TABLE platform (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    instance  TEXT NOT NULL
);
INSERT INTO platform (id, instance)
VALUES (1, 'p' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 10));

-- Access passes: what can be bought (seeded with the four plans; PASS_TYPES_FILE replaces them),
-- each pass a user holds (one active at a time), and the Stripe events already processed.
CREATE TABLE pass_types (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    price_cents     BIGINT NOT NULL CHECK (price_cents >= 0),
    currency        TEXT NOT NULL,
    duration_hours  BIGINT NOT NULL CHECK (duration_hours >= 0),
    offered         BOOLEAN NOT NULL DEFAULT TRUE,
    position        BIGINT NOT NULL DEFAULT 0
);

INSERT INTO pass_types (id, name, price_cents, currency, duration_hours, position) VALUES
    ('free-trial', 'Free Trial', 0, 'usd', 0, 0),
    ('pass-38h', '38 Hours Pass', 499, 'usd', 38, 1),
    ('pass-1w', '1 Week Pass', 1999, 'usd', 168, 2),
    ('pass-2w', '2 Weeks Pass', 2999, 'usd', 336, 3);

CREATE TABLE access_passes (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    pass_type_id         TEXT NOT NULL REFERENCES pass_types (id),
    duration_hours       BIGINT NOT NULL CHECK (duration_hours > 0),
    status               TEXT NOT NULL CHECK (status IN ('unused', 'active', 'expired', 'revoked')),
    source               TEXT NOT NULL CHECK (source IN ('stripe', 'admin')),
    checkout_session_id  TEXT UNIQUE,
    payment_intent_id    TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    activated_at         TIMESTAMPTZ,
    expires_at           TIMESTAMPTZ,
    revoked_at           TIMESTAMPTZ,
    revoked_reason       TEXT
);
CREATE INDEX access_passes_by_user ON access_passes (user_id, created_at);
CREATE INDEX access_passes_by_payment ON access_passes (payment_intent_id);
-- One active pass per user (an expired one is marked before another is activated).
CREATE UNIQUE INDEX access_passes_one_active ON access_passes (user_id) WHERE status = 'active';

CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL
);

-- What a learner keeps beside a session: a notepad and the tasks flagged for review.
CREATE TABLE session_notepads (
    session_id  TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE session_flags (
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    PRIMARY KEY (session_id, task_id)
);
