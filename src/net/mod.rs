//! Talking to other servers over the network: the one TLS client setup
//! ([`tls`]) and the one bounded HTTP client ([`http`]) that the SMS
//! gateways, the portal's account API, IMAP, SMTP and LDAP share.

pub mod http;
pub mod tls;
