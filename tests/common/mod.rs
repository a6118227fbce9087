//! Shared helpers for integration tests: a real `sluice serve` on an ephemeral port with a
//! temporary data dir, and real librdkafka clients (the `rdkafka` crate) pointed at it.
#![allow(dead_code)]

pub mod cluster;
pub mod raw;
pub mod tls;
pub mod txn;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running broker; killed when dropped.
pub struct Broker {
    child: Option<Child>,
    /// Every line the broker wrote to stderr, in order.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub addr: String,
    /// The Prometheus endpoint, `host:port`.
    pub metrics_addr: String,
    /// Every listener by name with its bound `host:port`, when the broker has several.
    pub listeners: Vec<(String, String)>,
    data: PathBuf,
    _temp: Option<tempfile::TempDir>,
    _config: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
}

impl Broker {
    /// Starts a broker on a fresh temporary data dir with two shards.
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Broker {
        let temp = tempfile::tempdir().expect("temp dir");
        let data = temp.path().to_path_buf();
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (child, addr, metrics_addr, listeners) = spawn(&data, &extra_args, &log);
        Broker {
            child: Some(child),
            log,
            addr,
            metrics_addr,
            listeners,
            data,
            _temp: Some(temp),
            _config: None,
            extra_args,
        }
    }

    /// Starts a broker on a data dir the test provides (e.g. on a special filesystem).
    pub fn start_in(data: &Path) -> Broker {
        Broker::start_on(data, &[])
    }

    /// Starts a broker on a data dir the test keeps (a cluster node restarted on it), with
    /// `extra_args`.
    pub fn start_on(data: &Path, extra_args: &[&str]) -> Broker {
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (child, addr, metrics_addr, listeners) = spawn(data, &extra_args, &log);
        Broker {
            child: Some(child),
            log,
            addr,
            metrics_addr,
            listeners,
            data: data.to_path_buf(),
            _temp: None,
            _config: None,
            extra_args,
        }
    }

