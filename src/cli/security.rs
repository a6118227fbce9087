//! How the client subcommands reach a secured broker: `--security-protocol`, `--sasl-mechanism`,
//! `--sasl-username`, `--sasl-password` and `--ca`, or librdkafka's names for them with
//! `-X key=value` (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`,
//! `ssl.ca.location`). Every connection a subcommand opens ([`crate::cli::client::Client`])
//! is secured the same way: TLS first when the protocol says so (the broker's certificate
//! checked against `--ca`), then the SASL exchange (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) that
//! [`crate::cli::client::Client::connect`] runs with [`login`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, bail, Context};

use crate::config::listeners::SecurityProtocol;
use crate::sasl::Mechanism;

#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Security")]
pub struct SecurityArgs {
    /// PLAINTEXT (the default), SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, global = true, value_name = "PROTOCOL")]
    security_protocol: Option<String>,
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (the default).
    #[arg(long, global = true, value_name = "MECHANISM")]
    sasl_mechanism: Option<String>,
    /// The SASL user.
    #[arg(long, global = true, value_name = "USER")]
    sasl_username: Option<String>,
    /// The SASL user's password.
    #[arg(long, global = true, value_name = "PASSWORD")]
    sasl_password: Option<String>,
    /// A PEM bundle of the CAs that sign the broker's certificate.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// librdkafka's name for any of the above: `-X security.protocol=SASL_SSL`.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE", value_parser = super::key_value)]
    set: Vec<(String, String)>,
}

impl SecurityArgs {
    /// Whether any flag was given (the broker's `serve` takes none).
    pub fn is_set(&self) -> bool {
        self.security_protocol.is_some()
            || self.sasl_mechanism.is_some()
            || self.sasl_username.is_some()
            || self.sasl_password.is_some()
            || self.ca.is_some()
            || !self.set.is_empty()
    }

