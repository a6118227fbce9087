//! Certificates for the TLS tests, made by the tests (rcgen): a CA, a broker certificate for
//! 127.0.0.1 signed by it, and a client one for `CN=alice,O=Sluice`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A CA, a broker certificate for 127.0.0.1 signed by it, and a client one for
/// `CN=alice,O=Sluice`, as PEM files in `dir`.
pub struct Certificates {
    pub ca: PathBuf,
    pub keystore: PathBuf,
    pub client_certificate: PathBuf,
    pub client_key: PathBuf,
}

pub fn certificates(dir: &Path) -> Certificates {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Sluice test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let broker_key = KeyPair::generate().unwrap();
    let mut broker_params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    broker_params
        .distinguished_name
        .push(DnType::CommonName, "sluice-broker");
    broker_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let broker = broker_params.signed_by(&broker_key, &ca, &ca_key).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    // Subject RDNs in the usual order, O then CN (RFC 2253 names them last first).
    client_params.distinguished_name = DistinguishedName::new();
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "Sluice");
    client_params.distinguished_name.push(DnType::CommonName, "alice");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Certificates {
        ca: write("ca.pem", ca.pem()),
        keystore: write("broker.pem", format!("{}{}", broker.pem(), broker_key.serialize_pem())),
        client_certificate: write("client.pem", client.pem()),
        client_key: write("client.key", client_key.serialize_pem()),
    }
}

/// A broker on `listeners` (PLAINTEXT first, for the harness) whose config file is
/// `config(&certificates)`; the directory holds the certificates and the config.
pub fn secured_broker(
    listeners: &str,
    config: impl FnOnce(&Certificates) -> String,
) -> (super::Broker, Certificates, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let certificates = certificates(dir.path());
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, config(&certificates)).unwrap();
    let broker = super::Broker::start_with(&["--config", path.to_str().unwrap(), "--listeners", listeners]);
    (broker, certificates, dir)
}
