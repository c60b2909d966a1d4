-- Access passes bought once and activated later (the second seed's payments): what can be bought
-- (pass_types, seeded with the seed's four plans; an operator's PASS_TYPES_FILE replaces them at
-- start-up), each pass a user holds (bought or granted, then activated: the clock starts then;
-- one active at a time), and the Stripe events already processed (each processed once).
CREATE TABLE pass_types (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    price_cents     INTEGER NOT NULL CHECK (price_cents >= 0),
    currency        TEXT NOT NULL,
    -- How long a pass of this type lasts once activated; 0 for the free trial (mock exams only).
    duration_hours  INTEGER NOT NULL CHECK (duration_hours >= 0),
    -- Offered on the pricing page (a type an operator removes stays for the passes that hold it).
    offered         INTEGER NOT NULL DEFAULT 1,
    position        INTEGER NOT NULL DEFAULT 0
);

INSERT INTO pass_types (id, name, price_cents, currency, duration_hours, position) VALUES
    ('free-trial', 'Free Trial', 0, 'usd', 0, 0),
    ('pass-38h', '38 Hours Pass', 499, 'usd', 38, 1),
    ('pass-1w', '1 Week Pass', 1999, 'usd', 168, 2),
    ('pass-2w', '2 Weeks Pass', 2999, 'usd', 336, 3);

-- The earlier table granted one exam to a user; a pass now opens every exam that needs one.
ALTER TABLE access_passes RENAME TO access_grants_before_passes;

CREATE TABLE access_passes (
    id                  TEXT PRIMARY KEY NOT NULL,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    pass_type_id        TEXT NOT NULL REFERENCES pass_types (id),
    -- Copied from the type when the pass is made: a later price or duration change keeps it.
    duration_hours      INTEGER NOT NULL CHECK (duration_hours > 0),
    -- `unused` until activated, then `active` until expires_at (marked `expired` when another is
    -- activated after it), or `revoked` (a refund, a dispute, an admin).
    status              TEXT NOT NULL CHECK (status IN ('unused', 'active', 'expired', 'revoked')),
    -- `stripe` (a payment) or `admin` (a grant).
    source              TEXT NOT NULL CHECK (source IN ('stripe', 'admin')),
    checkout_session_id TEXT UNIQUE,
    payment_intent_id   TEXT,
    created_at          TEXT NOT NULL,
    activated_at        TEXT,
    expires_at          TEXT,
    revoked_at          TEXT,
    revoked_reason      TEXT
);

CREATE INDEX access_passes_by_user ON access_passes (user_id, created_at);
CREATE INDEX access_passes_by_payment ON access_passes (payment_intent_id);
-- One active pass per user (an expired one is marked before another is activated).
CREATE UNIQUE INDEX access_passes_one_active ON access_passes (user_id) WHERE status = 'active';

-- Earlier grants become active admin passes, the latest ending one per user; a grant without an
-- end lasts two weeks from now.
INSERT INTO access_passes (id, user_id, pass_type_id, duration_hours, status, source, created_at,
                           activated_at, expires_at)
SELECT lower(hex(randomblob(16))), user_id, 'pass-2w', 336, 'active', 'admin', MIN(granted_at),
       MIN(granted_at),
       MAX(COALESCE(expires_at, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '+14 days')))
FROM access_grants_before_passes GROUP BY user_id;

DROP TABLE access_grants_before_passes;

CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY NOT NULL,
    type        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
