-- When the removal of a live session began. One remover at a time claims it (a stop, the clock,
-- an admin, the liveness watch), and the watchers leave a session that is being removed alone
-- instead of taking its half-removed cluster for a lost one.
ALTER TABLE sessions ADD COLUMN ending_since TEXT;
