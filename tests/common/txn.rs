//! Transaction requests in the raw protocol, for what no client the suite drives speaks:
//! transaction version 2 (KIP-890 part 2) producers.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::DescribeTransactionsResponse;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
    ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::{Broker, WAIT};

pub const CONCURRENT_TRANSACTIONS: i16 = 51;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_TXN_STATE: i16 = 48;
pub const PRODUCER_FENCED: i16 = 90;
pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Calls `attempt` until it answers something other than "not yet" (the coordinator loading,
/// or a change of the id in flight), within [`WAIT`].
pub fn until_settled<R>(what: &str, mut attempt: impl FnMut() -> (i16, R)) -> (i16, R) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, answer) = attempt();
        let transient = [
            CONCURRENT_TRANSACTIONS,
            COORDINATOR_LOAD_IN_PROGRESS,
            COORDINATOR_NOT_AVAILABLE,
            NOT_COORDINATOR,
        ];
        if !transient.contains(&code) {
            return (code, answer);
        }
        assert!(Instant::now() < deadline, "{what}: still {code} after {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn transaction_version(broker: &Broker) -> Option<i16> {
    let answer: ApiVersionsResponse = super::raw::call(broker, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(answer.error_code, 0);
    let supported = answer
        .supported_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .expect("transaction.version is a supported feature");
    assert_eq!((supported.min_version, supported.max_version), (0, 2));
    assert!(answer.finalized_features_epoch >= 0);
    answer
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .map(|f| f.max_version_level)
}

pub fn init_producer_id(broker: &Broker, id: &str) -> (i64, i16) {
    let (code, answer) = until_settled("InitProducerId", || {
        let answer: InitProducerIdResponse = super::raw::call(
            broker,
            ApiKey::InitProducerId,
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(str_bytes(id))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
        (answer.error_code, (answer.producer_id.0, answer.producer_epoch))
    });
    assert_eq!(code, 0, "InitProducerId");
    answer
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `values` as one transactional batch of producer `producer_id` at `epoch`, its first record
/// at `sequence`.
pub fn batch(producer_id: i64, epoch: i16, sequence: i32, values: &[&str]) -> Bytes {
    let records = values
        .iter()
        .map(|v| (None, Some(Bytes::from(v.to_string())), now_ms()));
    let unsequenced = sluice::record::encode_transactional_batch(records, producer_id, epoch).unwrap();
    let mut bytes = unsequenced.to_vec();
    bytes[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

/// Produce v12 (acks=all) of one batch per `(partition, batch)` of `topic` under
/// transactional id `id`: each partition's error code.
pub fn produce(broker: &Broker, id: &str, topic: &str, batches: Vec<(i32, Bytes)>) -> Vec<i16> {
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(str_bytes(id))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(str_bytes(topic)))
            .with_partition_data(
                batches
                    .into_iter()
                    .map(|(partition, records)| {
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(records))
                    })
                    .collect(),
            )]);
    let answer: ProduceResponse = super::raw::call(broker, ApiKey::Produce, 12, &request);
    answer.responses[0]
        .partition_responses
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// EndTxn v5: the error code and the producer id and epoch to go on with.
pub fn end_txn(broker: &Broker, id: &str, producer: (i64, i16), commit: bool) -> (i16, (i64, i16)) {
    let answer: EndTxnResponse = super::raw::call(
        broker,
        ApiKey::EndTxn,
        5,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(str_bytes(id)))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(commit),
    );
    (answer.error_code, (answer.producer_id.0, answer.producer_epoch))
}

/// The id's state and its partitions, as DescribeTransactions shows them.
pub fn describe(broker: &Broker, id: &str) -> (String, i16, Vec<(String, i32)>) {
    let answer: DescribeTransactionsResponse = super::raw::call(
        broker,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(str_bytes(id))]),
    );
    let state = &answer.transaction_states[0];
    assert_eq!(state.error_code, 0, "DescribeTransactions");
    let mut partitions: Vec<(String, i32)> = state
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect();
    partitions.sort();
    (state.transaction_state.to_string(), state.producer_epoch, partitions)
}
