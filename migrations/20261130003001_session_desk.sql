-- What a learner keeps beside a session, as in the exam: a notepad and the tasks flagged for
-- review. Gone with the session (and so with its user).
CREATE TABLE session_notepads (
    session_id  TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE session_flags (
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    PRIMARY KEY (session_id, task_id)
);
