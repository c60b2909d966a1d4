-- The hosts of an exam session (`ssh <host>` in its terminal), each a cluster of its own,
-- recorded before any is made so that a stop, the clock and the reconciler remove every one. The
-- first host's cluster is the session's own (`sessions.cluster_name`); a session without hosts
-- has no rows here.
CREATE TABLE session_hosts (
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    host          TEXT NOT NULL,
    cluster_name  TEXT NOT NULL UNIQUE,
    PRIMARY KEY (session_id, host)
);
