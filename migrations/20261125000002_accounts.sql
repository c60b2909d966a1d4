-- Password accounts (the second seed's phase 3), and refresh-token rotation: a rotated token
-- names its successor, which tells a replay (revoke the family) from a logout.
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN replaced_by TEXT;
