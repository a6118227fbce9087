//! SASL: librdkafka over SASL_SSL with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN against users
//! from the config's `[sasl.users]`, kafka-python over SASL_SSL with SCRAM, a wrong password
//! refused (and counted); in the raw
//! protocol, nothing but ApiVersions and the SASL exchange served before authentication, the
//! unframed (SaslHandshake v0) flow, SASL_AUTHENTICATION_FAILED then a closed connection, and
//! `connections.max.reauth.ms` (KIP-368): the session's lifetime reported, re-authentication on
//! the same connection, and an expired session closed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::tls::secured_broker;
use common::{assign, consume, send, Broker};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Offset;

const WAIT: Duration = Duration::from_secs(30);
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// A broker with PLAINTEXT (first, for the harness), SASL_SSL and SASL_PLAINTEXT listeners,
/// users admin and alice, and `extra` config lines.
fn sasl_broker(extra: &str) -> (Broker, common::tls::Certificates, tempfile::TempDir) {
    secured_broker(
        "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        |certificates| {
            format!(
                "\"ssl.keystore.location\" = {:?}\n{extra}\n[sasl.users]\nadmin = \"admin-secret\"\nalice = \"alice-secret\"\n",
                certificates.keystore
            )
        },
    )
}

fn sasl_ssl_client(
    broker: &Broker,
    certificates: &common::tls::Certificates,
    mechanism: &str,
    user: &str,
    password: &str,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.listener("SASL_SSL"))
        .set("security.protocol", "sasl_ssl")
        .set("ssl.ca.location", certificates.ca.to_str().unwrap())
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    config
}

#[test]
fn librdkafka_authenticates_with_scram_and_plain_over_tls() {
    let (broker, certificates, _dir) = sasl_broker("");
    broker.create_topic("sasl", 1);
    for (n, mechanism) in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"].into_iter().enumerate() {
        let producer: BaseProducer = sasl_ssl_client(&broker, &certificates, mechanism, "alice", "alice-secret")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        for i in 0..10 {
            send(
                &producer,
                BaseRecord::to("sasl")
                    .key(b"k".as_slice())
                    .payload(format!("{mechanism}-{i}").as_bytes()),
            );
        }
        producer.flush(WAIT).unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        let consumer: BaseConsumer = sasl_ssl_client(&broker, &certificates, mechanism, "admin", "admin-secret")
            .set("group.id", "unused")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        assign(&consumer, "sasl", 1, Offset::Beginning);
        let values = consume(&consumer, 10 * (n + 1), |m| {
            String::from_utf8(m.payload().unwrap().to_vec()).unwrap()
        });
        assert_eq!(
            values.iter().filter(|v| v.starts_with(mechanism)).count(),
            10,
            "{mechanism}"
        );
    }
    assert_eq!(broker.counter("authentication_failures_total"), 0);
}

/// A second protocol implementation: kafka-python over SASL_SSL with SCRAM.
#[test]
fn kafka_python_authenticates_over_sasl_ssl() {
    let (broker, certificates, _dir) = sasl_broker("");
    broker.create_topic("python-sasl", 1);
    common::run_python(
        "sasl_ssl.py",
        &[
            broker.listener("SASL_SSL").as_str(),
            certificates.ca.to_str().unwrap(),
            "python-sasl",
        ],
    );
}

#[test]
fn a_wrong_password_is_refused_and_counted() {
    let (broker, certificates, _dir) = sasl_broker("");
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let producer: BaseProducer = sasl_ssl_client(&broker, &certificates, mechanism, "alice", "wrong")
            .create()
            .unwrap();
        assert!(
            producer.client().fetch_metadata(None, Duration::from_secs(5)).is_err(),
            "{mechanism}: a wrong password is refused"
        );
    }
    let deadline = Instant::now() + WAIT;
    while broker.counter("authentication_failures_total") < 2 {
        assert!(Instant::now() < deadline, "the refusals were not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

fn call<Q: kafka_protocol::protocol::Encodable, R: kafka_protocol::protocol::Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &Q,
) -> R {
    stream.write_all(&common::raw::request(key, version, 7, body)).unwrap();
    common::raw::response(stream, key, version, 7)
}

/// Whether the broker closed `stream` (after any answer in flight).
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

fn handshake(stream: &mut TcpStream, version: i16, mechanism: &'static str) -> SaslHandshakeResponse {
    call(
        stream,
        ApiKey::SaslHandshake,
        version,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    )
}

fn authenticate(stream: &mut TcpStream, version: i16, message: &'static [u8]) -> SaslAuthenticateResponse {
    call(
        stream,
        ApiKey::SaslAuthenticate,
        version,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(message)),
    )
}

