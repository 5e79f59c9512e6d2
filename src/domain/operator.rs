//! Who works the desk: operator logins and their roles.

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
}
