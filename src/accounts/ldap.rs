//! An LDAP directory of portal accounts (ldap3). Accounts are entries
//! under `base_dn`; attribute names come from config. A locked account
//! carries `lock_attribute: lock_value`; deletion removes the entry.

use ldap3::{ldap_escape, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use std::collections::HashSet;
use std::time::Duration;

use super::{AccountError, AccountState, AccountStore, PortalAccount};
use crate::config::AccountsConfig;

/// The LDAP account store.
#[derive(Debug, Clone)]
pub struct LdapDirectory {
    c: AccountsConfig,
}

fn unavailable(e: impl std::fmt::Display) -> AccountError {
    AccountError::Unavailable(e.to_string())
}

impl LdapDirectory {
    /// Checks the configuration (no connection yet).
    pub fn new(c: AccountsConfig) -> Result<LdapDirectory, AccountError> {
        if !c.url.starts_with("ldap://") && !c.url.starts_with("ldaps://") {
            return Err(AccountError::Config(format!(
                "[accounts] url {:?}: use ldap://host:port or ldaps://host:port",
                c.url
            )));
        }
        if c.base_dn.is_empty() {
            return Err(AccountError::Config("[accounts] base_dn is empty".into()));
        }
        Ok(LdapDirectory { c })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.c.url
    }

    async fn connect(&self) -> Result<ldap3::Ldap, AccountError> {
        // ldaps:// shares the desk's one TLS setup (roots loaded once).
        let tls = crate::net::tls::client_config().map_err(unavailable)?;
        let settings = LdapConnSettings::new()
            .set_config(tls)
            .set_conn_timeout(Duration::from_secs(self.c.timeout_seconds.max(1)));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.c.url)
            .await
            .map_err(unavailable)?;
        ldap3::drive!(conn);
        ldap.with_timeout(Duration::from_secs(self.c.timeout_seconds.max(1)));
        if !self.c.bind_dn.is_empty() {
            ldap.simple_bind(&self.c.bind_dn, self.c.bind_password.expose())
                .await
                .map_err(unavailable)?
                .success()
                .map_err(unavailable)?;
        }
        Ok(ldap)
    }

    fn attrs(&self) -> Vec<&str> {
        [
            self.c.id_attribute.as_str(),
            &self.c.number_attribute,
            &self.c.name_attribute,
            &self.c.phone_attribute,
            &self.c.email_attribute,
            &self.c.birth_attribute,
            &self.c.vneid_attribute,
            &self.c.lock_attribute,
        ]
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect()
    }

    fn account(&self, e: &SearchEntry) -> Option<PortalAccount> {
        let get = |a: &str| {
            if a.is_empty() {
                return None;
            }
            e.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(a))
                .and_then(|(_, v)| v.first().cloned())
        };
        let locked = e
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.c.lock_attribute))
            .is_some_and(|(_, v)| v.iter().any(|x| x == &self.c.lock_value));
        Some(PortalAccount {
            account_id: get(&self.c.id_attribute)?,
            id_number: get(&self.c.number_attribute)?,
            full_name: get(&self.c.name_attribute).unwrap_or_default(),
            birth_date: get(&self.c.birth_attribute),
            phone: get(&self.c.phone_attribute).map(|p| {
                crate::domain::Phone::parse(&p)
                    .map(|ph| ph.as_str().to_owned())
                    .unwrap_or(p)
            }),
            email: get(&self.c.email_attribute),
            vneid_linked: i64::from(
                get(&self.c.vneid_attribute).is_some_and(|v| {
                    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
                }),
            ),
            state: if locked {
                AccountState::Locked
            } else {
                AccountState::Active
            },
        })
    }

    async fn dn_of(
        &self,
        ldap: &mut ldap3::Ldap,
        account_id: &str,
    ) -> Result<Option<String>, AccountError> {
        let filter = format!("({}={})", self.c.id_attribute, ldap_escape(account_id));
        let (rs, _) = ldap
            .search(&self.c.base_dn, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .map_err(unavailable)?
            .success()
            .map_err(unavailable)?;
        Ok(rs.into_iter().next().map(|e| SearchEntry::construct(e).dn))
    }

    async fn set_lock(&self, account_id: &str, locked: bool) -> Result<(), AccountError> {
        let mut ldap = self.connect().await?;
        let Some(dn) = self.dn_of(&mut ldap, account_id).await? else {
            let _ = ldap.unbind().await;
            return Err(AccountError::Unavailable(format!(
                "no entry {}={account_id} under {}",
                self.c.id_attribute, self.c.base_dn
            )));
        };
        let values: HashSet<&str> = if locked {
            HashSet::from([self.c.lock_value.as_str()])
        } else {
            HashSet::new()
        };
        // Replace with no values removes the attribute, and is no error
        // when it is absent (RFC 4511 4.6): unlocking twice is fine.
        ldap.modify(
            &dn,
            vec![Mod::Replace(self.c.lock_attribute.as_str(), values)],
        )
        .await
        .map_err(unavailable)?
        .success()
        .map_err(unavailable)?;
        let _ = ldap.unbind().await;
        Ok(())
    }
}

impl AccountStore for LdapDirectory {
    async fn find(&self, numbers: &[String]) -> Result<Vec<PortalAccount>, AccountError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let mut ldap = self.connect().await?;
        let any: String = numbers
            .iter()
            .map(|n| format!("({}={})", self.c.number_attribute, ldap_escape(n)))
            .collect();
        let filter = format!("(|{any})");
        let (rs, _) = ldap
            .search(&self.c.base_dn, Scope::Subtree, &filter, self.attrs())
            .await
            .map_err(unavailable)?
            .success()
            .map_err(unavailable)?;
        let _ = ldap.unbind().await;
        let mut out: Vec<PortalAccount> = rs
            .into_iter()
            .filter_map(|e| self.account(&SearchEntry::construct(e)))
            .collect();
        out.sort_by(|a, b| {
            let rank = |x: &PortalAccount| numbers.iter().position(|n| n == &x.id_number);
            rank(a).cmp(&rank(b)).then(a.account_id.cmp(&b.account_id))
        });
        Ok(out)
    }
    async fn lock(&self, account_id: &str) -> Result<(), AccountError> {
        self.set_lock(account_id, true).await
    }
    async fn unlock(&self, account_id: &str) -> Result<(), AccountError> {
        self.set_lock(account_id, false).await
    }
    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        let mut ldap = self.connect().await?;
        if let Some(dn) = self.dn_of(&mut ldap, account_id).await? {
            let r = ldap.delete(&dn).await.map_err(unavailable)?;
            // 32 noSuchObject: deleted meanwhile, which is what we wanted.
            if r.rc != 0 && r.rc != 32 {
                let _ = ldap.unbind().await;
                return Err(AccountError::Unavailable(format!("deleting {dn}: {}", r)));
            }
        }
        let _ = ldap.unbind().await;
        Ok(())
    }
}
