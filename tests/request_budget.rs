//! Request memory is bounded by the shard's budget (`queued.max.request.bytes`), taken as a
//! frame's bytes arrive: clients that announce huge frames and send little cost the broker
//! little, and everyone else keeps being served.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Broker, WAIT};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use rdkafka::producer::{BaseRecord, Producer};

/// The largest frame a broker accepts by default (`socket.request.max.bytes`).
const FRAME_MAX: u32 = 100 * 1024 * 1024;

fn announce(broker: &Broker, length: u32, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(&broker.addr).expect("connect");
    stream.write_all(&length.to_be_bytes()).expect("send a length");
    stream.write_all(body).expect("send part of a body");
    stream
}

/// Produces `count` records with acks=all through librdkafka and waits for every ack.
fn produce_acknowledged(broker: &Broker, topic: &str, count: usize) {
    let producer = broker.producer(&[("acks", "all"), ("message.timeout.ms", "20000")]);
    for i in 0..count {
        let value = format!("served-{i}");
        common::send(&producer, BaseRecord::to(topic).payload(value.as_bytes()).key(&[][..]));
    }
    producer.flush(WAIT).expect("every record acknowledged");
}

#[test]
fn a_thousand_announced_frames_cost_almost_nothing_and_others_are_served() {
    let broker = Broker::start();
    broker.create_topic("served", 2);
    produce_acknowledged(&broker, "served", 10);
    let before = broker.rss_bytes();
    let attackers: Vec<TcpStream> = (0..1000).map(|_| announce(&broker, FRAME_MAX, &[])).collect();
    // Give every connection time to be accepted and its length read: metadata answered on a
    // fresh connection proves the shards got past the backlog.
    let started = Instant::now();
    produce_acknowledged(&broker, "served", 200);
    let served_in = started.elapsed();
    let after = broker.rss_bytes();
    let growth = after.saturating_sub(before);
    // 1,000 connections each claiming 100 MiB would be ~100 GB if buffers were allocated up
    // front; what they may cost is their read buffers and sockets, far below one frame.
    assert!(
        growth < 64 * 1024 * 1024,
        "RSS grew by {growth} bytes (from {before} to {after}) for 1,000 announced frames"
    );
    assert!(served_in < Duration::from_secs(20), "serving others took {served_in:?}");
    drop(attackers);
}

