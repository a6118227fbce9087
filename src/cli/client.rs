//! A small blocking Kafka client for the administration subcommands: one connection, one
//! request at a time, kafka-protocol for every encoding. It speaks plain Kafka, so the
//! subcommands work against any Kafka-compatible broker, over TLS and SASL when the flags of
//! [`crate::cli::security`] say so.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, MetadataRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use crate::cli::security::{self, Login, Stream};
use crate::sasl::scram::{ScramClient, ScramHash};
use crate::sasl::Mechanism;

/// Longest a reply may take before the command gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response frame accepted.
const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// `request` with its header, behind the 4-byte length prefix.
pub fn frame_request<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    request: &R,
) -> anyhow::Result<BytesMut> {
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)))
        .encode(&mut frame, key.request_header_version(version))?;
    request.encode(&mut frame, version)?;
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame)
}

/// Reads one response frame (without its length prefix), at most [`RESPONSE_BYTES_MAX`].
pub fn read_frame(stream: &mut impl Read) -> anyhow::Result<Bytes> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = i32::from_be_bytes(length);
    if length < 0 || length as usize > RESPONSE_BYTES_MAX {
        bail!("the broker sent a {length}-byte frame");
    }
    let mut body = vec![0u8; length as usize];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

pub struct Client {
    stream: Stream,
    address: String,
    correlation_id: i32,
}

impl Client {
    /// A connection to `address`, secured (TLS, SASL) as the subcommand's flags say.
    pub fn connect(address: &str) -> anyhow::Result<Client> {
        let tcp = TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
        tcp.set_read_timeout(Some(REPLY_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        let mut client = Client {
            stream: security::wrap(tcp, address)?,
            address: address.to_string(),
            correlation_id: 0,
        };
        if let Some(login) = security::login() {
            authenticate(&mut client, login).with_context(|| format!("authenticating to {address}"))?;
        }
        Ok(client)
    }

    /// The connection, for a subcommand that frames its own requests (the bench's producers).
    pub fn into_stream(self) -> Stream {
        self.stream
    }

    /// The address this client connected to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` at `version` without reading a response: for requests the broker does
    /// not answer (Produce with acks=0).
    pub fn send<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<()> {
        self.write_request(version, request).map(|_| ())
    }

    fn write_request<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<ApiKey> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        self.correlation_id += 1;
        let frame = frame_request(key, version, self.correlation_id, "sluice-cli", request)?;
        self.stream
            .write_all(&frame)
            .with_context(|| format!("sending {key:?} to {}", self.address))?;
        Ok(key)
    }

    /// Sends `request` at `version` and reads its response.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response> {
        let key = self.write_request(version, request)?;
        let mut body =
            read_frame(&mut self.stream).with_context(|| format!("reading the {key:?} reply from {}", self.address))?;
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))?;
        if header.correlation_id != self.correlation_id {
            bail!(
                "{} answered request {} instead of {}",
                self.address,
                header.correlation_id,
                self.correlation_id
            );
        }
        R::Response::decode(&mut body, version)
    }
}

/// Authenticates a new connection as `login`: SaslHandshake, then the mechanism's messages in
/// SaslAuthenticate requests.
fn authenticate(client: &mut Client, login: &Login) -> anyhow::Result<()> {
    let name = login.mechanism.name();
    let handshake = client.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name)),
    )?;
    if handshake.error_code != 0 {
        let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
        bail!(
            "the broker refused SASL mechanism {name} ({}); it offers {}",
            error_name(handshake.error_code),
            offered.join(", ")
        );
    }
    let mut exchange = |message: Vec<u8>| -> anyhow::Result<Vec<u8>> {
        let answer = client.call(2, &SaslAuthenticateRequest::default().with_auth_bytes(message.into()))?;
        if answer.error_code != 0 {
            bail!(
                "SASL {name} login as {:?} refused: {}",
                login.user,
                answer.error_message.as_deref().unwrap_or("authentication failed")
            );
        }
        Ok(answer.auth_bytes.to_vec())
    };
    match login.mechanism {
        Mechanism::Plain => {
            let message = format!("\0{}\0{}", login.user, login.password).into_bytes();
            exchange(message)?;
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let hash = if login.mechanism == Mechanism::ScramSha256 {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            let nonce = crate::sasl::base64_nonce();
            let (mut scram, first) = ScramClient::start(hash, &login.user, &login.password, &nonce);
            let server_first = exchange(first)?;
            let last = scram
                .answer(&server_first)
                .map_err(|e| anyhow!("SCRAM with the broker: {e}"))?;
            let server_final = exchange(last)?;
            scram
                .verify(&server_final)
                .map_err(|e| anyhow!("the broker did not prove it knows the SCRAM credential: {e}"))?;
        }
    }
    Ok(())
}

