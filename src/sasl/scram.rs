//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side: credentials are
//! kept as Kafka keeps them (salt, iterations, StoredKey, ServerKey), never the password; a
//! client proves it knows the password without sending it.
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<salt, base64>,i=<iterations>
//! client-final  c=biws,r=<nonce>,p=<proof, base64>
//! server-final  v=<server signature, base64>
//! ```

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

/// The hash a SCRAM mechanism is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        }
    }
    fn len(self) -> usize {
        match self {
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }
    /// Kafka's smallest iteration count for each (`ScramMechanism.minIterations`).
    pub fn min_iterations(self) -> u32 {
        4096
    }
}

/// What the broker keeps of one user for one SCRAM mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScramCredential {{ iterations: {}, .. }}", self.iterations)
    }
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hash.hmac(), key), data).as_ref().to_vec()
}

impl ScramCredential {
    /// The credential of `password` with `salt` and `iterations`.
    pub fn derive(hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> ScramCredential {
        let mut salted = vec![0u8; hash.len()];
        let rounds = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one");
        pbkdf2::derive(hash.pbkdf2(), rounds, salt, password.as_bytes(), &mut salted);
        ScramCredential::from_salted(hash, &salted, salt, iterations)
    }

    /// The credential of a salted password (what AlterUserScramCredentials sends).
    pub fn from_salted(hash: ScramHash, salted: &[u8], salt: &[u8], iterations: u32) -> ScramCredential {
        let client_key = hmac(hash, salted, b"Client Key");
        let stored_key = digest::digest(hash.digest(), &client_key).as_ref().to_vec();
        let server_key = hmac(hash, salted, b"Server Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key,
            server_key,
        }
    }
}

/// Why an exchange failed (the client is told only that authentication failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("unknown user or wrong password")]
    BadCredentials,
}

/// One exchange on the server side, between its two client messages.
#[derive(Debug)]
pub struct ScramServer {
    hash: ScramHash,
    user: String,
    credential: Option<ScramCredential>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Undoes SCRAM's escaping of `,` and `=` in a user name (`=2C`, `=3D`).
fn unescape_user(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in the user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ScramServer {
    /// Reads the client-first message and answers the server-first one. `lookup` finds the
    /// user's credential; an unknown user gets a made-up salt, so it fails only at the proof,
    /// as a wrong password does.
    pub fn start(
        hash: ScramHash,
        client_first: &[u8],
        server_nonce: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        let message = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (gs2, bare) = match message.strip_prefix("n,").or_else(|| message.strip_prefix("y,")) {
            Some(after) => {
                let (authzid, bare) = after.split_once(',').ok_or(ScramError::Malformed("no GS2 header"))?;
                (authzid, bare)
            }
            None if message.starts_with("p=") => return Err(ScramError::ChannelBinding),
            None => return Err(ScramError::Malformed("no GS2 header")),
        };
        let _ = gs2;
        let mut user = None;
        let mut client_nonce = None;
        for attribute in bare.split(',') {
            if let Some(value) = attribute.strip_prefix("n=") {
                user = Some(unescape_user(value)?);
            } else if let Some(value) = attribute.strip_prefix("r=") {
                client_nonce = Some(value.to_string());
            }
        }
        let user = user.ok_or(ScramError::Malformed("no user name"))?;
        let client_nonce = client_nonce
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("no nonce"))?;
        let credential = lookup(&user);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                digest::digest(&digest::SHA256, user.as_bytes()).as_ref()[..16].to_vec(),
                hash.min_iterations(),
            ),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(salt));
        let server = ScramServer {
            hash,
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((server, server_first.into_bytes()))
    }

