//! The listeners and how their connections are secured: `listeners`, `advertised.listeners`,
//! `listener.security.protocol.map` and the `ssl.*` keys, under Kafka's names.

use std::path::PathBuf;

use serde::Deserialize;

use super::listeners::{parse_listeners, parse_protocol_map, ListenerSpec, SecurityProtocol};
use super::ConfigError;

/// Who must show a certificate on a TLS listener (`ssl.client.auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// One is asked for; a client without one still connects (as `User:ANONYMOUS`).
    Requested,
    /// A client without a certificate the truststore vouches for is refused.
    Required,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SecuritySettings {
    /// Kafka's `listeners`; unset, the one PLAINTEXT listener `listen` names.
    #[serde(default)]
    pub listeners: Option<String>,
    /// What clients are told for each listener; unset, each listener's bound address.
    #[serde(default, rename = "advertised.listeners")]
    pub advertised_listeners: Option<String>,
    #[serde(default, rename = "listener.security.protocol.map")]
    pub listener_security_protocol_map: Option<String>,
    /// Only PEM is read.
    #[serde(default, rename = "ssl.keystore.type")]
    pub ssl_keystore_type: Option<String>,
    /// A PEM file with the broker's certificate chain and its private key.
    #[serde(default, rename = "ssl.keystore.location")]
    pub ssl_keystore_location: Option<PathBuf>,
    /// A PEM bundle of the CAs whose client certificates are trusted.
    #[serde(default, rename = "ssl.truststore.location")]
    pub ssl_truststore_location: Option<PathBuf>,
    /// `required`, `requested` or `none` (the default).
    #[serde(default, rename = "ssl.client.auth")]
    pub ssl_client_auth: Option<String>,
    /// The SASL mechanisms offered (default PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
    #[serde(default, rename = "sasl.enabled.mechanisms")]
    pub sasl_enabled_mechanisms: Option<String>,
    /// After this long an authenticated SASL session must authenticate again (KIP-368); 0
    /// (the default) never.
    #[serde(default, rename = "connections.max.reauth.ms")]
    pub connections_max_reauth_ms: u64,
    /// Turns on the built-in authorizer ([`crate::acl`]).
    #[serde(default, rename = "acl.enable")]
    pub acl_enable: bool,
    /// Principals every request of is allowed: `User:admin;User:ops`.
    #[serde(default, rename = "super.users")]
    pub super_users: String,
    /// Whether a resource no ACL names is open to everyone (default false: closed).
    #[serde(default, rename = "allow.everyone.if.no.acl.found")]
    pub allow_everyone_if_no_acl_found: bool,
    /// `[sasl.users]`: emptied once the passwords are turned into secrets
    /// ([`crate::config::ServerConfig::from_toml`]).
    #[serde(default)]
    pub sasl: SaslTable,
}

/// The config file's `[sasl]` table.
#[derive(Clone, Default, Deserialize)]
pub struct SaslTable {
    /// User name to password.
    #[serde(default)]
    pub users: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for SaslTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslTable {{ {} users, passwords withheld }}", self.users.len())
    }
}

impl SecuritySettings {
    /// The listeners to bind: `listeners`, or else PLAINTEXT on `listen`.
    pub fn listener_specs(&self, listen: std::net::SocketAddr) -> Result<Vec<ListenerSpec>, ConfigError> {
        let map = parse_protocol_map(self.listener_security_protocol_map.as_deref())?;
        let specs = match &self.listeners {
            Some(value) => parse_listeners("listeners", value, &map)?,
            None => vec![ListenerSpec {
                name: SecurityProtocol::Plaintext.name().to_string(),
                protocol: SecurityProtocol::Plaintext,
                host: listen.ip().to_string(),
                port: listen.port(),
            }],
        };
        Ok(specs)
    }

    /// `advertised.listeners`, each naming one of `listeners`; None when unset.
    pub fn advertised_specs(&self, bound: &[ListenerSpec]) -> Result<Option<Vec<ListenerSpec>>, ConfigError> {
        const KEY: &str = "advertised.listeners";
        let Some(value) = &self.advertised_listeners else {
            return Ok(None);
        };
        let map = parse_protocol_map(self.listener_security_protocol_map.as_deref())?;
        let advertised = parse_listeners(KEY, value, &map)?;
        for listener in &advertised {
            if !bound.iter().any(|b| b.name == listener.name) {
                return Err(ConfigError::new(
                    KEY,
                    format!("{} is not one of the listeners", listener.name),
                ));
            }
            if listener.host.is_empty() {
                return Err(ConfigError::new(KEY, format!("{} has no host", listener.name)));
            }
        }
        Ok(Some(advertised))
    }

    /// `sasl.enabled.mechanisms`.
    pub fn mechanisms(&self) -> Result<Vec<crate::sasl::Mechanism>, ConfigError> {
        match &self.sasl_enabled_mechanisms {
            None => Ok(crate::sasl::Mechanism::ALL.to_vec()),
            Some(list) => crate::sasl::parse_mechanisms(list)
                .map_err(|reason| ConfigError::new("sasl.enabled.mechanisms", reason)),
        }
    }

    /// The authorizer `acl.enable` turns on, or None.
    pub fn authorizer(&self) -> Result<Option<crate::acl::Authorizer>, ConfigError> {
        if !self.acl_enable {
            return Ok(None);
        }
        crate::acl::Authorizer::new(&self.super_users, self.allow_everyone_if_no_acl_found)
            .map(Some)
            .map_err(|reason| ConfigError::new("super.users", reason))
    }

    pub fn client_auth(&self) -> Result<ClientAuth, ConfigError> {
        match self.ssl_client_auth.as_deref().unwrap_or("none") {
            "none" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            other => Err(ConfigError::new(
                "ssl.client.auth",
                format!("{other}: expected required, requested or none"),
            )),
        }
    }

    /// What a TLS listener needs: a PEM keystore, and a truststore when clients show
    /// certificates.
    pub fn validate(&self, listen: std::net::SocketAddr) -> Result<(), ConfigError> {
        let specs = self.listener_specs(listen)?;
        self.advertised_specs(&specs)?;
        let auth = self.client_auth()?;
        self.mechanisms()?;
        self.authorizer()?;
        if let Some(kind) = &self.ssl_keystore_type {
            if !kind.eq_ignore_ascii_case("PEM") {
                return Err(ConfigError::new(
                    "ssl.keystore.type",
                    format!("{kind}: only PEM is read"),
                ));
            }
        }
        if specs.iter().any(|l| l.protocol.tls()) {
            if self.ssl_keystore_location.is_none() {
                return Err(ConfigError::new(
                    "ssl.keystore.location",
                    "a TLS listener needs the broker's certificate chain and key (a PEM file)",
                ));
            }
            if auth != ClientAuth::None && self.ssl_truststore_location.is_none() {
                return Err(ConfigError::new(
                    "ssl.truststore.location",
                    "ssl.client.auth asks for client certificates: name the CAs that sign them",
                ));
            }
        }
        Ok(())
    }
}