fn metadata(stream: &mut TcpStream) -> MetadataResponse {
    call(stream, ApiKey::Metadata, 12, &MetadataRequest::default())
}

#[test]
fn nothing_but_the_sasl_exchange_is_served_before_authentication() {
    let (broker, _certificates, _dir) = sasl_broker("\"sasl.enabled.mechanisms\" = \"PLAIN,SCRAM-SHA-512\"");
    let addr = broker.listener("SASL_PLAINTEXT");

    // Metadata before authenticating closes the connection unanswered.
    let mut stream = connect(&addr);
    stream
        .write_all(&common::raw::request(
            ApiKey::Metadata,
            12,
            1,
            &MetadataRequest::default(),
        ))
        .unwrap();
    assert!(closed(&mut stream), "a request before authentication is not served");

    // A mechanism that is not enabled is refused with the enabled ones, then closed.
    let mut stream = connect(&addr);
    let refused = handshake(&mut stream, 1, "SCRAM-SHA-256");
    assert_eq!(refused.error_code, UNSUPPORTED_SASL_MECHANISM);
    let offered: Vec<&str> = refused.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-512"]);
    assert!(closed(&mut stream));

    // Framed PLAIN: a wrong password is answered SASL_AUTHENTICATION_FAILED, then closed.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, 1, "PLAIN").error_code, 0);
    let failed = authenticate(&mut stream, 2, b"\0alice\0nope");
    assert_eq!(failed.error_code, SASL_AUTHENTICATION_FAILED);
    assert!(failed.error_message.is_some());
    assert!(closed(&mut stream));

    // The right one, and the session is served.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, 1, "PLAIN").error_code, 0);
    let done = authenticate(&mut stream, 2, b"\0alice\0alice-secret");
    assert_eq!((done.error_code, done.session_lifetime_ms), (0, 0));
    assert_eq!(
        metadata(&mut stream).brokers[0].port.to_string(),
        addr.rsplit(':').next().unwrap()
    );

    // The unframed flow (SaslHandshake v0): the message as a bare frame, an empty answer.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, 0, "PLAIN").error_code, 0);
    stream.write_all(&common::raw::frame(b"\0admin\0admin-secret")).unwrap();
    let answer = common::raw::read_response(&mut stream).expect("the unframed answer");
    assert!(answer.is_empty());
    assert_eq!(metadata(&mut stream).brokers.len(), 1);
}

