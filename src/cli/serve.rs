//! `sluice serve`: the broker. Flags override the config file, which overrides the
//! embedded defaults.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::ServerConfig;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on for Kafka clients (default 127.0.0.1:9092).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address clients are told to connect to (default: the bound listen address).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Kafka's `listeners`, e.g. `PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093`: every
    /// listener, in place of --listen and --advertise.
    #[arg(long, value_name = "LIST", conflicts_with_all = ["listen", "advertise"])]
    listeners: Option<String>,
    /// Directory holding topic data and metadata (default ./sluice-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// CPUs to run one shard each on, e.g. `0,1` or `0-3` (default: all CPUs).
    #[arg(long, value_name = "LIST")]
    cores: Option<String>,
    /// Address of the Prometheus metrics endpoint (default 127.0.0.1:9644; empty: off).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<String>,
    /// TOML config file; keys use Kafka's names (see README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's id in a cluster (`node.id`).
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
    /// Where this node's controller listens for its peers and brokers (`controller.listen`).
    #[arg(long, value_name = "HOST:PORT")]
    controller_listen: Option<String>,
    /// Every controller voter, `1@host:port,2@host:port,...` (`controller.quorum.voters`);
    /// unset, the node runs alone.
    #[arg(long, value_name = "VOTERS")]
    controller_quorum_voters: Option<String>,
    /// `broker`, `controller` or `broker,controller` (`process.roles`, default both).
    #[arg(long, value_name = "ROLES")]
    process_roles: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            ServerConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => ServerConfig::default(),
    };
    if (args.listen.is_some() || args.advertise.is_some()) && config.security.listeners.is_some() {
        anyhow::bail!("--listen and --advertise are PLAINTEXT shorthands: the config file sets listeners");
    }
    if let Some(listeners) = args.listeners {
        config.set_by_flag("listeners");
        config.security.listeners = Some(listeners);
    }
    if let Some(listen) = args.listen {
        config.set_by_flag("listen");
        config.listen = listen;
    }
    if let Some(advertise) = args.advertise {
        config.set_by_flag("advertise");
        config.advertise = Some(advertise);
    }
    if let Some(metrics_listen) = args.metrics_listen {
        config.set_by_flag("metrics.listen");
        config.metrics_listen = metrics_listen;
    }
    if let Some(data_dir) = args.data_dir {
        config.set_by_flag("data-dir");
        config.data_dir = data_dir;
    }
    if let Some(cores) = args.cores {
        config.set_by_flag("cores");
        config.cores = Some(cores);
    }
    if let Some(node_id) = args.node_id {
        config.set_by_flag("node.id");
        config.node_id = node_id;
    }
    if let Some(listen) = args.controller_listen {
        config.set_by_flag("controller.listen");
        config.cluster.controller_listen = Some(listen);
    }
    if let Some(voters) = args.controller_quorum_voters {
        config.set_by_flag("controller.quorum.voters");
        config.cluster.controller_quorum_voters = voters;
    }
    if let Some(roles) = args.process_roles {
        config.set_by_flag("process.roles");
        config.cluster.process_roles = roles;
    }
    crate::node::startup::serve(config, serve_shard)
}

/// What serves one shard once its partitions are open: its listeners, and in a cluster its
/// replication.
fn serve_shard(
    shard: std::rc::Rc<crate::node::Shard>,
    metrics_fd: Option<std::os::fd::RawFd>,
) -> Result<Vec<crate::runtime::Task<()>>, String> {
    let mut serving = crate::replication::start_shard(&shard);
    serving.extend(crate::net::serve_shard(shard, metrics_fd)?);
    Ok(serving)
}
