//! Passwords (argon2id), random secrets, and the rules of logging in:
//! sessions in the database, CSRF tokens, and a limit on failed logins.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;

// The password rules and the secret hash live in `domain::operator`,
// one-time passwords with the operator service; the login, session and
// password code use them from here.
pub use crate::domain::operator::{password_problem, secret_hash};
pub use crate::workflow::operators::random_password;

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .expect("argon2 with default parameters cannot fail")
}

/// Checks a password against a stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the login does not exist, so a wrong
/// login takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("not a password of anyone"))
}

/// A random secret, URL-safe base64 of 32 bytes.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Compares two strings in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl crate::workflow::operators::PasswordHashing for super::locks::PasswordPool {
    async fn hash_password(&self, password: &str) -> Option<String> {
        self.hash(password).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_are_salted() {
        let a = hash_password("một mật khẩu dài");
        let b = hash_password("một mật khẩu dài");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("một mật khẩu dài", &a));
        assert!(!verify_password("một mật khẩu dai", &a));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn secrets_are_random_and_compared_whole() {
        assert_ne!(random_secret(), random_secret());
        assert_eq!(random_password().len(), 23);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