#[test]
fn sessions_authenticate_again_within_connections_max_reauth_ms() {
    let (broker, _certificates, _dir) = sasl_broker("\"connections.max.reauth.ms\" = 1500");
    let addr = broker.listener("SASL_PLAINTEXT");
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, 1, "PLAIN").error_code, 0);
    let done = authenticate(&mut stream, 1, b"\0alice\0alice-secret");
    assert_eq!((done.error_code, done.session_lifetime_ms), (0, 1500));
    // Again on the same connection, as the same user: a new lifetime.
    assert_eq!(handshake(&mut stream, 1, "PLAIN").error_code, 0);
    let again = authenticate(&mut stream, 1, b"\0alice\0alice-secret");
    assert_eq!((again.error_code, again.session_lifetime_ms), (0, 1500));
    assert_eq!(metadata(&mut stream).brokers.len(), 1);
    // A session that lets its lifetime pass is closed at its next request.
    let deadline = Instant::now() + WAIT;
    loop {
        stream
            .write_all(&common::raw::request(
                ApiKey::Metadata,
                12,
                9,
                &MetadataRequest::default(),
            ))
            .unwrap();
        match common::raw::read_response(&mut stream) {
            None => break,
            Some(_) => {
                assert!(Instant::now() < deadline, "the expired session was not closed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // Re-authenticating as another user is refused.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, 1, "PLAIN").error_code, 0);
    assert_eq!(authenticate(&mut stream, 1, b"\0alice\0alice-secret").error_code, 0);
    assert_eq!(handshake(&mut stream, 1, "PLAIN").error_code, 0);
    assert_eq!(
        authenticate(&mut stream, 1, b"\0admin\0admin-secret").error_code,
        SASL_AUTHENTICATION_FAILED
    );
    assert!(closed(&mut stream));
}

/// AlterUserScramCredentials and DescribeUserScramCredentials: a user added online
/// authenticates with librdkafka, survives a restart, and is deleted; Kafka's refusals.
#[test]
fn scram_users_are_managed_online_and_survive_a_restart() {
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::{
        AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
        DescribeUserScramCredentialsResponse,
    };
    const RESOURCE_NOT_FOUND: i16 = 91;
    const DUPLICATE_RESOURCE: i16 = 92;
    const UNACCEPTABLE_CREDENTIAL: i16 = 93;
    let (mut broker, certificates, _dir) = sasl_broker("");
    let salt = b"carol's salt".to_vec();
    let mut salted = vec![0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(8192).unwrap(),
        &salt,
        b"carol-secret",
        &mut salted,
    );
    let upsert = |user: &'static str, iterations: i32| {
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str(user))
            .with_mechanism(1)
            .with_iterations(iterations)
            .with_salt(Bytes::from(salt.clone()))
            .with_salted_password(Bytes::from(salted.clone()))
    };
    let alter = |broker: &Broker, request: AlterUserScramCredentialsRequest| -> Vec<(String, i16)> {
        let answer: AlterUserScramCredentialsResponse =
            common::raw::call(broker, ApiKey::AlterUserScramCredentials, 0, &request);
        answer
            .results
            .iter()
            .map(|r| (r.user.to_string(), r.error_code))
            .collect()
    };
    /// Per user: its error code and its (mechanism, iterations).
    type Described = Vec<(String, i16, Vec<(i8, i32)>)>;
    let describe = |broker: &Broker, users: Option<Vec<&'static str>>| -> Described {
        let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
            users
                .into_iter()
                .map(|u| UserName::default().with_name(StrBytes::from_static_str(u)))
                .collect()
        }));
        let answer: DescribeUserScramCredentialsResponse =
            common::raw::call(broker, ApiKey::DescribeUserScramCredentials, 0, &request);
        answer
            .results
            .iter()
            .map(|r| {
                let infos = r.credential_infos.iter().map(|c| (c.mechanism, c.iterations)).collect();
                (r.user.to_string(), r.error_code, infos)
            })
            .collect()
    };
    let authenticates = |broker: &Broker, mechanism: &str| {
        let client: BaseProducer = sasl_ssl_client(broker, &certificates, mechanism, "carol", "carol-secret")
            .create()
            .unwrap();
        client.client().fetch_metadata(None, Duration::from_secs(10)).is_ok()
    };

    assert_eq!(
        alter(
            &broker,
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsert("carol", 8192)])
        ),
        vec![("carol".to_string(), 0)]
    );
    assert_eq!(
        describe(&broker, None),
        vec![
            ("admin".to_string(), 0, vec![(1, 4096), (2, 4096)]),
            ("alice".to_string(), 0, vec![(1, 4096), (2, 4096)]),
            ("carol".to_string(), 0, vec![(1, 8192)]),
        ]
    );
    assert!(authenticates(&broker, "SCRAM-SHA-256"), "carol, added online");
    assert!(
        !authenticates(&broker, "SCRAM-SHA-512"),
        "carol has no SCRAM-SHA-512 credential"
    );

    broker.restart();
    assert_eq!(describe(&broker, Some(vec!["carol"]))[0].2, vec![(1, 8192)]);
    assert!(authenticates(&broker, "SCRAM-SHA-256"), "carol after a restart");

    // Kafka's refusals, each for its own user.
    let refused = alter(
        &broker,
        AlterUserScramCredentialsRequest::default()
            .with_upsertions(vec![upsert("weak", 100), upsert("twice", 8192)])
            .with_deletions(vec![
                ScramCredentialDeletion::default()
                    .with_name(StrBytes::from_static_str("twice"))
                    .with_mechanism(1),
                ScramCredentialDeletion::default()
                    .with_name(StrBytes::from_static_str("nobody"))
                    .with_mechanism(1),
            ]),
    );
    assert_eq!(
        refused,
        vec![
            ("nobody".to_string(), RESOURCE_NOT_FOUND),
            ("twice".to_string(), DUPLICATE_RESOURCE),
            ("weak".to_string(), UNACCEPTABLE_CREDENTIAL),
        ]
    );
    let delete = AlterUserScramCredentialsRequest::default().with_deletions(vec![ScramCredentialDeletion::default()
        .with_name(StrBytes::from_static_str("carol"))
        .with_mechanism(1)]);
    assert_eq!(alter(&broker, delete.clone()), vec![("carol".to_string(), 0)]);
    assert_eq!(describe(&broker, Some(vec!["carol"]))[0].1, RESOURCE_NOT_FOUND);
    assert_eq!(alter(&broker, delete), vec![("carol".to_string(), RESOURCE_NOT_FOUND)]);
    assert!(!authenticates(&broker, "SCRAM-SHA-256"), "carol, deleted");
}
