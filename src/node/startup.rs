//! Starting and stopping the shards of one `sluice serve` process.
//!
//! The main thread validates the config, loads metadata, reserves the listen port, then
//! starts one pinned executor per CPU. Each executor joins the mesh (its peer id is its
//! shard id), recovers the partitions it owns, binds the port with SO_REUSEPORT and reports
//! ready. The main thread prints one start-up line, then waits for SIGINT or SIGTERM and
//! asks every shard to seal its logs before it exits.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{anyhow, Context};
use futures::channel::oneshot;

use crate::config::{parse_host_port, ServerConfig};
use crate::constants::MESH_CHANNEL_DEPTH_MAX;
use crate::ids::NodeId;
use crate::metadata::{MetadataSnapshot, MetadataStore};
use crate::node::{BrokerIdentity, Shard};
use crate::runtime::executor::{Executor, ExecutorOptions};
use crate::runtime::mesh::MeshBuilder;
use crate::runtime::Task;
use crate::storage::log::remove_deleted_leftovers;

/// What serves a shard's clients once its partitions are open: given the shard (whose
/// identity names the listeners, bound by every shard with SO_REUSEPORT) and, on shard 0, the
/// bound metrics socket, it starts the tasks that accept on them; dropping those tasks stops
/// serving.
/// `net::serve_shard` in the broker; start-up itself knows no protocol.
pub type Listen = fn(Rc<Shard>, Option<RawFd>) -> Result<Vec<Task<()>>, String>;

