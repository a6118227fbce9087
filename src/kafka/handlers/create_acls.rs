//! CreateAcls: new ACLs for the built-in authorizer, kept in the metadata (replicated, in a
//! cluster). The caller needs ALTER on the cluster; each ACL is checked as Kafka's controller
//! checks it (a known resource type, LITERAL or PREFIXED, a concrete operation and permission,
//! a non-empty name, `kafka-cluster` for the cluster) and, unlike Kafka, its principal must
//! read `Type:name`. The valid ones are added together; one that exists already is a success.

use kafka_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use kafka_protocol::messages::{ApiKey, CreateAclsRequest};

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{acl_wire, str_bytes, Api};
use crate::node::authority;

/// The versions served.
pub const API: Api = Api::new(ApiKey::CreateAcls, 1, 3);

pub async fn handle(ctx: &RequestContext<'_>, request: CreateAclsRequest) -> CreateAclsResponse {
    let failed = |code: KafkaCode, message: &str| {
        AclCreationResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Some((code, message)) = acl_wire::refused(ctx, Operation::Alter) {
        let results = request.creations.iter().map(|_| failed(code, &message)).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let checked: Vec<Result<crate::acl::AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            acl_wire::binding(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
        })
        .collect();
    let valid: Vec<crate::acl::AclBinding> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let count = valid.len();
    let outcome = if valid.is_empty() {
        Ok(())
    } else {
        authority::create_acls(ctx.shard, valid).await
    };
    if outcome.is_ok() && count > 0 {
        tracing::info!("{} created {count} ACLs", ctx.session.principal());
    }
    let results = checked
        .iter()
        .map(|checked| match (checked, &outcome) {
            (Err(reason), _) => failed(KafkaCode::InvalidRequest, reason),
            (Ok(_), Err(refusal)) => failed(refusal.code, &refusal.message),
            (Ok(_), Ok(())) => AclCreationResult::default().with_error_message(None),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
