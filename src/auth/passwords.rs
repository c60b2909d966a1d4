//! Password accounts: argon2id with the crate's recommended parameters, computed on blocking
//! threads, a few at a time, so that hashing never stalls the async workers that serve everyone.

use std::sync::Arc;

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString},
    Argon2,
};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;

/// Runs argon2 off the async threads, on all cores but one at once (each computation takes tens
/// of milliseconds and 19 MiB), so that a core stays free for everyone else's requests and
/// sockets; the rest wait their turn.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<tokio::sync::Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1))),
        }
    }
}

impl Hasher {
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(work)
            .await
            .expect("argon2 does not panic")
    }

    pub async fn hash(&self, password: &str) -> String {
        let password = password.to_owned();
        self.run(move || hash_password(&password)).await
    }

    pub async fn verify(&self, password: &str, stored: Option<String>) -> bool {
        let password = password.to_owned();
        self.run(move || verify_password(&password, stored.as_deref()))
            .await
    }
}

fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

/// Whether `password` matches `stored`. With no stored hash (an unknown email, or an account
/// without a password) a dummy hash is still checked, so the answer takes the same time.
fn verify_password(password: &str, stored: Option<&str>) -> bool {
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
