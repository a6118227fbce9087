//! DescribeAcls: the ACLs a filter matches, grouped by resource pattern. The caller needs
//! DESCRIBE on the cluster. MATCH finds every ACL that applies to the named resource: its
//! literal name, the `*` literal and the prefixes of the name.

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource, DescribeAclsResponse};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest};

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{acl_wire, str_bytes, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeAcls, 1, 3);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let failed = |code: KafkaCode, message: String| {
        DescribeAclsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Some((code, message)) = acl_wire::refused(ctx, Operation::Describe) {
        return failed(code, message);
    }
    let filter = match acl_wire::filter(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(reason) => return failed(KafkaCode::InvalidRequest, reason),
    };
    let snapshot = ctx.shard.metadata();
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    // Bindings come in resource order, so each resource's ACLs are adjacent.
    for binding in snapshot.dynamic.acls.iter().filter(|b| filter.matches(b)) {
        let resource = &binding.resource;
        let same = resources.last().is_some_and(|last| {
            last.resource_type == resource.kind.code()
                && last.pattern_type == resource.pattern.code()
                && last.resource_name.as_str() == resource.name
        });
        if !same {
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(resource.kind.code())
                    .with_resource_name(str_bytes(resource.name.clone()))
                    .with_pattern_type(resource.pattern.code()),
            );
        }
        let entry = &binding.entry;
        resources.last_mut().expect("pushed above").acls.push(
            AclDescription::default()
                .with_principal(str_bytes(entry.principal.clone()))
                .with_host(str_bytes(entry.host.clone()))
                .with_operation(entry.operation.code())
                .with_permission_type(entry.permission.code()),
        );
    }
    DescribeAclsResponse::default()
        .with_error_message(None)
        .with_resources(resources)
}