/// Runs the broker until SIGINT or SIGTERM. Returns once every shard has sealed its logs.
pub fn serve(mut config: ServerConfig, listen_with: Listen) -> anyhow::Result<()> {
    config.validate()?;
    let cpus = config.cpus()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    // glommio opens directories through io_uring, which cannot resolve a relative path (the
    // default `./sluice-data`): every path below the data dir is made absolute here.
    config.data_dir = std::fs::canonicalize(&config.data_dir)
        .with_context(|| format!("resolving data dir {}", config.data_dir.display()))?;
    // Held until this function returns: a second broker on the same data dir would assign
    // the same offsets into the same files.
    let _data_dir_lock = lock_data_dir(&config.data_dir)?;
    remove_deleted_leftovers(&config.data_dir);
    let mut store = MetadataStore::load(
        &config.data_dir,
        &config,
        cpus.len(),
        crate::node::placement::place_topic,
    )?;
    store.set_partitions_max(config.max_partitions);
    let snapshot = if config.cluster.is_cluster() {
        // The controller's image is the metadata: shards start with none and open their
        // partitions when shard 0 publishes the first image.
        Arc::new(MetadataSnapshot::new(
            String::new(),
            0,
            Default::default(),
            config.topic_defaults.clone(),
            Default::default(),
        ))
    } else {
        let offsets_segment_bytes = config.offsets_topic_segment_bytes.to_string();
        store.ensure_internal_topic(
            crate::group::OFFSETS_TOPIC,
            config.offsets_topic_num_partitions,
            [
                ("cleanup.policy", "compact"),
                ("segment.bytes", offsets_segment_bytes.as_str()),
            ],
        )?;
        store.ensure_internal_topic(
            crate::txn::TRANSACTION_STATE_TOPIC,
            config.transaction_state_log_num_partitions,
            [
                ("cleanup.policy", "compact"),
                ("segment.bytes", offsets_segment_bytes.as_str()),
            ],
        )?;
        store.snapshot()
    };

    // Signals are routed to the iterator before any shard thread exists, so none of them
    // can die of a default SIGTERM disposition.
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .context("installing signal handlers")?;

    // Every listener's port is reserved (port 0 resolved) before any shard binds it.
    let specs = config.security.listener_specs(config.listen_addr()?)?;
    let advertised_specs = config.security.advertised_specs(&specs)?;
    let tls = if specs.iter().any(|l| l.protocol.tls()) {
        Some(crate::net::tls::server_config(&config.security).map_err(|e| anyhow!("TLS: {e}"))?)
    } else {
        None
    };
    let mut reservations = Vec::with_capacity(specs.len());
    let mut listeners = Vec::with_capacity(specs.len());
    for spec in &specs {
        let reservation = reserve_port(spec.bind_addr("listeners")?)?;
        let bound = reservation
            .local_addr()?
            .as_socket()
            .context("listen address is not IP")?;
        reservations.push(reservation);
        let legacy_advertise = match (&config.advertise, &config.security.listeners) {
            (Some(advertise), None) => Some(parse_host_port(advertise).map_err(|e| anyhow!("advertise: {e}"))?),
            _ => None,
        };
        let advertised = advertised_specs
            .as_ref()
            .and_then(|all| all.iter().find(|a| a.name == spec.name))
            .map(|a| (a.host.clone(), a.port))
            .or(legacy_advertise)
            .unwrap_or_else(|| (bound.ip().to_string(), bound.port()));
        listeners.push(crate::node::BoundListener {
            name: spec.name.clone(),
            protocol: spec.protocol,
            addr: bound,
            advertised_host: advertised.0,
            advertised_port: advertised.1,
            tls: spec
                .protocol
                .tls()
                .then(|| tls.clone().expect("built for TLS listeners")),
        });
    }
    let first = listeners[0].clone();
    let bound = first.addr;
    let identity = Arc::new(BrokerIdentity {
        node_id: NodeId(config.node_id),
        host: first.advertised_host.clone(),
        port: first.advertised_port,
        listen: bound,
        listeners,
    });

    // The scrape endpoint is bound here, so its address is known and printed, then served by
    // shard 0.
    let metrics_listener = if config.metrics_listen.is_empty() {
        None
    } else {
        let listener = std::net::TcpListener::bind(&config.metrics_listen)
            .with_context(|| format!("binding the metrics listener {}", config.metrics_listen))?;
        Some(listener)
    };
    let metrics_addr = metrics_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let mut metrics_listener = metrics_listener.map(std::os::fd::IntoRawFd::into_raw_fd);

    // In a cluster the controller thread starts before the shards (so its port is taken or
    // start-up fails); the broker registers once every shard serves.
    let cluster = if config.cluster.is_cluster() {
        let advertised = crate::cluster::Advertised {
            host: identity.host.clone(),
            port: identity.port,
            listeners: identity
                .listeners
                .iter()
                .map(|l| crate::cluster::image::Endpoint {
                    name: l.name.clone(),
                    host: l.advertised_host.clone(),
                    port: l.advertised_port,
                })
                .collect(),
        };
        Some(crate::cluster::start(&config, advertised)?)
    } else {
        None
    };

    let config = Arc::new(config);
    // The builder holds an `Rc` that glommio marks Send; every clone is made here, and this
    // one outlives all shards, so their concurrent drops can only leave the count high.
    let mesh = MeshBuilder::<Shard>::full(cpus.len(), MESH_CHANNEL_DEPTH_MAX);
    let store_slot = Arc::new(Mutex::new(Some(store)));
    let (ready_sender, ready) = mpsc::channel::<Result<(), String>>();
    let mut stops = Vec::with_capacity(cpus.len());
    let mut handles = Vec::with_capacity(cpus.len());
    for (index, &cpu) in cpus.iter().enumerate() {
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        let start = ShardStart {
            mesh: mesh.clone(),
            config: config.clone(),
            identity: identity.clone(),
            snapshot: snapshot.clone(),
            store_slot: store_slot.clone(),
            ready: ready_sender.clone(),
            metrics_fd: if index == 0 { metrics_listener.take() } else { None },
            listen_with,
            cpu,
            cluster: cluster.clone(),
        };
        let options = ExecutorOptions {
            name: format!("sluice-shard-{index}"),
            cpu,
            io_memory_bytes: config.shard_io_memory_bytes as usize,
            ring_depth: config.shard_ring_depth as usize,
            spin_before_park: std::time::Duration::from_micros(config.shard_spin_before_park_us),
        };
        let handle = Executor::spawn(&options, move || async move { run_shard(start, stopped).await })
            .map_err(|e| anyhow!("shard {index}: {e}"))?;
        handles.push(handle);
    }
    drop(ready_sender);

    let mut failure = None;
    for _ in 0..cpus.len() {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some("a shard exited during start-up".to_string())),
        }
    }
    drop(reservations);
    if let (None, Some(cluster)) = (&failure, &cluster) {
        cluster.serving();
    }
    if failure.is_none() {
        let metrics = metrics_addr.map_or_else(String::new, |addr| format!(", metrics on http://{addr}/metrics"));
        let others = if identity.listeners.len() > 1 {
            let all: Vec<String> = identity
                .listeners
                .iter()
                .map(|l| format!("{}://{}", l.name, l.addr))
                .collect();
            format!(", listeners {}", all.join(","))
        } else {
            String::new()
        };
        println!(
            "sluice listening on {bound} (advertised {}:{}), {} shards on CPUs {cpus:?}, data in {}{others}{metrics}",
            identity.host,
            identity.port,
            cpus.len(),
            config.data_dir.display()
        );
        if let Some(signal) = signals.forever().next() {
            tracing::info!("signal {signal}: shutting down");
        }
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for handle in handles {
        if handle.join().is_err() {
            failure = failure.or(Some("a shard panicked".to_string()));
        }
    }
    match failure {
        Some(e) => Err(anyhow!("sluice failed: {e}")),
        None => {
            println!("sluice stopped cleanly");
            Ok(())
        }
    }
}

