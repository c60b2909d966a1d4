-- Proven emails: an account's email is proven by a mailed code or by Google, and only a proven
-- account signs in. Accounts made by a code or by Google were proven by it; password accounts
-- made before this were not (anyone could register any address): their sign-ins end here, and
-- their owners prove the email once (a code, Google, or a new password set with a mailed code).
ALTER TABLE users ADD COLUMN email_verified_at TEXT;
UPDATE users SET email_verified_at = created_at WHERE password_hash IS NULL;
UPDATE refresh_tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE email_verified_at IS NULL);
