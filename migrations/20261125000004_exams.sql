-- Exams: which exam a session is (NULL for practice), each finished exam's grade, and who may
-- take the exams that are not free (the access hook; payments will write these rows).
ALTER TABLE sessions ADD COLUMN exam_id TEXT;

CREATE TABLE exam_results (
    session_id  TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    exam_id     TEXT NOT NULL,
    score       INTEGER NOT NULL,
    max_score   INTEGER NOT NULL,
    graded_at   TEXT NOT NULL,
    -- JSON: every task's weight, points and check outcomes, as graded when the exam ended.
    tasks       TEXT NOT NULL
);

CREATE TABLE access_passes (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exam_id     TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    expires_at  TEXT,
    PRIMARY KEY (user_id, exam_id)
);
