//! `sluice acl add|list|remove`: the broker's ACLs over the Kafka protocol (CreateAcls,
//! DescribeAcls, DeleteAcls), as `kafka-acls.sh` manages them: a principal, ALLOW (or `--deny`)
//! some operations on a topic, group, transactional id or the cluster, named literally or as a
//! prefix. `list` and `remove` take the same flags as a filter; each flag left out matches all.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::acl::codes::{ANY, MATCH};
use crate::acl::{Operation, PatternType, Permission, ResourceType, CLUSTER_NAME};
use crate::cli::client::{check, Client};

const VERSION: i16 = 3;

#[derive(Args, Debug)]
pub struct AclArgs {
    /// A broker to start from.
    #[arg(
        long,
        short = 'b',
        global = true,
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    bootstrap: String,
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Subcommand, Debug)]
enum AclCommand {
    /// Adds an ACL for each operation named.
    Add(AclSpec),
    /// The ACLs that match; `--match` lists those that apply to the named resource.
    List(AclSpec),
    /// Removes the ACLs that match.
    Remove(AclSpec),
}

#[derive(Args, Debug)]
struct AclSpec {
    /// `User:alice`, or `User:*` for every user.
    #[arg(long)]
    principal: Option<String>,
    /// The client address, or `*` (the default when adding).
    #[arg(long)]
    host: Option<String>,
    /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
    /// ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL; a comma-separated list.
    #[arg(long, value_delimiter = ',')]
    operation: Vec<String>,
    /// DENY instead of ALLOW.
    #[arg(long, conflicts_with = "allow")]
    deny: bool,
    /// Only ALLOW ACLs (list and remove).
    #[arg(long)]
    allow: bool,
    #[arg(long, conflicts_with_all = ["group", "transactional_id", "cluster"])]
    topic: Option<String>,
    #[arg(long, conflicts_with_all = ["transactional_id", "cluster"])]
    group: Option<String>,
    #[arg(long, conflicts_with = "cluster")]
    transactional_id: Option<String>,
    #[arg(long)]
    cluster: bool,
    /// The name is a prefix (PREFIXED) rather than a literal name.
    #[arg(long, conflicts_with = "matching")]
    prefixed: bool,
    /// List or remove every ACL that applies to the named resource: its literal name, `*`
    /// and every prefix of it.
    #[arg(long = "match")]
    matching: bool,
}

impl AclSpec {
    fn resource(&self) -> Option<(ResourceType, String)> {
        if let Some(topic) = &self.topic {
            return Some((ResourceType::Topic, topic.clone()));
        }
        if let Some(group) = &self.group {
            return Some((ResourceType::Group, group.clone()));
        }
        if let Some(id) = &self.transactional_id {
            return Some((ResourceType::TransactionalId, id.clone()));
        }
        self.cluster.then(|| (ResourceType::Cluster, CLUSTER_NAME.to_string()))
    }

    fn operations(&self) -> anyhow::Result<Vec<Operation>> {
        self.operation
            .iter()
            .map(|name| Operation::parse(name).ok_or_else(|| anyhow!("unknown operation {name}")))
            .collect()
    }
}

