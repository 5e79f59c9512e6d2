//! Who works the desk: operator logins, their roles, the password rules,
//! and the shape of an API token.

use std::fmt;

/// What an operator may do. Each role can do everything the ones before it
/// can: operators decide requests and answer the hotline; supervisors also
/// take over claims, read the audit log and export it; admins also manage
/// operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reviews and decides requests.
    Operator,
    /// Oversees the desk.
    Supervisor,
    /// Manages operators.
    Admin,
}

/// A role name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use operator, supervisor or admin")]
pub struct RoleError(pub String);

impl Role {
    /// Parses a stored or typed role name.
    pub fn parse(s: &str) -> Result<Role, RoleError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "operator" => Ok(Role::Operator),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(RoleError(other.to_owned())),
        }
    }

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// True when this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's login name: 2–64 characters of ASCII letters, digits,
/// `.`, `_`, `-` (it appears in the audit log and in URLs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Login(String);

/// A login name we refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("login {0:?}: use 2 to 64 letters, digits, '.', '_' or '-'")]
pub struct LoginError(pub String);

impl Login {
    /// Parses a login name (folded to lower case).
    pub fn parse(s: &str) -> Result<Login, LoginError> {
        let t = s.trim().to_ascii_lowercase();
        let ok = (2..=64).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && t != "system";
        if ok {
            Ok(Login(t))
        } else {
            Err(LoginError(s.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The smallest password we accept.
pub const MIN_PASSWORD: usize = 10;

/// Why a new password is refused (shown to the operator choosing it).
pub fn password_problem(password: &str, login: &str) -> Option<&'static str> {
    if password.chars().count() < MIN_PASSWORD {
        return Some("Mật khẩu cần ít nhất 10 ký tự.");
    }
    if password.to_lowercase().contains(&login.to_lowercase()) {
        return Some("Mật khẩu không được chứa tên đăng nhập.");
    }
    None
}

/// SHA-256 of a secret (an API token, a session cookie), hex: what the
/// database keeps instead of the secret.
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What every API token starts with: a token is told at a glance from a
/// password or a session cookie, and secret scanners can find a leaked one.
pub const TOKEN_PREFIX: &str = "htk_";
/// Random bytes in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Characters after the prefix: the bytes in URL-safe base64, unpadded.
const TOKEN_CHARS: usize = 43;
/// Hex digits of a token's hash that name it in lists and revocations.
pub const TOKEN_ID_LEN: usize = 12;

/// An API token: `htk_` and 32 random bytes in URL-safe base64 without
/// padding. It is shown once; the store keeps only its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

/// A string that is not one of our tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an API token: expected {TOKEN_PREFIX} and {TOKEN_CHARS} characters")]
pub struct TokenError;

impl ApiToken {
    /// The token made of these random bytes.
    pub fn from_bytes(bytes: &[u8; TOKEN_BYTES]) -> ApiToken {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        ApiToken(format!("{TOKEN_PREFIX}{body}"))
    }

    /// Parses a token as a client sends it (spaces around it ignored).
    pub fn parse(s: &str) -> Result<ApiToken, TokenError> {
        use base64::Engine;
        let s = s.trim();
        let body = s.strip_prefix(TOKEN_PREFIX).ok_or(TokenError)?;
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body);
        match decoded {
            Ok(b) if body.len() == TOKEN_CHARS && b.len() == TOKEN_BYTES => {
                Ok(ApiToken(s.to_owned()))
            }
            _ => Err(TokenError),
        }
    }

    /// The secret itself, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token, hex: what the store keeps and looks up.
    pub fn hash(&self) -> String {
        secret_hash(&self.0)
    }

    /// The name of this token in lists.
    pub fn id(&self) -> TokenId {
        TokenId::of_hash(&self.hash())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token in a log line would let its reader in.
        f.write_str("ApiToken(htk_…)")
    }
}

/// The name of an API token in lists and revocations: the first 12 hex
/// digits of its hash (tells tokens apart, lets nobody in).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenId(String);

impl TokenId {
    /// The id of the token with this stored hash.
    pub fn of_hash(hash: &str) -> TokenId {
        TokenId(hash.chars().take(TOKEN_ID_LEN).collect())
    }

    /// Parses an id as a form or a person gives it: at least 12 hex digits
    /// (more are a longer start of the same hash).
    pub fn parse(s: &str) -> Result<TokenId, TokenError> {
        let s = s.trim().to_ascii_lowercase();
        if s.len() >= TOKEN_ID_LEN && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(TokenId(s))
        } else {
            Err(TokenError)
        }
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_their_rights() {
        assert!(Role::Admin.allows(Role::Supervisor));
        assert!(Role::Supervisor.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Supervisor));
        assert_eq!(Role::parse(" Supervisor ").unwrap(), Role::Supervisor);
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn logins_are_plain_names() {
        assert_eq!(Login::parse("Lan.Nguyen").unwrap().as_str(), "lan.nguyen");
        for bad in ["", "a", "system", "lan nguyen", "<script>", "lan\u{e2}"] {
            assert!(Login::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_parse_only_in_their_own_shape() {
        let t = ApiToken::from_bytes(&[7u8; TOKEN_BYTES]);
        assert!(t.expose().starts_with("htk_"));
        assert_eq!(t.expose().len(), 4 + 43);
        assert_eq!(ApiToken::parse(&format!(" {} ", t.expose())).unwrap(), t);
        assert_eq!(t.hash().len(), 64);
        assert_eq!(t.id().as_str(), &t.hash()[..12]);
        assert_eq!(format!("{t:?}"), "ApiToken(htk_…)");
        let body = &t.expose()[4..];
        for bad in [
            body.to_owned(),
            format!("htx_{body}"),
            format!("htk_{}", &body[1..]),
            format!("htk_{body}A"),
            format!("htk_{}+", &body[1..]),
        ] {
            assert!(ApiToken::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_ids_are_hex_starts_of_a_hash() {
        assert_eq!(
            TokenId::parse("ABCDEF012345").unwrap().as_str(),
            "abcdef012345"
        );
        for bad in ["abcdef01234", "abcdef01234g", "%", ""] {
            assert!(TokenId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_long_and_not_the_login() {
        assert!(password_problem("ngắn", "lan").is_some());
        assert!(password_problem("mat-khau-cua-LAN", "lan").is_some());
        assert_eq!(password_problem("mot-mat-khau-dai", "lan"), None);
    }
}
