//! One-time sign-in codes: six digits from the operating system's CSPRNG, stored as an HMAC keyed
//! with the platform's secret and bound to the email, so a copied database does not give them up.

use hmac::{Hmac, Mac};
use rand::{Rng as _, TryRngCore as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::tokens::hex;
use crate::domain::Email;

pub fn new_code() -> String {
    format!(
        "{:06}",
        rand::rngs::OsRng.unwrap_err().random_range(0..1_000_000u32)
    )
}

/// The stored form of `code` for `email`.
pub fn hash_code(secret: &SecretString, email: &Email, code: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(email.as_str().as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Whether `code` is the one stored as `stored` for `email`, compared in constant time.
pub fn code_matches(secret: &SecretString, email: &Email, code: &str, stored: &str) -> bool {
    hash_code(secret, email, code)
        .as_bytes()
        .ct_eq(stored.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let code = new_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
    }

    #[test]
    fn a_code_is_bound_to_its_email_and_key() {
        let (secret, ada, bob) = (
            SecretString::from("k1"),
            Email::parse("ada@example.com").unwrap(),
            Email::parse("bob@example.com").unwrap(),
        );
        let stored = hash_code(&secret, &ada, "123456");
        assert!(code_matches(&secret, &ada, "123456", &stored));
        assert!(!code_matches(&secret, &ada, "123457", &stored));
        assert!(!code_matches(&secret, &bob, "123456", &stored));
        assert!(!code_matches(&SecretString::from("k2"), &ada, "123456", &stored));
    }
}