    /// The user the exchange is for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks the client-final message's proof; the server-final message when it holds.
    pub fn finish(self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let message = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = message.rsplit_once(",p=").ok_or(ScramError::Malformed("no proof"))?;
        let mut nonce = None;
        let mut binding = None;
        for attribute in without_proof.split(',') {
            if let Some(value) = attribute.strip_prefix("r=") {
                nonce = Some(value);
            } else if let Some(value) = attribute.strip_prefix("c=") {
                binding = Some(value);
            }
        }
        // Without channel binding the GS2 header is "n,," or "y,,": "biws" or "eSws".
        if !matches!(binding, Some("biws") | Some("eSws")) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("the nonce is not the exchange's"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let credential = self.credential.ok_or(ScramError::BadCredentials)?;
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let client_signature = hmac(self.hash, &credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::BadCredentials);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let stored = digest::digest(self.hash.digest(), &client_key);
        if !constant_time_eq(stored.as_ref(), &credential.stored_key) {
            return Err(ScramError::BadCredentials);
        }
        let server_signature = hmac(self.hash, &credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

/// The salted password (PBKDF2 of the password), what AlterUserScramCredentials carries.
pub fn salted_password(hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut salted = vec![0u8; hash.len()];
    let rounds = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one");
    pbkdf2::derive(hash.pbkdf2(), rounds, salt, password.as_bytes(), &mut salted);
    salted
}

/// One exchange on the client side (`sluice`'s own subcommands), between its two server
/// messages.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    nonce: String,
    client_first_bare: String,
    /// Set by [`ScramClient::answer`]: the signature the server must prove itself with.
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// The client-first message for `user`, with a fresh `nonce`.
    pub fn start(hash: ScramHash, user: &str, password: &str, nonce: &str) -> (ScramClient, Vec<u8>) {
        let escaped = user.replace('=', "=3D").replace(',', "=2C");
        let bare = format!("n={escaped},r={nonce}");
        let client = ScramClient {
            hash,
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: bare.clone(),
            server_signature: None,
        };
        (client, format!("n,,{bare}").into_bytes())
    }

    /// Reads the server-first message and answers the client-final one, with the proof.
    pub fn answer(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let message = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in message.split(',') {
            if let Some(value) = attribute.strip_prefix("r=") {
                nonce = Some(value);
            } else if let Some(value) = attribute.strip_prefix("s=") {
                salt = Some(
                    BASE64
                        .decode(value)
                        .map_err(|_| ScramError::Malformed("salt is not base64"))?,
                );
            } else if let Some(value) = attribute.strip_prefix("i=") {
                iterations = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| ScramError::Malformed("bad iteration count"))?,
                );
            }
        }
        let nonce = nonce
            .filter(|n| n.starts_with(&self.nonce) && n.len() > self.nonce.len())
            .ok_or(ScramError::Malformed("the server's nonce does not extend ours"))?;
        let salt = salt.ok_or(ScramError::Malformed("no salt"))?;
        let iterations = iterations
            .filter(|i| *i >= self.hash.min_iterations())
            .ok_or(ScramError::Malformed("too few or no iterations"))?;
        let salted = salted_password(self.hash, &self.password, &salt, iterations);
        let client_key = hmac(self.hash, &salted, b"Client Key");
        let stored_key = digest::digest(self.hash.digest(), &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{message},{without_proof}", self.client_first_bare);
        let signature = hmac(self.hash, stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_key = hmac(self.hash, &salted, b"Server Key");
        self.server_signature = Some(hmac(self.hash, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server knew the credential too.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let message = std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let signature = message
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or(ScramError::Malformed("no server signature"))?;
        match &self.server_signature {
            Some(expected) if constant_time_eq(expected, &signature) => Ok(()),
            _ => Err(ScramError::BadCredentials),
        }
    }
}

/// Equality that takes as long whatever the bytes (no early exit on the first difference).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 example of RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc_7677_exchange() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::derive(ScramHash::Sha256, "pencil", &salt, 4096);
        let (server, first) = ScramServer::start(
            ScramHash::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            |user| (user == "user").then(|| credential.clone()),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let last = server
            .finish(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn the_client_side_makes_rfc_7677s_messages() {
        let (mut client, first) = ScramClient::start(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = client
            .answer(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").is_ok());
        assert!(
            client.verify(b"v=AAAA").is_err(),
            "a server that does not know the password"
        );
        let (mut short, _) = ScramClient::start(ScramHash::Sha256, "user", "pencil", "abc");
        assert!(short.answer(b"r=abcdef,s=AAAA,i=1").is_err(), "too few iterations");
        assert!(
            short.answer(b"r=other,s=AAAA,i=4096").is_err(),
            "a nonce not extending ours"
        );
    }

    #[test]
    fn a_wrong_proof_or_an_unknown_user_fails() {
        let credential = ScramCredential::derive(ScramHash::Sha512, "secret", b"salt", 4096);
        let (server, _) = ScramServer::start(ScramHash::Sha512, b"n,,n=alice,r=abc", "xyz", |_| {
            Some(credential.clone())
        })
        .unwrap();
        let wrong = format!("c=biws,r=abcxyz,p={}", BASE64.encode([0u8; 64]));
        assert_eq!(server.finish(wrong.as_bytes()), Err(ScramError::BadCredentials));
        let (server, _) = ScramServer::start(ScramHash::Sha512, b"n,,n=bob,r=abc", "xyz", |_| None).unwrap();
        assert_eq!(server.finish(wrong.as_bytes()), Err(ScramError::BadCredentials));
        assert_eq!(unescape_user("a=2Cb=3D").unwrap(), "a,b=");
        assert!(ScramServer::start(ScramHash::Sha256, b"p=tls-unique,,n=a,r=b", "x", |_| None).is_err());
    }
}