    /// Starts a broker with `toml` as its config file.
    pub fn start_with_config(toml: &str) -> Broker {
        let dir = tempfile::tempdir().expect("config dir");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, toml).expect("write config");
        let mut broker = Broker::start_with(&["--config", path.to_str().expect("utf-8 path")]);
        broker._config = Some(dir);
        broker
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The broker process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    /// The broker's resident memory now, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("VmRSS in /proc status");
        kib * 1024
    }

    /// CPU time (user + system) the broker has used so far, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("read /proc stat");
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("stat has a command")
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / per_second)
    }

    /// Stops the broker with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        self.stop_with(libc::SIGTERM);
    }

    /// Stops the broker with `signal` (SIGTERM or SIGINT) and waits for a clean exit.
    pub fn stop_with(&mut self, signal: i32) {
        let mut child = self.child.take().expect("broker is running");
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for broker") {
                assert!(status.success(), "broker exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "broker did not stop within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker with SIGKILL: no shutdown, no flush, as a crash or power cut would.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        child.kill().expect("SIGKILL the broker");
        child.wait().expect("reap the broker");
    }

    /// Starts the broker again on the same data dir with other arguments (e.g. `--cores`).
    pub fn restart_with(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    /// Starts the broker again on the same data dir (and a new port).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        let (child, addr, metrics_addr, listeners) = spawn(&self.data, &self.extra_args, &self.log);
        self.child = Some(child);
        self.addr = addr;
        self.metrics_addr = metrics_addr;
        self.listeners = listeners;
    }

    /// The bound `host:port` of listener `name` (a broker started with `--listeners`).
    pub fn listener(&self, name: &str) -> String {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, addr)| addr.clone())
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.listeners))
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.addr)
            .set("broker.address.family", "v4")
            .set("socket.timeout.ms", "30000")
            .set("message.timeout.ms", "60000");
        config
    }

    pub fn producer(&self, extra: &[(&str, &str)]) -> BaseProducer {
        let mut config = self.client_config();
        config.set("acks", "all").set("linger.ms", "5");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        config.create().expect("producer")
    }

    pub fn consumer(&self, extra: &[(&str, &str)]) -> BaseConsumer {
        let mut config = self.client_config();
        config
            .set("group.id", "unused-no-group-operations")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        config.create().expect("consumer")
    }

    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().expect("admin client")
    }

    /// Creates a topic with per-topic configs; panics if the broker refuses.
    pub fn create_topic_with(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (key, value) in configs {
            topic = topic.set(key, value);
        }
        let results = block_on(self.admin().create_topics([&topic], &AdminOptions::new())).expect("create topics");
        for result in results {
            result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code:?}"));
        }
    }

    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin = self.admin();
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = block_on(admin.create_topics([&topic], &AdminOptions::new())).expect("create topics");
        for result in results {
            result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code:?}"));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for line in self.log.lock().map(|l| l.clone()).unwrap_or_default() {
                eprintln!("[sluice] {line}");
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Broker {
    /// GETs `path` from the metrics endpoint: (status line, body).
    pub fn scrape(&self, path: &str) -> (String, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.metrics_addr).expect("connect to the metrics endpoint");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: sluice\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read the scrape");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        (head.lines().next().unwrap_or_default().to_string(), body.to_string())
    }

    /// The sum over shards of the counter `sluice_<name>` from the metrics endpoint.
    pub fn counter(&self, name: &str) -> u64 {
        let (_, body) = self.scrape("/metrics");
        body.lines()
            .filter(|l| l.starts_with(&format!("sluice_{name}{{")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Polls the broker's log until a line satisfies `found`, failing after [`WAIT`].
    pub fn wait_for_log(&self, what: &str, found: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !self.log.lock().unwrap().iter().any(|line| found(line)) {
            assert!(Instant::now() < deadline, "no log line {what} within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn(
    data: &Path,
    extra_args: &[String],
    log: &std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> (Child, String, String, Vec<(String, String)>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("serve")
        .args(if extra_args.iter().any(|a| a == "--listeners") {
            &[][..]
        } else {
            &["--listen", "127.0.0.1:0"][..]
        })
        .args(if extra_args.iter().any(|a| a == "--cores") {
            &[][..]
        } else {
            &["--cores", "0,1"][..]
        })
        .arg("--data-dir")
        .arg(data)
        .args(if extra_args.iter().any(|a| a == "--metrics-listen") {
            &[][..]
        } else {
            // Tests run brokers side by side: each scrape endpoint on its own port.
            &["--metrics-listen", "127.0.0.1:0"][..]
        })
        .args(extra_args)
        .env(
            "SLUICE_LOG",
            std::env::var("SLUICE_LOG").unwrap_or_else(|_| "warn,sluice::net=debug,sluice::group=info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    let stderr = child.stderr.take().expect("stderr");
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let (lines, startup) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let line = startup
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("sluice printed no start-up line within {WAIT:?}"));
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("unexpected start-up line: {line}"))
        .to_string();
    assert!(
        line.starts_with("sluice listening on"),
        "unexpected start-up line: {line}"
    );
    let metrics_addr = line
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_default()
        .to_string();
    // ", listeners PLAINTEXT://127.0.0.1:1,SSL://127.0.0.1:2" when there are several; a lone
    // listener is the one `--listeners` names, at the bound address.
    let lone = extra_args
        .iter()
        .skip_while(|a| *a != "--listeners")
        .nth(1)
        .filter(|spec| !spec.contains(','))
        .and_then(|spec| spec.split_once("://"))
        .map(|(name, _)| vec![(name.to_string(), addr.clone())]);
    let listeners = line
        .split(", listeners ")
        .nth(1)
        .and_then(|rest| rest.split(", ").next())
        .map(|list| {
            list.split(',')
                .filter_map(|entry| entry.split_once("://"))
                .map(|(name, addr)| (name.to_string(), addr.to_string()))
                .collect()
        })
        .or(lone)
        .unwrap_or_default();
    (child, addr, metrics_addr, listeners)
}

/// The number in environment variable `name`, never below `min` (a soak asks for more
/// rounds than the suite runs; nothing asks for fewer).
pub fn env_at_least<T: std::str::FromStr + Ord + Copy>(name: &str, min: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(min, |n: T| n.max(min))
}

/// Runs a future to completion on this thread (rdkafka's admin calls are futures).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// One record of `value` to partition 0 of `topic`, waited for: the broker's refusal, if any.
pub fn produce_to(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    value: &str,
) -> Result<(), rdkafka::types::RDKafkaErrorCode> {
    let record = rdkafka::producer::FutureRecord::<(), _>::to(topic)
        .partition(0)
        .payload(value);
    block_on(producer.send(record, Duration::ZERO))
        .map(|_| ())
        .map_err(|(error, _)| match error {
            rdkafka::error::KafkaError::MessageProduction(code) => code,
            other => panic!("unexpected produce error {other}"),
        })
}

/// Produces and waits until every delivery report has arrived; panics on any failure.
pub fn flush(producer: &BaseProducer) {
    producer.flush(WAIT).expect("all records delivered");
}

/// Sends one record, retrying while the local queue is full.
pub fn send<C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                assert!(Instant::now() < deadline, "producer queue stayed full");
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("send failed: {e}"),
        }
    }
}

/// Assigns the consumer to every given partition from `offset`.
pub fn assign(consumer: &BaseConsumer, topic: &str, partitions: i32, offset: Offset) {
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, offset).expect("add partition");
    }
    consumer.assign(&list).expect("assign");
}

/// Polls until `count` messages arrived, failing on any consumer error or after [`WAIT`].
pub fn consume<T>(
    consumer: &BaseConsumer,
    count: usize,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> T,
) -> Vec<T> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed only {} of {count} records within {WAIT:?}",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => out.push(each(&message)),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    out
}

/// The virtualenv's Python, with kafka-python and aiokafka (scripts/test.sh installs them;
/// `SLUICE_PYTHON` names another).
pub fn python() -> PathBuf {
    let path = std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let has_clients = Command::new(&path)
        .args(["-c", "import kafka, aiokafka"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        has_clients,
        "no Python with kafka-python and aiokafka at {}: run scripts/test.sh, which installs them",
        path.display()
    );
    path
}

/// Runs `tests/python/<script>` with `args`; panics with its output unless it succeeds.
pub fn run_python(script: &str, args: &[&str]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
