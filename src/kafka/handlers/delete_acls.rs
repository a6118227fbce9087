//! DeleteAcls: removes the ACLs each filter matches and answers them, per filter (an ACL two
//! filters match is answered under both). The caller needs ALTER on the cluster.

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest};

use crate::acl::{AclBinding, AclFilter, Operation};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{acl_wire, str_bytes, Api};
use crate::node::authority;

/// The versions served.
pub const API: Api = Api::new(ApiKey::DeleteAcls, 1, 3);

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let failed = |code: KafkaCode, message: &str| {
        DeleteAclsFilterResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Some((code, message)) = acl_wire::refused(ctx, Operation::Alter) {
        let results = request.filters.iter().map(|_| failed(code, &message)).collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let max = crate::constants::ACL_FILTERS_PER_REQUEST_MAX;
    if request.filters.len() > max {
        let message = format!("at most {max} filters per DeleteAcls request");
        let results = request
            .filters
            .iter()
            .map(|_| failed(KafkaCode::InvalidRequest, &message))
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let checked: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            acl_wire::filter(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let outcome = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        authority::delete_acls(ctx.shard, valid).await
    };
    if let Ok(removed) = &outcome {
        let count: usize = removed.iter().map(Vec::len).sum();
        if count > 0 {
            tracing::info!("{} deleted {count} ACLs", ctx.session.principal());
        }
    }
    let mut removed = outcome.as_ref().map(|r| r.iter()).ok();
    let results = checked
        .iter()
        .map(|checked| match (checked, &outcome) {
            (Err(reason), _) => failed(KafkaCode::InvalidRequest, reason),
            (Ok(_), Err(refusal)) => failed(refusal.code, &refusal.message),
            (Ok(_), Ok(_)) => {
                let matched = removed
                    .as_mut()
                    .and_then(Iterator::next)
                    .expect("one result per valid filter");
                DeleteAclsFilterResult::default()
                    .with_error_message(None)
                    .with_matching_acls(matched.iter().map(matching).collect())
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching(binding: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_error_message(None)
        .with_resource_type(binding.resource.kind.code())
        .with_resource_name(str_bytes(binding.resource.name.clone()))
        .with_pattern_type(binding.resource.pattern.code())
        .with_principal(str_bytes(binding.entry.principal.clone()))
        .with_host(str_bytes(binding.entry.host.clone()))
        .with_operation(binding.entry.operation.code())
        .with_permission_type(binding.entry.permission.code())
}