    /// The settings, flags winning over `-X`.
    fn resolve(&self) -> anyhow::Result<Security> {
        let mut protocol = None;
        let (mut mechanism, mut user, mut password, mut ca) = (None, None, None, None);
        for (key, value) in &self.set {
            match key.as_str() {
                "security.protocol" => protocol = Some(value.clone()),
                "sasl.mechanism" | "sasl.mechanisms" => mechanism = Some(value.clone()),
                "sasl.username" => user = Some(value.clone()),
                "sasl.password" => password = Some(value.clone()),
                "ssl.ca.location" => ca = Some(PathBuf::from(value)),
                other => bail!("-X {other}: sluice's clients know security.protocol, sasl.mechanism, sasl.username, sasl.password and ssl.ca.location"),
            }
        }
        let protocol = self.security_protocol.clone().or(protocol);
        let protocol = match protocol {
            None => SecurityProtocol::Plaintext,
            Some(name) => SecurityProtocol::parse(&name.to_ascii_uppercase()).ok_or_else(|| {
                anyhow!("--security-protocol {name}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            })?,
        };
        let ca = self.ca.clone().or(ca);
        let tls = if protocol.tls() {
            let ca = ca.ok_or_else(|| {
                anyhow!(
                    "{} needs --ca: the CAs that sign the broker's certificate",
                    protocol.name()
                )
            })?;
            Some(tls_config(&ca)?)
        } else {
            None
        };
        let sasl = if protocol.sasl() {
            let name = self
                .sasl_mechanism
                .clone()
                .or(mechanism)
                .unwrap_or_else(|| "SCRAM-SHA-512".to_string());
            let mechanism = Mechanism::parse(&name.to_ascii_uppercase())
                .ok_or_else(|| anyhow!("--sasl-mechanism {name}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))?;
            let user = self
                .sasl_username
                .clone()
                .or(user)
                .ok_or_else(|| anyhow!("SASL needs --sasl-username"))?;
            let password = self
                .sasl_password
                .clone()
                .or(password)
                .ok_or_else(|| anyhow!("SASL needs --sasl-password"))?;
            Some(Login {
                mechanism,
                user,
                password,
            })
        } else {
            None
        };
        Ok(Security { tls, sasl })
    }
}

fn tls_config(ca: &std::path::Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))? {
        let certificate = certificate.with_context(|| format!("a certificate in {}", ca.display()))?;
        roots
            .add(certificate)
            .with_context(|| format!("a CA in {}", ca.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Who the subcommand logs in as with SASL.
pub struct Login {
    pub mechanism: Mechanism,
    pub user: String,
    pub password: String,
}

/// How every connection of this process is secured.
#[derive(Default)]
pub struct Security {
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<Login>,
}

/// Set once, before the subcommand opens its first connection.
static SECURITY: OnceLock<Security> = OnceLock::new();

/// Takes the subcommand's flags for every connection it will open.
pub fn install(args: &SecurityArgs) -> anyhow::Result<()> {
    let security = args.resolve()?;
    SECURITY
        .set(security)
        .map_err(|_| anyhow!("the client security settings are set once"))
}

fn current() -> &'static Security {
    SECURITY.get_or_init(Security::default)
}

/// A connection to a broker: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    /// The connection as a writing half and a reading half, for a thread each (the bench's
    /// pipelined producers): a TCP socket's two handles, or one TLS session both lock.
    pub fn split(self) -> std::io::Result<(Box<dyn Write + Send>, Box<dyn Read + Send>)> {
        match self {
            Stream::Plain(tcp) => {
                let reading = tcp.try_clone()?;
                Ok((Box::new(tcp), Box::new(reading)))
            }
            Stream::Tls(stream) => {
                let (mut connection, tcp) = stream.into_parts();
                // A whole request is sealed at once (it is sent without the lock): the
                // session's buffer is bounded by the request, not by rustls's default.
                connection.set_buffer_limit(None);
                let session = Arc::new(std::sync::Mutex::new(connection));
                let reading = TlsReading {
                    session: session.clone(),
                    socket: tcp.try_clone()?,
                    received: Vec::new(),
                    consumed: 0,
                };
                Ok((Box::new(TlsWriting { session, socket: tcp }), Box::new(reading)))
            }
        }
    }
}

/// The writing half of a shared TLS session: records are encrypted under the lock, then
/// sent without it, so the reading half is never kept from decrypting by a full socket.
/// The reading half never sends: what the session has to say (an alert, a key update) goes
/// out with the next write here.
struct TlsWriting {
    session: Arc<std::sync::Mutex<rustls::ClientConnection>>,
    socket: TcpStream,
}

impl Write for TlsWriting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut sealed = Vec::with_capacity(buf.len() + 64);
        {
            let mut session = self
                .session
                .lock()
                .map_err(|_| std::io::Error::other("TLS session poisoned"))?;
            session.writer().write_all(buf)?;
            while session.wants_write() {
                session.write_tls(&mut sealed)?;
            }
        }
        self.socket.write_all(&sealed)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.socket.flush()
    }
}

/// The reading half: waits on the socket without the lock, then decrypts under it.
struct TlsReading {
    session: Arc<std::sync::Mutex<rustls::ClientConnection>>,
    socket: TcpStream,
    /// Bytes read off the socket the session has not taken yet (its plaintext buffer was
    /// full), from `consumed` on.
    received: Vec<u8>,
    consumed: usize,
}

impl Read for TlsReading {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            {
                let mut session = self
                    .session
                    .lock()
                    .map_err(|_| std::io::Error::other("TLS session poisoned"))?;
                match session.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.consumed < self.received.len() {
                    let mut rest = &self.received[self.consumed..];
                    let taken = session.read_tls(&mut rest)?;
                    self.consumed += taken;
                    session.process_new_packets().map_err(std::io::Error::other)?;
                    continue;
                }
            }
            self.received.resize(64 * 1024, 0);
            let n = self.socket.read(&mut self.received)?;
            if n == 0 {
                return Ok(0);
            }
            self.received.truncate(n);
            self.consumed = 0;
        }
    }
}

/// `tcp` to `address`, with TLS when the settings ask for it.
pub fn wrap(tcp: TcpStream, address: &str) -> anyhow::Result<Stream> {
    let Some(tls) = &current().tls else {
        return Ok(Stream::Plain(tcp));
    };
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .with_context(|| format!("{host} is not a name TLS can check a certificate against"))?;
    let connection = rustls::ClientConnection::new(tls.clone(), name).context("starting TLS")?;
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(connection, tcp))))
}

/// Who the subcommand logs in as, when the settings ask for SASL.
pub fn login() -> Option<&'static Login> {
    current().sasl.as_ref()
}
