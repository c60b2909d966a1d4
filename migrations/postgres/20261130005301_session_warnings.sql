-- The threshold of the last time warning given for a session (seconds before its end), so that
-- of the clocks of every replica watching it, one gives each warning; an extension clears it.
ALTER TABLE sessions ADD COLUMN warned_secs BIGINT;