/// Binds (without listening) so port 0 resolves to one concrete port all shards then share.
///
/// The shards listen with SO_REUSEPORT, which would also let them listen beside another
/// process already on the port, and the kernel would split clients between the two. So the
/// address is first bound without SO_REUSEPORT, which fails while anything listens there
/// (SO_REUSEADDR is kept, so connections of an earlier run lingering in TIME_WAIT do not
/// block a restart).
fn reserve_port(addr: SocketAddr) -> anyhow::Result<socket2::Socket> {
    let new_socket = || socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None);
    let probe = new_socket()?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!("cannot listen on {addr}: address already in use (is another broker running there?)")
        } else {
            anyhow!("binding {addr}: {e}")
        }
    })?;
    let concrete = probe.local_addr()?.as_socket().context("listen address is not IP")?;
    drop(probe);
    let socket = new_socket()?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&concrete.into())
        .with_context(|| format!("binding {concrete}"))?;
    Ok(socket)
}

/// Name of the lock file each data dir holds while a broker uses it.
const DATA_DIR_LOCK_FILE: &str = ".lock";

/// Takes an exclusive lock on `data_dir` for as long as the returned file is open; refuses if
/// another process holds it. The lock goes with the process, however it ends.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let path = data_dir.join(DATA_DIR_LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the data dir lock {}", path.display()))?;
    // SAFETY: flock takes a descriptor this function owns and open for the whole call.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let holder = if holder.is_empty() { "another process" } else { holder };
            return Err(anyhow!(
                "data dir {} is in use by {holder} (lock file {} is held)",
                data_dir.display(),
                path.display()
            ));
        }
        return Err(anyhow!("locking {}: {error}", path.display()));
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "process {}", std::process::id()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(file)
}

struct ShardStart {
    mesh: MeshBuilder<Shard>,
    config: Arc<ServerConfig>,
    identity: Arc<BrokerIdentity>,
    snapshot: Arc<MetadataSnapshot>,
    store_slot: Arc<Mutex<Option<MetadataStore>>>,
    ready: mpsc::Sender<Result<(), String>>,
    /// The bound metrics listener, for shard 0 to serve.
    metrics_fd: Option<RawFd>,
    listen_with: Listen,
    cpu: usize,
    cluster: Option<crate::cluster::ClusterHandle>,
}

async fn run_shard(start: ShardStart, stopped: oneshot::Receiver<()>) {
    let ShardStart {
        mesh,
        config,
        identity,
        snapshot,
        store_slot,
        ready,
        metrics_fd,
        listen_with,
        cpu,
        cluster,
    } = start;
    let (mesh, inbox) = match mesh.join().await {
        Ok(joined) => joined,
        Err(e) => {
            let _ = ready.send(Err(format!("joining the shard mesh: {e}")));
            return;
        }
    };
    let store = if mesh.id() == crate::ids::ShardId(0) {
        store_slot.lock().expect("store slot").take()
    } else {
        None
    };
    let shard = Rc::new(Shard::new(mesh, config, identity, snapshot.clone(), store, cluster));
    inbox.serve(shard.clone());
    if let Err(e) = crate::storage::probe::probe_direct_io(&shard.config.data_dir, shard.id).await {
        let _ = ready.send(Err(format!(
            "shard {}: direct I/O does not work on the data dir: {e}",
            shard.id
        )));
        return;
    }
    if let Err(e) = shard.apply_snapshot(snapshot).await {
        let _ = ready.send(Err(format!("shard {}: recovering partitions: {e}", shard.id)));
        return;
    }
    if let Err(e) = shard.groups.load(&shard).await {
        let _ = ready.send(Err(format!("shard {}: loading groups: {e}", shard.id)));
        return;
    }
    if shard.cluster.is_none() {
        shard.follow_transaction_state().await;
    }
    let _txn_timer = crate::runtime::spawn(crate::txn::coordinator::run_timer(shard.clone()));
    let serving = match listen_with(shard.clone(), metrics_fd) {
        Ok(serving) => serving,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {}: {e}", shard.id)));
            return;
        }
    };
    tracing::info!(
        "shard {} ready on CPU {cpu}: {} partitions",
        shard.id,
        shard.partition_count()
    );
    shard.start_background();
    let following = (shard.id == crate::ids::ShardId(0) && shard.cluster.is_some())
        .then(|| crate::runtime::spawn(crate::node::cluster_view::follow(shard.clone())));
    let coordinating = shard
        .cluster
        .is_some()
        .then(|| crate::runtime::spawn(crate::node::coordination::follow(shard.clone())));
    let _ = ready.send(Ok(()));
    let _ = stopped.await;
    drop(coordinating);
    drop(following);
    drop(serving);
    shard.close_partitions().await;
    tracing::info!("shard {} sealed its logs", shard.id);
}
