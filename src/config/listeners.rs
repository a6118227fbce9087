//! Listeners in Kafka's form: `listeners = "PLAINTEXT://host:port,SSL://host:port"`, each a
//! name (its security protocol, or a name mapped to one by
//! `listener.security.protocol.map`) and an address; `advertised.listeners` names what
//! clients are told for each.

use std::net::SocketAddr;

use super::ConfigError;

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        Some(match name {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether its connections speak TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether its clients authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// One entry of `listeners` or `advertised.listeners`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The listener's name (`PLAINTEXT`, `SSL`, or a name of the protocol map).
    pub name: String,
    pub protocol: SecurityProtocol,
    pub host: String,
    pub port: u16,
}

impl ListenerSpec {
    /// The address to bind: the host as an IP (an empty host is every address).
    pub fn bind_addr(&self, key: &str) -> Result<SocketAddr, ConfigError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        std::net::ToSocketAddrs::to_socket_addrs(&(host, self.port))
            .map_err(|e| ConfigError::new(key, format!("{}: {e}", self.name)))?
            .next()
            .ok_or_else(|| ConfigError::new(key, format!("{}: {host} resolves to nothing", self.name)))
    }
}

impl std::fmt::Display for ListenerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL,...`; unset, every protocol's own name
/// maps to it.
pub fn parse_protocol_map(value: Option<&str>) -> Result<Vec<(String, SecurityProtocol)>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let Some(value) = value else {
        return Ok([
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .map(|p| (p.name().to_string(), p))
        .collect());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, protocol) = entry
                .split_once(':')
                .ok_or_else(|| ConfigError::new(KEY, format!("{entry}: expected NAME:PROTOCOL")))?;
            let protocol = SecurityProtocol::parse(protocol.trim())
                .ok_or_else(|| ConfigError::new(KEY, format!("{entry}: unknown security protocol")))?;
            Ok((name.trim().to_string(), protocol))
        })
        .collect()
}

/// Parses `NAME://host:port,...` (the value of `key`); each name must be in `map`, and may
/// appear once.
pub fn parse_listeners(
    key: &str,
    value: &str,
    map: &[(String, SecurityProtocol)],
) -> Result<Vec<ListenerSpec>, ConfigError> {
    let mut listeners: Vec<ListenerSpec> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = entry
            .split_once("://")
            .ok_or_else(|| ConfigError::new(key, format!("{entry}: expected NAME://host:port")))?;
        let protocol = map
            .iter()
            .find(|(mapped, _)| mapped == name)
            .map(|(_, protocol)| *protocol)
            .ok_or_else(|| {
                ConfigError::new(
                    key,
                    format!("{entry}: listener {name} is not in listener.security.protocol.map"),
                )
            })?;
        let (host, port) = super::parse_host_port_allowing_empty(address)
            .map_err(|reason| ConfigError::new(key, format!("{entry}: {reason}")))?;
        if listeners.iter().any(|l| l.name == name) {
            return Err(ConfigError::new(key, format!("listener {name} appears twice")));
        }
        listeners.push(ListenerSpec {
            name: name.to_string(),
            protocol,
            host,
            port,
        });
    }
    if listeners.is_empty() {
        return Err(ConfigError::new(key, "names no listener"));
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_parse_in_kafkas_form() {
        let map = parse_protocol_map(None).unwrap();
        let parsed = parse_listeners("listeners", "PLAINTEXT://127.0.0.1:9092, SSL://:9093", &map).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(
            (parsed[1].name.as_str(), parsed[1].host.as_str(), parsed[1].port),
            ("SSL", "", 9093)
        );
        assert!(parsed[1].protocol.tls() && !parsed[1].protocol.sasl());
        assert_eq!(parsed[0].to_string(), "PLAINTEXT://127.0.0.1:9092");
        for bad in [
            "",
            "PLAINTEXT",
            "TLS://h:1",
            "PLAINTEXT://h:1,PLAINTEXT://h:2",
            "SSL://h",
        ] {
            assert!(parse_listeners("listeners", bad, &map).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_protocol_map_names_listeners() {
        let map = parse_protocol_map(Some("INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL")).unwrap();
        let parsed = parse_listeners("listeners", "INTERNAL://h:1,EXTERNAL://h:2", &map).unwrap();
        assert_eq!(parsed[1].protocol, SecurityProtocol::SaslSsl);
        assert!(parse_listeners("listeners", "PLAINTEXT://h:1", &map).is_err());
        assert!(parse_protocol_map(Some("X:TLS")).is_err());
    }
}
