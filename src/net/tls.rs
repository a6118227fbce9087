//! TLS for the SSL and SASL_SSL listeners, with rustls (the ring provider): the server
//! configuration from PEM files, and the principal a client certificate names.
//!
//! The keystore (`ssl.keystore.location`) is one PEM file with the broker's certificate chain
//! and its private key; the truststore (`ssl.truststore.location`) a PEM bundle of the CAs
//! whose client certificates are accepted, asked for per `ssl.client.auth`. A client that
//! shows a certificate is `User:` followed by its subject in RFC 2253 form (`CN=alice,O=corp`),
//! as Kafka's default principal builder names it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientAuth, SecuritySettings};

/// The server side of every TLS listener.
pub fn server_config(security: &SecuritySettings) -> Result<Arc<rustls::ServerConfig>, String> {
    let keystore = security
        .ssl_keystore_location
        .as_deref()
        .ok_or("ssl.keystore.location is not set")?;
    let chain = certificates(keystore, "ssl.keystore.location")?;
    let key = PrivateKeyDer::from_pem_file(keystore)
        .map_err(|e| format!("ssl.keystore.location {}: no private key: {e}", keystore.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?;
    let auth = security.client_auth().map_err(|e| e.to_string())?;
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let truststore = security
                .ssl_truststore_location
                .as_deref()
                .ok_or("ssl.truststore.location is not set")?;
            let mut roots = rustls::RootCertStore::empty();
            for ca in certificates(truststore, "ssl.truststore.location")? {
                roots
                    .add(ca)
                    .map_err(|e| format!("ssl.truststore.location {}: {e}", truststore.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("ssl.truststore.location {}: {e}", truststore.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("ssl.keystore.location {}: {e}", keystore.display()))?;
    Ok(Arc::new(config))
}

fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{key} {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{key} {}: no certificate in it", path.display()));
    }
    Ok(certificates)
}

/// The principal name of a client certificate (its end-entity one): its subject in RFC 2253
/// form, the last RDN first; None if it does not parse.
pub fn subject_name(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = parsed
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type();
                    let name = x509_parser::objects::oid2abbrev(oid, registry)
                        .map(str::to_string)
                        .unwrap_or_else(|_| oid.to_id_string());
                    let value = attribute.as_str().map_or_else(|_| "#".to_string(), escape);
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_rfc_2253_asks() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#x "), "\\#x\\ ");
    }
}
