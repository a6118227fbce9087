//! TLS listeners with librdkafka: a broker with a PLAINTEXT and an SSL listener serves
//! produce and consume over TLS, answers Metadata with the addresses of the listener a client
//! came in on, asks for client certificates per `ssl.client.auth` (a client without one is
//! refused when they are required; one with one is its subject's principal), and closes a
//! plaintext client on its TLS port without harm. Certificates are made by the test (rcgen).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::tls::{secured_broker, Certificates};
use common::{assign, consume, send, Broker};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest, MetadataResponse};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Offset;

const WAIT: Duration = Duration::from_secs(30);

/// A broker with a PLAINTEXT and an SSL listener, with `client_auth` for the SSL one; the
/// directory holds its certificates and config.
fn tls_broker(client_auth: &str) -> (Broker, Certificates, tempfile::TempDir) {
    secured_broker("PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", |certificates| {
        format!(
            "\"ssl.keystore.type\" = \"PEM\"\n\"ssl.keystore.location\" = {:?}\n\
             \"ssl.truststore.location\" = {:?}\n\"ssl.client.auth\" = \"{client_auth}\"\n",
            certificates.keystore, certificates.ca
        )
    })
}

/// librdkafka over the SSL listener, trusting the test CA (and showing the client
/// certificate when `with_certificate`).
fn ssl_client(broker: &Broker, certificates: &Certificates, with_certificate: bool) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.listener("SSL"))
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", certificates.ca.to_str().unwrap())
        .set("socket.timeout.ms", "5000");
    if with_certificate {
        config
            .set(
                "ssl.certificate.location",
                certificates.client_certificate.to_str().unwrap(),
            )
            .set("ssl.key.location", certificates.client_key.to_str().unwrap());
    }
    config
}

/// Where the brokers are, as Metadata on `addr` answers.
fn metadata_brokers(addr: &str) -> Vec<String> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(&common::raw::request(
            ApiKey::Metadata,
            12,
            1,
            &MetadataRequest::default(),
        ))
        .unwrap();
    let answer: MetadataResponse = common::raw::response(&mut stream, ApiKey::Metadata, 12, 1);
    answer
        .brokers
        .iter()
        .map(|b| format!("{}:{}", b.host.as_str(), b.port))
        .collect()
}

#[test]
fn librdkafka_produces_and_consumes_over_tls() {
    let (broker, certificates, _dir) = tls_broker("none");
    assert_ne!(broker.listener("SSL"), broker.listener("PLAINTEXT"));
    assert_eq!(broker.listener("PLAINTEXT"), broker.addr);
    // A plaintext client is told the plaintext address.
    assert_eq!(metadata_brokers(&broker.addr), vec![broker.addr.clone()]);
    broker.create_topic("over-tls", 2);

    let producer: BaseProducer = ssl_client(&broker, &certificates, false)
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for i in 0..100 {
        send(
            &producer,
            BaseRecord::to("over-tls")
                .partition(i % 2)
                .key(b"k".as_slice())
                .payload(format!("tls-{i}").as_bytes()),
        );
    }
    producer.flush(WAIT).expect("every record acknowledged over TLS");
    // Metadata over the SSL listener named the SSL address, or librdkafka could not have
    // produced: it connects to the brokers Metadata names.
    let metadata = producer.client().fetch_metadata(None, WAIT).unwrap();
    let named: Vec<String> = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    assert_eq!(named, vec![broker.listener("SSL")]);

    let consumer: BaseConsumer = ssl_client(&broker, &certificates, false)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    assign(&consumer, "over-tls", 2, Offset::Beginning);
    let mut values = consume(&consumer, 100, |m| {
        String::from_utf8(m.payload().unwrap().to_vec()).unwrap()
    });
    values.sort();
    let mut expected: Vec<String> = (0..100).map(|i| format!("tls-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected);
}

#[test]
fn required_client_certificates_are_checked_and_name_the_principal() {
    let (broker, certificates, _dir) = tls_broker("required");
    let without: BaseProducer = ssl_client(&broker, &certificates, false).create().unwrap();
    assert!(
        without.client().fetch_metadata(None, Duration::from_secs(5)).is_err(),
        "a client without a certificate is refused"
    );
    let with: BaseProducer = ssl_client(&broker, &certificates, true).create().unwrap();
    with.client()
        .fetch_metadata(None, WAIT)
        .expect("a client with a certificate the truststore vouches for is served");
    broker.wait_for_log("the client certificate's principal", |line| {
        line.contains("TLS connection from") && line.contains("as User:CN=alice,O=Sluice")
    });
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_closed_and_harms_nothing() {
    let (broker, _certificates, _dir) = tls_broker("none");
    let mut stream = std::net::TcpStream::connect(broker.listener("SSL")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(&common::raw::request(
            ApiKey::ApiVersions,
            3,
            1,
            &ApiVersionsRequest::default(),
        ))
        .unwrap();
    // The broker answers the non-TLS bytes with at most a TLS alert, then closes.
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection was neither answered nor closed: {e}"),
        }
        assert!(started.elapsed() < WAIT, "still open after {WAIT:?}");
    }
    assert!(
        received.is_empty() || received[0] == 0x15,
        "anything sent back is a TLS alert record: {received:?}"
    );
    // Both listeners go on serving.
    assert_eq!(metadata_brokers(&broker.addr), vec![broker.addr.clone()]);
}
