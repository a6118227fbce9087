//! SASL authentication: the mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), the users'
//! secrets, and one exchange's steps. The protocol around it (SaslHandshake,
//! SaslAuthenticate, the unframed v0 flow, what a session may do before it authenticates) is
//! in [`crate::kafka::sasl`].
//!
//! Secrets: users come from the config's `[sasl.users]` table; at start each password is
//! turned into its SCRAM credentials (random salt, 4096 iterations, StoredKey and ServerKey,
//! as Kafka stores them) and a salted SHA-512 digest for PLAIN, and the password itself is
//! dropped. A PLAIN check costs one digest, not a PBKDF2 run, so failed logins cannot tie up a
//! shard.

pub mod scram;

use std::collections::{BTreeMap, HashMap};

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use scram::{ScramCredential, ScramHash, ScramServer};

/// A SASL mechanism Sluice serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [Mechanism::Plain, Mechanism::ScramSha256, Mechanism::ScramSha512];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's `ScramMechanism` type code (1 SCRAM-SHA-256, 2 SCRAM-SHA-512); PLAIN has none.
    pub fn scram_type(self) -> Option<i8> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(1),
            Mechanism::ScramSha512 => Some(2),
        }
    }

    pub fn from_scram_type(code: i8) -> Option<Mechanism> {
        match code {
            1 => Some(Mechanism::ScramSha256),
            2 => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }

    fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha512 => Some(ScramHash::Sha512),
        }
    }
}

/// `sasl.enabled.mechanisms`: a comma-separated list of mechanism names.
pub fn parse_mechanisms(list: &str) -> Result<Vec<Mechanism>, String> {
    let mechanisms = list
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            Mechanism::parse(m)
                .ok_or_else(|| format!("{m}: not a mechanism Sluice serves (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if mechanisms.is_empty() {
        return Err("names no mechanism".into());
    }
    Ok(mechanisms)
}

/// The iterations SCRAM credentials made at start use (Kafka's minimum and common default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// What is kept of one user: never the password.
#[derive(Clone)]
pub struct UserSecrets {
    plain_salt: Vec<u8>,
    /// SHA-512 of the salt then the password.
    plain_digest: Vec<u8>,
    sha256: ScramCredential,
    sha512: ScramCredential,
}

impl UserSecrets {
    pub fn from_password(password: &str) -> UserSecrets {
        let salt = |n: usize| random_bytes(n);
        let plain_salt = salt(16);
        UserSecrets {
            plain_digest: plain_digest(&plain_salt, password),
            plain_salt,
            sha256: ScramCredential::derive(ScramHash::Sha256, password, &salt(32), SCRAM_ITERATIONS),
            sha512: ScramCredential::derive(ScramHash::Sha512, password, &salt(32), SCRAM_ITERATIONS),
        }
    }
}

fn plain_digest(salt: &[u8], password: &str) -> Vec<u8> {
    let mut context = digest::Context::new(&digest::SHA512);
    context.update(salt);
    context.update(password.as_bytes());
    context.finish().as_ref().to_vec()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes
}

/// The config's users' secrets, fixed at start and shared by all shards (users managed
/// online live in the metadata, [`Users::online`]).
#[derive(Default)]
pub struct Credentials {
    users: HashMap<String, UserSecrets>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ {} users }}", self.users.len())
    }
}

impl Credentials {
    /// Users and their passwords (the config's table), turned into secrets.
    pub fn from_passwords(passwords: &BTreeMap<String, String>) -> Credentials {
        let users = passwords
            .iter()
            .map(|(user, password)| (user.clone(), UserSecrets::from_password(password)))
            .collect();
        Credentials { users }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `user` is defined in the config.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The users defined in the config.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.users.keys().cloned().collect();
        names.sort();
        names
    }

    fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
        let secrets = self.users.get(user)?;
        Some(match hash {
            ScramHash::Sha256 => secrets.sha256.clone(),
            ScramHash::Sha512 => secrets.sha512.clone(),
        })
    }

    fn check_plain(&self, user: &str, password: &str) -> bool {
        self.users.get(user).is_some_and(|secrets| {
            scram::constant_time_eq(&plain_digest(&secrets.plain_salt, password), &secrets.plain_digest)
        })
    }
}

/// Where an exchange looks users up: the credentials managed online (the metadata's) first,
/// then the config's users.
pub struct Users<'a> {
    pub config: &'a Credentials,
    pub online: &'a BTreeMap<String, BTreeMap<String, crate::metadata::configs::StoredScram>>,
}

impl Users<'_> {
    fn scram(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
        let mechanism = match hash {
            ScramHash::Sha256 => Mechanism::ScramSha256,
            ScramHash::Sha512 => Mechanism::ScramSha512,
        };
        if let Some(stored) = self.online.get(user).and_then(|m| m.get(mechanism.name())) {
            return from_stored(stored);
        }
        self.config.scram(user, hash)
    }
}

