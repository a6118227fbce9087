//! What CreateAcls, DescribeAcls and DeleteAcls share: ACLs and filters from their wire
//! codes, refused as Kafka refuses them, and the answer when the authorizer is off.

use crate::acl::codes::{ANY, MATCH};
use crate::acl::{
    AclBinding, AclEntry, AclFilter, Operation, PatternFilter, PatternType, Permission, ResourcePattern, ResourceType,
};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;

/// Kafka's answer to an ACL API without an authorizer.
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Why the request as a whole is refused: no authorizer, or a caller who may not perform
/// `operation` on the cluster.
pub fn refused(ctx: &RequestContext<'_>, operation: Operation) -> Option<(KafkaCode, String)> {
    if ctx.shard.config.authorizer.is_none() {
        return Some((KafkaCode::SecurityDisabled, NO_AUTHORIZER.to_string()));
    }
    if !ctx.allows_cluster(operation) {
        return Some((
            KafkaCode::ClusterAuthorizationFailed,
            "Cluster authorization failed.".to_string(),
        ));
    }
    None
}

fn invalid(what: &str, code: i8) -> String {
    format!("Invalid {what} {code}")
}

/// One ACL of a CreateAcls request, checked.
pub fn binding(
    resource_type: i8,
    name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Result<AclBinding, String> {
    let binding = AclBinding {
        resource: ResourcePattern {
            kind: ResourceType::from_code(resource_type).ok_or_else(|| invalid("resourceType", resource_type))?,
            name: name.to_string(),
            pattern: PatternType::from_code(pattern_type).ok_or_else(|| invalid("patternType", pattern_type))?,
        },
        entry: AclEntry {
            principal: principal.to_string(),
            host: host.to_string(),
            operation: Operation::from_code(operation).ok_or_else(|| invalid("operation", operation))?,
            permission: Permission::from_code(permission).ok_or_else(|| invalid("permissionType", permission))?,
        },
    };
    binding.validate()?;
    Ok(binding)
}

/// A DescribeAcls or DeleteAcls filter: ANY (and MATCH, for the pattern type) as wildcards,
/// UNKNOWN or an unknown code refused.
pub fn filter(
    resource_type: i8,
    name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    let kind = wildcard(resource_type, "resourceType", ResourceType::from_code)?;
    let pattern = match pattern_type {
        ANY => PatternFilter::Any,
        MATCH => PatternFilter::Match,
        code => PatternFilter::Exactly(PatternType::from_code(code).ok_or_else(|| invalid("patternType", code))?),
    };
    let operation = wildcard(operation, "operation", Operation::from_code)?;
    let permission = wildcard(permission, "permissionType", Permission::from_code)?;
    Ok(AclFilter {
        kind,
        name: name.map(str::to_string),
        pattern,
        principal: principal.map(str::to_string),
        host: host.map(str::to_string),
        operation,
        permission,
    })
}

/// A filter field: None for ANY, the value of a known code, anything else refused.
fn wildcard<T>(code: i8, what: &str, from_code: fn(i8) -> Option<T>) -> Result<Option<T>, String> {
    if code == ANY {
        return Ok(None);
    }
    from_code(code).map(Some).ok_or_else(|| invalid(what, code))
}