/// Metadata at the version every subcommand uses (topic ids, no authorized operations).
pub const METADATA_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 7;
/// Longest a subcommand waits for a topic's partitions to have leaders.
const LEADERS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a topic the broker should auto-create may stay unknown.
const AUTO_CREATE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the topic's metadata is asked for while waiting for leaders.
const LEADERS_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The Kafka name of an error code, as the protocol guide spells it (UNKNOWN_TOPIC_OR_PARTITION).
pub fn error_name(code: i16) -> String {
    let error = match ResponseError::try_from_code(code) {
        None => return "NONE".into(),
        Some(ResponseError::Unknown(code)) => return format!("UNKNOWN_ERROR_CODE_{code}"),
        Some(error) => error,
    };
    let mut name = String::new();
    for (i, c) in format!("{error:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// Nothing for code 0; otherwise an error saying what failed, the code's name and number, and
/// the broker's message (the code's description when the broker sent none).
pub fn check(code: i16, message: Option<&StrBytes>, what: impl std::fmt::Display) -> anyhow::Result<()> {
    let Some(error) = ResponseError::try_from_code(code) else {
        return Ok(());
    };
    match message.map(|m| m.as_str()).filter(|m| !m.is_empty()) {
        Some(message) => bail!("{what}: {} ({code}): {message}", error_name(code)),
        None => bail!("{what}: {} ({code}): {error}", error_name(code)),
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// One partition as Metadata describes it.
pub struct PartitionInfo {
    pub index: i32,
    pub error_code: i16,
    /// -1 without a leader.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A topic's partitions, sorted by index, and the advertised address of every broker.
pub struct TopicInfo {
    pub name: String,
    /// The topic's error in the Metadata answer (UNKNOWN_TOPIC_OR_PARTITION, ...), or 0.
    pub error_code: i16,
    pub id: uuid::Uuid,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
    pub brokers: HashMap<i32, String>,
}

impl TopicInfo {
    /// The partition indexes, in order.
    pub fn indexes(&self) -> Vec<i32> {
        self.partitions.iter().map(|p| p.index).collect()
    }

    /// The topic's `partition`, or an error saying how many it has.
    pub fn partition(&self, partition: i32) -> anyhow::Result<&PartitionInfo> {
        self.partitions.iter().find(|p| p.index == partition).with_context(|| {
            format!(
                "topic {} has no partition {partition} (it has {})",
                self.name,
                self.partitions.len()
            )
        })
    }

    /// The advertised address of `partition`'s leader.
    pub fn leader_address(&self, partition: i32) -> anyhow::Result<&str> {
        let info = self.partition(partition)?;
        self.brokers
            .get(&info.leader)
            .map(String::as_str)
            .with_context(|| format!("partition {}-{partition} has no leader", self.name))
    }

    /// `partitions` grouped by the address of their leader, so each leader gets one request.
    pub fn by_leader(&self, partitions: impl IntoIterator<Item = i32>) -> anyhow::Result<BTreeMap<String, Vec<i32>>> {
        let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for partition in partitions {
            out.entry(self.leader_address(partition)?.to_string())
                .or_default()
                .push(partition);
        }
        Ok(out)
    }
}

/// Every topic the cluster has (`names` None) or the named ones, with their partitions and
/// errors.
pub fn metadata(client: &mut Client, names: Option<&[&str]>, auto_create: bool) -> anyhow::Result<Vec<TopicInfo>> {
    let request = MetadataRequest::default()
        .with_topics(names.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        }))
        .with_allow_auto_topic_creation(auto_create);
    let response = client.call(METADATA_VERSION, &request)?;
    let brokers: HashMap<i32, String> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    let mut topics = Vec::with_capacity(response.topics.len());
    for topic in response.topics {
        let name = topic.name.map(|n| n.0.to_string()).unwrap_or_default();
        let mut partitions: Vec<PartitionInfo> = topic
            .partitions
            .into_iter()
            .map(|p| PartitionInfo {
                index: p.partition_index,
                error_code: p.error_code,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
            })
            .collect();
        partitions.sort_by_key(|p| p.index);
        topics.push(TopicInfo {
            name,
            error_code: topic.error_code,
            id: topic.topic_id,
            internal: topic.is_internal,
            partitions,
            brokers: brokers.clone(),
        });
    }
    Ok(topics)
}

/// The topic once every partition has a leader, polling for at most [`LEADERS_TIMEOUT`] while
/// the answer is a retriable error (a topic just created may not have leaders yet). A topic
/// that does not exist is an error unless `auto_create` asks the broker to create it.
pub fn topic_with_leaders(client: &mut Client, name: &str, auto_create: bool) -> anyhow::Result<TopicInfo> {
    let started = Instant::now();
    let deadline = started + LEADERS_TIMEOUT;
    loop {
        let topic = metadata(client, Some(&[name]), auto_create)?
            .pop()
            .with_context(|| format!("no metadata for topic {name}"))?;
        if topic.error_code == ResponseError::UnknownTopicOrPartition.code() {
            // A broker creating the topic answers LEADER_NOT_AVAILABLE until it has; one
            // still answering that it does not know the topic after a while will not create it.
            if !auto_create {
                bail!("topic {name} does not exist");
            }
            if started.elapsed() >= AUTO_CREATE_TIMEOUT {
                bail!("topic {name} does not exist, and the broker did not create it");
            }
        }
        let leaderless = topic
            .partitions
            .iter()
            .find(|p| p.error_code != 0 || !topic.brokers.contains_key(&p.leader));
        let (code, problem) = match leaderless {
            _ if topic.error_code != 0 => (topic.error_code, format!("topic {name}")),
            Some(p) => (p.error_code, format!("partition {name}-{}", p.index)),
            None if topic.partitions.is_empty() => bail!("topic {name} has no partitions"),
            None => return Ok(topic),
        };
        let retriable = ResponseError::try_from_code(code).is_none_or(|e| e.is_retriable());
        if !retriable || Instant::now() >= deadline {
            check(code, None, &problem)?;
            bail!("{problem} has no leader (waited {LEADERS_TIMEOUT:?})");
        }
        std::thread::sleep(LEADERS_POLL_INTERVAL);
    }
}

/// One connection per broker address, opened when first needed.
#[derive(Default)]
pub struct Brokers {
    clients: HashMap<String, Client>,
}

impl Brokers {
    pub fn get(&mut self, address: &str) -> anyhow::Result<&mut Client> {
        if !self.clients.contains_key(address) {
            self.clients.insert(address.to_string(), Client::connect(address)?);
        }
        Ok(self.clients.get_mut(address).expect("inserted above"))
    }

    /// Drops the connection to `address` (after an error), so the next use reconnects.
    pub fn forget(&mut self, address: &str) {
        self.clients.remove(address);
    }
}

/// Each partition's offset at `timestamp` (-2 the log start, -1 the high watermark), asked of
/// its leader.
pub fn list_offsets(
    brokers: &mut Brokers,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut offsets = BTreeMap::new();
    for (address, partitions) in topic.by_leader(partitions.iter().copied())? {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(&topic.name))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(*p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )]);
        let response = brokers.get(&address)?.call(LIST_OFFSETS_VERSION, &request)?;
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            check(
                p.error_code,
                None,
                format_args!("ListOffsets of {}-{}", topic.name, p.partition_index),
            )?;
            offsets.insert(p.partition_index, p.offset);
        }
    }
    for p in partitions {
        anyhow::ensure!(
            offsets.contains_key(p),
            "ListOffsets answered nothing for {}-{p}",
            topic.name
        );
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
        let message = StrBytes::from_static_str("Topic 't' already exists.");
        let refused = check(36, Some(&message), "creating t").unwrap_err().to_string();
        assert_eq!(
            refused,
            "creating t: TOPIC_ALREADY_EXISTS (36): Topic 't' already exists."
        );
    }
}
