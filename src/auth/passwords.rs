//! Password accounts: argon2id with the crate's recommended parameters.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString},
    Argon2,
};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;

pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

/// Whether `password` matches `stored`. With no stored hash (an unknown email, or an account
/// without a password) a dummy hash is still checked, so the answer takes the same time.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password("not a real password"));
    let hash = PasswordHash::new(stored.unwrap_or(&DUMMY));
    let matched = hash.is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
    matched && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let stored = hash_password("correct horse battery");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&stored)));
        assert!(!verify_password("correct horse battery!", Some(&stored)));
        assert!(!verify_password("not a real password", None));
    }
}