#[test]
fn partial_bodies_are_held_within_the_budget_and_others_are_served() {
    // Each shard may hold 128 MiB of request bytes; 400 clients each send 1 MiB of a 100 MiB
    // frame (400 MiB in all) and stop.
    let broker =
        Broker::start_with_config("\"queued.max.request.bytes\" = 134217728\n\"request.frame.timeout.ms\" = 60000\n");
    broker.create_topic("served", 2);
    produce_acknowledged(&broker, "served", 10);
    let before = broker.rss_bytes();
    let body = vec![7u8; 1024 * 1024];
    let attackers: Vec<TcpStream> = (0..400)
        .map(|_| {
            let mut stream = TcpStream::connect(&broker.addr).expect("connect");
            stream.write_all(&FRAME_MAX.to_be_bytes()).unwrap();
            // The broker stops reading once the budget is spent: send without blocking forever.
            stream.set_nonblocking(true).unwrap();
            let mut sent = 0;
            let deadline = Instant::now() + Duration::from_millis(200);
            while sent < body.len() && Instant::now() < deadline {
                match stream.write(&body[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => panic!("send: {e}"),
                }
            }
            stream
        })
        .collect();
    let (_, metrics) = broker.scrape("/metrics");
    let waits: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("sluice_request_budget_waits_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let growth = broker.rss_bytes().saturating_sub(before);
    // Two shards of 128 MiB, plus kernel-side socket buffers that are not ours to bound.
    assert!(
        growth < 2 * 128 * 1024 * 1024 + 64 * 1024 * 1024,
        "RSS grew by {growth} bytes with 400 MiB of partial frames sent"
    );
    assert!(
        waits > 0,
        "no frame read waited for budget although 400 MiB was sent:\n{metrics}"
    );
    // While the attackers hold the budget, a small producer is still served: frames holding
    // more than their share are evicted for it, long before request.frame.timeout.ms.
    let started = Instant::now();
    produce_acknowledged(&broker, "served", 100);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "served after {:?}",
        started.elapsed()
    );
    let (_, metrics) = broker.scrape("/metrics");
    let evicted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("sluice_connections_timed_out_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(evicted > 0, "no partial frame was evicted:\n{metrics}");
    drop(attackers);
}

#[test]
fn a_frame_that_stops_arriving_is_closed_at_its_deadline() {
    let broker = Broker::start_with_config("\"request.frame.timeout.ms\" = 1000\n");
    let mut stalled = announce(&broker, 1000, &[0u8; 10]);
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = stalled.read(&mut byte);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "expected the broker to close the stalled connection, read {read:?}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "closed after {waited:?}, not at the 1 s frame deadline"
    );
}

#[test]
fn idle_connections_are_closed_and_busy_ones_kept() {
    let broker = Broker::start_with_config("\"connections.max.idle.ms\" = 1000\n");
    let mut idle = TcpStream::connect(&broker.addr).expect("connect");
    idle.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = idle.read(&mut byte);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "idle connection still open: {read:?}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "closed after {waited:?}, not at connections.max.idle.ms"
    );
    // A long-poll of 3 s (three idle periods) in flight keeps its connection open: the fetch
    // is answered, not cut off.
    broker.create_topic("quiet", 1);
    let mut polling = common::raw::connect(&broker);
    let fetch = common::raw::fetch_request("quiet", &[(0, 0)], 3000, 1, 1 << 20, 1 << 20);
    let version = common::raw::FETCH_VERSION;
    polling
        .write_all(&common::raw::request(ApiKey::Fetch, version, 7, &fetch))
        .unwrap();
    let started = Instant::now();
    let answer: FetchResponse = common::raw::response(&mut polling, ApiKey::Fetch, version, 7);
    assert!(started.elapsed() >= Duration::from_millis(2900), "answered early");
    assert_eq!(answer.responses[0].partitions[0].error_code, 0);
}

/// `sluice_requests_total` for one API, summed over shards.
fn requests(broker: &Broker, api: &str) -> u64 {
    let (_, body) = broker.scrape("/metrics");
    body.lines()
        .filter(|l| l.starts_with("sluice_requests_total{") && l.contains(&format!("api=\"{api}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_client_that_never_reads_its_answers_stops_being_read() {
    let broker = Broker::start();
    broker.create_topic("big", 1);
    let producer = broker.producer(&[("acks", "all"), ("linger.ms", "20")]);
    let value = vec![b'w'; 1000];
    for _ in 0..4000 {
        common::send(&producer, BaseRecord::to("big").payload(&value[..]).key(&[][..]));
    }
    producer.flush(WAIT).unwrap();
    let before_fetches = requests(&broker, "Fetch");
    let before = broker.rss_bytes();
    // 100 pipelined fetches of ~4 MB each (400 MB of answers) that are never read.
    let mut greedy = TcpStream::connect(&broker.addr).expect("connect");
    let fetch = common::raw::fetch_request("big", &[(0, 0)], 0, 1, 4 << 20, 4 << 20);
    for i in 0..100 {
        greedy
            .write_all(&common::raw::request(
                ApiKey::Fetch,
                common::raw::FETCH_VERSION,
                i,
                &fetch,
            ))
            .unwrap();
    }
    // Wait until the broker stops handling them (the count holds still for half a second).
    let deadline = Instant::now() + WAIT;
    let mut last = (requests(&broker, "Fetch"), Instant::now());
    loop {
        assert!(Instant::now() < deadline, "the fetch count never settled");
        std::thread::sleep(Duration::from_millis(50));
        let now = requests(&broker, "Fetch");
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) && now > before_fetches {
            break;
        }
    }
    let handled = last.0 - before_fetches;
    let growth = broker.rss_bytes().saturating_sub(before);
    // The connection holds at most 128 MiB of answers (32 of these) plus what the sockets'
    // kernel buffers took.
    assert!(handled < 60, "{handled} of 100 unread fetches were answered");
    assert!(growth < 200 * 1024 * 1024, "RSS grew by {growth} bytes");
    // Everyone else is served meanwhile.
    produce_acknowledged(&broker, "big", 10);
    drop(greedy);
}
