-- The warm pool: clusters (with their terminals) made ahead for no one yet. A member is recorded
-- before anything is made for it (`filling`), marked `ready` when its cluster answers and its
-- terminal runs, and deleted in the transaction that hands it to a session, which takes its id,
-- cluster name and ports: a member is handed once, never pooled again.
CREATE TABLE pool_members (
    id            TEXT PRIMARY KEY NOT NULL,
    cluster_name  TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('filling', 'ready')),
    created_at    TEXT NOT NULL,
    ready_at      TEXT
);

-- Host ports are held by a session or by a pool member, never both: the table is rebuilt with
-- an owner of either kind (nothing references it, so the copy loses nothing).
CREATE TABLE allocated_ports_new (
    port            INTEGER PRIMARY KEY NOT NULL CHECK (port BETWEEN 1 AND 65535),
    session_id      TEXT REFERENCES sessions (id) ON DELETE CASCADE,
    pool_member_id  TEXT REFERENCES pool_members (id) ON DELETE CASCADE,
    port_type       TEXT NOT NULL CHECK (port_type IN ('api', 'ingress', 'ingress_https')),
    allocated_at    TEXT NOT NULL,
    CHECK ((session_id IS NULL) <> (pool_member_id IS NULL))
);
INSERT INTO allocated_ports_new (port, session_id, port_type, allocated_at)
    SELECT port, session_id, port_type, allocated_at FROM allocated_ports;
DROP TABLE allocated_ports;
ALTER TABLE allocated_ports_new RENAME TO allocated_ports;
CREATE INDEX allocated_ports_by_session ON allocated_ports (session_id);
CREATE INDEX allocated_ports_by_pool_member ON allocated_ports (pool_member_id);