pub fn run(args: AclArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap)?;
    match args.command {
        AclCommand::Add(spec) => add(&mut client, &spec),
        AclCommand::List(spec) => list(&mut client, &spec),
        AclCommand::Remove(spec) => remove(&mut client, &spec),
    }
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn add(client: &mut Client, spec: &AclSpec) -> anyhow::Result<()> {
    let (kind, name) = spec
        .resource()
        .ok_or_else(|| anyhow!("name the resource: --topic, --group, --transactional-id or --cluster"))?;
    let principal = spec
        .principal
        .as_deref()
        .ok_or_else(|| anyhow!("--principal is required"))?;
    let operations = spec.operations()?;
    if operations.is_empty() {
        bail!("--operation is required");
    }
    let pattern = if spec.prefixed {
        PatternType::Prefixed
    } else {
        PatternType::Literal
    };
    let permission = if spec.deny { Permission::Deny } else { Permission::Allow };
    let creations: Vec<AclCreation> = operations
        .iter()
        .map(|operation| {
            AclCreation::default()
                .with_resource_type(kind.code())
                .with_resource_name(text(&name))
                .with_resource_pattern_type(pattern.code())
                .with_principal(text(principal))
                .with_host(text(spec.host.as_deref().unwrap_or("*")))
                .with_operation(operation.code())
                .with_permission_type(permission.code())
        })
        .collect();
    let response = client.call(VERSION, &CreateAclsRequest::default().with_creations(creations))?;
    for (result, operation) in response.results.iter().zip(&operations) {
        check(
            result.error_code,
            result.error_message.as_ref(),
            format!("adding {operation}"),
        )?;
        println!(
            "{kind} {pattern} {name}: {principal} from {} {permission} {operation}",
            spec.host.as_deref().unwrap_or("*")
        );
    }
    Ok(())
}

/// The filter the flags make, as DescribeAcls carries it (DeleteAcls takes the same fields):
/// ANY where a flag is absent.
fn filter(spec: &AclSpec) -> anyhow::Result<DescribeAclsRequest> {
    let (kind, name) = match spec.resource() {
        Some((kind, name)) => (kind.code(), Some(name)),
        None => (ANY, None),
    };
    let pattern = if spec.matching {
        MATCH
    } else if spec.prefixed {
        PatternType::Prefixed.code()
    } else if name.is_some() {
        PatternType::Literal.code()
    } else {
        ANY
    };
    let operation = match spec.operations()?.as_slice() {
        [] => ANY,
        [one] => one.code(),
        _ => bail!("a filter names one operation at most"),
    };
    let permission = match (spec.deny, spec.allow) {
        (true, _) => Permission::Deny.code(),
        (_, true) => Permission::Allow.code(),
        _ => ANY,
    };
    Ok(DescribeAclsRequest::default()
        .with_resource_type_filter(kind)
        .with_resource_name_filter(name.as_deref().map(text))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(spec.principal.as_deref().map(text))
        .with_host_filter(spec.host.as_deref().map(text))
        .with_operation(operation)
        .with_permission_type(permission))
}

fn list(client: &mut Client, spec: &AclSpec) -> anyhow::Result<()> {
    let response = client.call(VERSION, &filter(spec)?)?;
    check(response.error_code, response.error_message.as_ref(), "listing ACLs")?;
    for resource in &response.resources {
        for acl in &resource.acls {
            println!(
                "{} {} {}: {} from {} {} {}",
                name_of(ResourceType::from_code(resource.resource_type)),
                name_of(PatternType::from_code(resource.pattern_type)),
                resource.resource_name.as_str(),
                acl.principal.as_str(),
                acl.host.as_str(),
                name_of(Permission::from_code(acl.permission_type)),
                name_of(Operation::from_code(acl.operation)),
            );
        }
    }
    Ok(())
}

fn name_of(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "UNKNOWN".to_string(), |v| v.to_string())
}

fn remove(client: &mut Client, spec: &AclSpec) -> anyhow::Result<()> {
    let wanted = filter(spec)?;
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(wanted.resource_type_filter)
        .with_resource_name_filter(wanted.resource_name_filter)
        .with_pattern_type_filter(wanted.pattern_type_filter)
        .with_principal_filter(wanted.principal_filter)
        .with_host_filter(wanted.host_filter)
        .with_operation(wanted.operation)
        .with_permission_type(wanted.permission_type);
    let response = client.call(VERSION, &DeleteAclsRequest::default().with_filters(vec![filter]))?;
    let result = response
        .filter_results
        .first()
        .ok_or_else(|| anyhow!("no answer to the filter"))?;
    check(result.error_code, result.error_message.as_ref(), "removing ACLs")?;
    println!("removed {} ACLs", result.matching_acls.len());
    Ok(())
}
