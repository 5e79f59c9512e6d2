//! A portal account as the desk sees it, whichever directory holds it.

use std::fmt;
use std::str::FromStr;

/// Where an account stands in its directory. Parsed where it comes in
/// (the embedded table, SQL, REST, an `accounts load` file): a state the
/// desk does not know is refused there, as an error naming the value,
/// rather than passed on as text. An account in a state nobody defined
/// (say "suspended") must not be locked or deleted on a guess; the lookup
/// fails loudly and an operator asks the portal's team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum AccountState {
    /// Can log in. A directory that says nothing means this.
    #[default]
    Active,
    /// Locked by the desk during the grace period: no login.
    Locked,
    /// Deleted for good (the embedded table may keep the row).
    Deleted,
}

/// A state the desk does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account state {0:?} is none of active, locked, deleted")]
pub struct UnknownAccountState(pub String);

impl AccountState {
    /// Every state, for the console's labels.
    pub const ALL: [AccountState; 3] = [
        AccountState::Active,
        AccountState::Locked,
        AccountState::Deleted,
    ];

    /// The word the directories and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Locked => "locked",
            AccountState::Deleted => "deleted",
        }
    }
}

impl FromStr for AccountState {
    type Err = UnknownAccountState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(AccountState::Active),
            "locked" => Ok(AccountState::Locked),
            "deleted" => Ok(AccountState::Deleted),
            other => Err(UnknownAccountState(other.to_owned())),
        }
    }
}

impl TryFrom<String> for AccountState {
    type Error = UnknownAccountState;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<AccountState> for &'static str {
    fn from(s: AccountState) -> Self {
        s.as_str()
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One portal account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortalAccount {
    /// The portal's account id.
    pub account_id: String,
    /// CCCD (12 digits) or CMND (9 digits).
    pub id_number: String,
    /// Name on the account.
    pub full_name: String,
    /// YYYY-MM-DD.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// E.164.
    #[serde(default)]
    pub phone: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Linked to VNeID (0/1: the console's API publishes it as a number).
    #[serde(default)]
    pub vneid_linked: i64,
    /// Its state.
    #[serde(default)]
    pub state: AccountState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_and_written_as_the_directories_spell_them() {
        for s in [
            AccountState::Active,
            AccountState::Locked,
            AccountState::Deleted,
        ] {
            assert_eq!(s.as_str().parse::<AccountState>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(
            "suspended".parse::<AccountState>(),
            Err(UnknownAccountState("suspended".into()))
        );
        assert_eq!("Locked".parse::<AccountState>().ok(), None);
    }

    #[test]
    fn an_account_file_with_an_unknown_state_is_refused() {
        let row = |state: &str| {
            format!(r#"{{"account_id":"a","id_number":"079203001234","full_name":"X"{state}}}"#)
        };
        let a: PortalAccount = serde_json::from_str(&row("")).unwrap();
        assert_eq!(a.state, AccountState::Active);
        let a: PortalAccount = serde_json::from_str(&row(r#","state":"locked""#)).unwrap();
        assert_eq!(a.state, AccountState::Locked);
        let e = serde_json::from_str::<PortalAccount>(&row(r#","state":"suspended""#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("suspended"), "{e}");
    }
}
