//! Several `sluice serve` nodes on loopback forming one cluster: each a broker and a
//! controller voter, one shard each, on ephemeral Kafka and metrics ports. Controller ports
//! must be known before any node starts (every node is told every voter), so they are
//! reserved by binding port 0 and releasing it just before the nodes start.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeClusterResponse};
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::raw::call;
use super::{Broker, WAIT};

pub struct Cluster {
    /// Node `i + 1` is `nodes[i]`; `None` while it is down (killed and not restarted).
    pub nodes: Vec<Option<Broker>>,
    args: Vec<Vec<String>>,
    _config: tempfile::TempDir,
    data: Vec<tempfile::TempDir>,
}

/// Session and heartbeat short enough that a killed broker is fenced within seconds.
pub const CLUSTER_CONFIG: &str = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 500\n";

impl Cluster {
    /// Prepares `count` nodes (started with [`Cluster::start`]) with `config` as their
    /// config file.
    pub fn new(count: usize, config: &str) -> Cluster {
        let ports: Vec<u16> = {
            let listeners: Vec<std::net::TcpListener> = (0..count)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("reserve a controller port"))
                .collect();
            listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
        };
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let config_dir = tempfile::tempdir().expect("config dir");
        let config_path = config_dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).expect("write config");
        let args = (0..count)
            .map(|i| {
                vec![
                    "--config".to_string(),
                    config_path.to_str().expect("utf-8 path").to_string(),
                    "--node-id".into(),
                    (i + 1).to_string(),
                    "--controller-listen".into(),
                    format!("127.0.0.1:{}", ports[i]),
                    "--controller-quorum-voters".into(),
                    voters.clone(),
                    "--cores".into(),
                    (i % 2).to_string(),
                ]
            })
            .collect();
        Cluster {
            nodes: (0..count).map(|_| None).collect(),
            args,
            _config: config_dir,
            data: (0..count).map(|_| tempfile::tempdir().expect("data dir")).collect(),
        }
    }

    /// Adds `extra` to every node's command line (before any node starts).
    pub fn with_args(mut self, extra: &[&str]) -> Cluster {
        for args in &mut self.args {
            args.extend(extra.iter().map(|a| a.to_string()));
        }
        self
    }

    /// Starts node `id` (1-based) on its data dir, fresh or as it was left.
    pub fn start(&mut self, id: usize) {
        assert!(self.nodes[id - 1].is_none(), "node {id} is running");
        let args: Vec<&str> = self.args[id - 1].iter().map(String::as_str).collect();
        self.nodes[id - 1] = Some(Broker::start_on(self.data[id - 1].path(), &args));
    }

    /// SIGKILLs node `id`.
    pub fn kill(&mut self, id: usize) {
        let mut node = self.nodes[id - 1].take().expect("node is running");
        node.kill();
    }

    pub fn node(&self, id: usize) -> &Broker {
        self.nodes[id - 1].as_ref().expect("node is running")
    }

    /// The running nodes' ids.
    pub fn running(&self) -> Vec<usize> {
        (1..=self.nodes.len())
            .filter(|id| self.nodes[id - 1].is_some())
            .collect()
    }

    /// Waits until every running node reports exactly `brokers` in Metadata (their ids,
    /// sorted) and one active controller among the running nodes; returns its id.
    pub fn wait_for_brokers(&self, brokers: &[i32]) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            let views: Vec<(Vec<i32>, i32)> = self.running().into_iter().map(|id| self.view(id)).collect();
            let controller = views[0].1;
            let agreed = views.iter().all(|(ids, c)| ids == brokers && *c == controller);
            if agreed && controller > 0 && self.running().contains(&(controller as usize)) {
                return controller;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not settle on brokers {brokers:?} within {WAIT:?}: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Node `id`'s view: the brokers its Metadata lists (via librdkafka) and the controller
    /// its DescribeCluster names.
    pub fn view(&self, id: usize) -> (Vec<i32>, i32) {
        let node = self.node(id);
        let consumer: BaseConsumer = node.client_config().create().expect("consumer");
        let mut brokers: Vec<i32> = match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(metadata) => metadata.brokers().iter().map(|b| b.id()).collect(),
            Err(_) => Vec::new(),
        };
        brokers.sort();
        let cluster: DescribeClusterResponse =
            call(node, ApiKey::DescribeCluster, 0, &DescribeClusterRequest::default());
        (brokers, cluster.controller_id.0)
    }
}

impl Cluster {
    /// Every running node's Kafka address, comma-separated: a client's bootstrap list.
    pub fn bootstrap(&self) -> String {
        self.running()
            .into_iter()
            .map(|id| self.node(id).addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A client config bootstrapping from every running node.
    pub fn client_config(&self) -> rdkafka::config::ClientConfig {
        let mut config = rdkafka::config::ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        config
    }

    /// Each partition's (leader, ISR) as node `id`'s Metadata shows `topic`.
    pub fn partitions(&self, id: usize, topic: &str) -> Vec<(i32, Vec<i32>)> {
        let consumer: BaseConsumer = self.node(id).client_config().create().expect("consumer");
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(metadata) => metadata.topics()[0]
                .partitions()
                .iter()
                .map(|p| {
                    let mut isr = p.isr().to_vec();
                    isr.sort();
                    (p.leader(), isr)
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until every running node shows each of `topic`'s `partitions` led by a running
    /// node with `isr` (sorted ids) in sync; returns the leaders by partition.
    pub fn wait_for_isr(&self, topic: &str, partitions: usize, isr: &[i32]) -> Vec<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            let views: Vec<Vec<(i32, Vec<i32>)>> = self
                .running()
                .into_iter()
                .map(|id| self.partitions(id, topic))
                .collect();
            let settled = views.iter().all(|view| {
                view.len() == partitions
                    && view == &views[0]
                    && view
                        .iter()
                        .all(|(leader, in_sync)| in_sync == isr && self.running().contains(&(*leader as usize)))
            });
            if settled {
                return views[0].iter().map(|(leader, _)| *leader).collect();
            }
            assert!(
                Instant::now() < deadline,
                "{topic} did not settle on ISR {isr:?} within {WAIT:?}: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The active controller as running node `id`'s DescribeCluster names it.
    pub fn controller(&self, id: usize) -> i32 {
        let cluster: DescribeClusterResponse = call(
            self.node(id),
            ApiKey::DescribeCluster,
            0,
            &DescribeClusterRequest::default(),
        );
        cluster.controller_id.0
    }

    /// Starts every node and waits until all are brokers; returns the active controller.
    pub fn start_all(&mut self) -> i32 {
        for id in 1..=self.nodes.len() {
            self.start(id);
        }
        let all: Vec<i32> = (1..=self.nodes.len() as i32).collect();
        self.wait_for_brokers(&all)
    }

    /// Creates `topic` through the running nodes, failing the test if it is refused.
    pub fn create_topic(&self, topic: rdkafka::admin::NewTopic<'_>) {
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let options = rdkafka::admin::AdminOptions::new().operation_timeout(Some(WAIT));
        let created = super::block_on(admin.create_topics(&[topic], &options)).expect("CreateTopics");
        assert!(created[0].is_ok(), "{:?}", created[0]);
    }
}