/// A persisted credential as the exchange uses it; None if it does not decode.
pub fn from_stored(stored: &crate::metadata::configs::StoredScram) -> Option<ScramCredential> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    Some(ScramCredential {
        salt: b64.decode(&stored.salt).ok()?,
        iterations: stored.iterations,
        stored_key: b64.decode(&stored.stored_key).ok()?,
        server_key: b64.decode(&stored.server_key).ok()?,
    })
}

/// What is persisted of a credential an AlterUserScramCredentials upsert sets: the client sends
/// the salt and the salted password (never the password); the keys are derived here.
pub fn stored_from_salted(
    mechanism: Mechanism,
    salt: &[u8],
    salted_password: &[u8],
    iterations: u32,
) -> Option<crate::metadata::configs::StoredScram> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let credential = ScramCredential::from_salted(mechanism.scram_hash()?, salted_password, salt, iterations);
    Some(crate::metadata::configs::StoredScram {
        salt: b64.encode(&credential.salt),
        iterations,
        stored_key: b64.encode(&credential.stored_key),
        server_key: b64.encode(&credential.server_key),
    })
}

/// What a step of an exchange comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send these bytes (possibly none) last.
    Done { user: String, response: Vec<u8> },
    /// Refused: why (for the log; the client is told only that authentication failed).
    Failed(String),
}

/// One authentication in progress.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    /// A SCRAM exchange after its first message.
    scram: Option<ScramServer>,
}

impl Exchange {
    pub fn new(mechanism: Mechanism) -> Exchange {
        Exchange { mechanism, scram: None }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client's next message.
    pub fn step(&mut self, message: &[u8], users: &Users<'_>) -> Step {
        match (self.mechanism.scram_hash(), self.scram.take()) {
            (None, _) => plain(message, users.config),
            (Some(hash), None) => {
                let nonce = base64_nonce();
                match ScramServer::start(hash, message, &nonce, |user| users.scram(user, hash)) {
                    Ok((server, first)) => {
                        self.scram = Some(server);
                        Step::Continue(first)
                    }
                    Err(e) => Step::Failed(e.to_string()),
                }
            }
            (Some(_), Some(server)) => {
                let user = server.user().to_string();
                match server.finish(message) {
                    Ok(last) => Step::Done { user, response: last },
                    Err(e) => Step::Failed(format!("user {user:?}: {e}")),
                }
            }
        }
    }
}

/// A fresh SCRAM nonce: 24 random bytes in base64.
pub fn base64_nonce() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(random_bytes(24))
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL password`; an authorization id other than the
/// user's own is refused, as Kafka does.
fn plain(message: &[u8], credentials: &Credentials) -> Step {
    let mut parts = message.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Step::Failed("malformed PLAIN message".into());
    };
    let (Ok(authzid), Ok(user), Ok(password)) = (
        std::str::from_utf8(authzid),
        std::str::from_utf8(user),
        std::str::from_utf8(password),
    ) else {
        return Step::Failed("PLAIN message is not UTF-8".into());
    };
    if !authzid.is_empty() && authzid != user {
        return Step::Failed(format!("user {user:?} asked to act as {authzid:?}"));
    }
    if user.is_empty() || !credentials.check_plain(user, password) {
        return Step::Failed(format!("user {user:?}: unknown user or wrong password"));
    }
    Step::Done {
        user: user.to_string(),
        response: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_the_password_and_the_authorization_id() {
        let config = Credentials::from_passwords(&[("alice".to_string(), "s3cret".to_string())].into());
        let online = BTreeMap::new();
        let credentials = Users {
            config: &config,
            online: &online,
        };
        let mut exchange = Exchange::new(Mechanism::Plain);
        assert_eq!(
            exchange.step(b"\0alice\0s3cret", &credentials),
            Step::Done {
                user: "alice".into(),
                response: Vec::new()
            }
        );
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0s3cret",
            b"bob\0alice\0s3cret",
            b"alice",
            b"\0\0",
        ] {
            assert!(matches!(
                Exchange::new(Mechanism::Plain).step(bad, &credentials),
                Step::Failed(_)
            ));
        }
        assert!(matches!(
            Exchange::new(Mechanism::Plain).step(b"alice\0alice\0s3cret", &credentials),
            Step::Done { .. }
        ));
    }

    #[test]
    fn mechanisms_parse() {
        assert_eq!(
            parse_mechanisms("PLAIN, SCRAM-SHA-512").unwrap(),
            vec![Mechanism::Plain, Mechanism::ScramSha512]
        );
        assert!(parse_mechanisms("GSSAPI").is_err());
        assert!(parse_mechanisms("").is_err());
    }
}
