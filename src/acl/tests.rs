use super::*;

fn binding(
    kind: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding::new(
        ResourcePattern {
            kind,
            name: name.to_string(),
            pattern,
        },
        principal,
        WILDCARD,
        operation,
        permission,
    )
}

fn topic(name: &str, principal: &str, operation: Operation, permission: Permission) -> AclBinding {
    binding(
        ResourceType::Topic,
        name,
        PatternType::Literal,
        principal,
        operation,
        permission,
    )
}

fn ask<'a>(principal: &'a str, operation: Operation) -> Request<'a> {
    Request {
        principal,
        host: "127.0.0.1",
        operation,
    }
}

#[test]
fn deny_beats_allow_and_allow_implies_describe() {
    let acls: Acls = vec![
        topic("orders", "User:alice", Operation::All, Permission::Allow),
        topic("orders", "User:alice", Operation::Write, Permission::Deny),
        topic("orders", "User:bob", Operation::Read, Permission::Allow),
    ]
    .into();
    let allowed = |principal, operation| acls.allows(&ask(principal, operation), ResourceType::Topic, "orders", false);
    assert!(allowed("User:alice", Operation::Read));
    assert!(!allowed("User:alice", Operation::Write), "the DENY wins");
    assert!(allowed("User:bob", Operation::Describe), "READ implies DESCRIBE");
    assert!(!allowed("User:bob", Operation::Write));
    assert!(
        !allowed("User:carol", Operation::Read),
        "ACLs exist: no ALLOW, no access"
    );
}

#[test]
fn wildcards_and_prefixes_apply() {
    let acls: Acls = vec![
        binding(
            ResourceType::Topic,
            "pay-",
            PatternType::Prefixed,
            "User:*",
            Operation::Read,
            Permission::Allow,
        ),
        topic("*", "User:ops", Operation::Describe, Permission::Allow),
        binding(
            ResourceType::Topic,
            "pay-secret",
            PatternType::Prefixed,
            "User:eve",
            Operation::Read,
            Permission::Deny,
        ),
    ]
    .into();
    let allowed = |principal, name| acls.allows(&ask(principal, Operation::Read), ResourceType::Topic, name, false);
    assert!(allowed("User:eve", "pay-in"));
    assert!(!allowed("User:eve", "pay-secret-2"), "a longer prefix's DENY");
    assert!(!allowed("User:eve", "payroll"));
    assert!(acls.allows(
        &ask("User:ops", Operation::Describe),
        ResourceType::Topic,
        "anything",
        false
    ));
    let elsewhere = Request {
        host: "10.0.0.9",
        ..ask("User:eve", Operation::Read)
    };
    assert!(
        acls.allows(&elsewhere, ResourceType::Topic, "pay-in", false),
        "host * matches any host"
    );
}

#[test]
fn no_acl_found_is_the_configured_default() {
    let acls: Acls = vec![topic("orders", "User:alice", Operation::Read, Permission::Allow)].into();
    let request = ask("User:bob", Operation::Read);
    assert!(acls.allows(&request, ResourceType::Topic, "other", true));
    assert!(!acls.allows(&request, ResourceType::Topic, "other", false));
    assert!(
        !acls.allows(&request, ResourceType::Topic, "orders", true),
        "ACLs name the topic"
    );
}

#[test]
fn hosts_are_matched_exactly() {
    let mut only_local = topic("orders", "User:alice", Operation::Read, Permission::Allow);
    only_local.entry.host = "127.0.0.1".to_string();
    let acls: Acls = vec![only_local].into();
    let from = |host| Request {
        host,
        ..ask("User:alice", Operation::Read)
    };
    assert!(acls.allows(&from("127.0.0.1"), ResourceType::Topic, "orders", false));
    assert!(!acls.allows(&from("10.1.1.1"), ResourceType::Topic, "orders", false));
}

#[test]
fn super_users_pass_everything() {
    let authorizer = Authorizer::new("User:admin; User:ops", false).unwrap();
    let acls: Acls = vec![topic("orders", "User:admin", Operation::All, Permission::Deny)].into();
    assert!(authorizer.authorize(
        &acls,
        &ask("User:admin", Operation::Write),
        ResourceType::Topic,
        "orders"
    ));
    assert!(authorizer.authorize(
        &acls,
        &ask("User:ops", Operation::Alter),
        ResourceType::Cluster,
        CLUSTER_NAME
    ));
    assert!(!authorizer.authorize(&acls, &ask("User:bob", Operation::Read), ResourceType::Topic, "orders"));
    assert!(Authorizer::new("admin", false).is_err(), "a principal needs its type");
}

#[test]
fn some_resource_of_a_type() {
    let prefixed_write = binding(
        ResourceType::Topic,
        "app-",
        PatternType::Prefixed,
        "User:app",
        Operation::Write,
        Permission::Allow,
    );
    let acls: Acls = vec![prefixed_write.clone()].into();
    assert!(acls.allows_some(&ask("User:app", Operation::Write), ResourceType::Topic, false));
    assert!(!acls.allows_some(&ask("User:other", Operation::Write), ResourceType::Topic, false));
    let denied: Acls = vec![
        prefixed_write,
        topic("*", "User:app", Operation::Write, Permission::Deny),
    ]
    .into();
    assert!(!denied.allows_some(&ask("User:app", Operation::Write), ResourceType::Topic, false));
    let covered: Acls = vec![
        topic("app-x", "User:app", Operation::Write, Permission::Allow),
        binding(
            ResourceType::Topic,
            "app",
            PatternType::Prefixed,
            "User:app",
            Operation::Write,
            Permission::Deny,
        ),
    ]
    .into();
    assert!(!covered.allows_some(&ask("User:app", Operation::Write), ResourceType::Topic, false));
    assert!(Acls::default().allows_some(&ask("User:app", Operation::Write), ResourceType::Topic, true));
}

#[test]
fn filters_match_as_kafkas_do() {
    let literal = topic("orders", "User:alice", Operation::Read, Permission::Allow);
    let wildcard = topic("*", "User:alice", Operation::Read, Permission::Allow);
    let prefixed = binding(
        ResourceType::Topic,
        "ord",
        PatternType::Prefixed,
        "User:alice",
        Operation::Read,
        Permission::Allow,
    );
    let named = |pattern| AclFilter {
        name: Some("orders".to_string()),
        pattern,
        ..AclFilter::any()
    };
    let matched = |filter: &AclFilter| [&literal, &wildcard, &prefixed].map(|b| filter.matches(b));
    assert_eq!(matched(&named(PatternFilter::Match)), [true, true, true]);
    assert_eq!(matched(&named(PatternFilter::Any)), [true, false, false]);
    assert_eq!(
        matched(&named(PatternFilter::Exactly(PatternType::Prefixed))),
        [false, false, false]
    );
    assert_eq!(matched(&AclFilter::any()), [true, true, true]);
    let bob = AclFilter {
        principal: Some("User:bob".to_string()),
        ..AclFilter::any()
    };
    assert_eq!(matched(&bob), [false, false, false]);
}

#[test]
fn removal_returns_what_matched_and_the_list_round_trips() {
    let mut acls: Acls = vec![
        topic("a", "User:x", Operation::Read, Permission::Allow),
        topic("b", "User:x", Operation::Read, Permission::Allow),
        binding(
            ResourceType::Group,
            "g",
            PatternType::Literal,
            "User:x",
            Operation::Read,
            Permission::Allow,
        ),
    ]
    .into();
    assert!(
        !acls.insert(topic("a", "User:x", Operation::Read, Permission::Allow)),
        "a duplicate"
    );
    let json = serde_json::to_string(&acls).unwrap();
    assert_eq!(serde_json::from_str::<Acls>(&json).unwrap(), acls);
    let topics = AclFilter {
        kind: Some(ResourceType::Topic),
        ..AclFilter::any()
    };
    assert_eq!(acls.remove_matching(&topics).len(), 2);
    assert_eq!(acls.len(), 1);
    assert!(acls.iter().all(|b| b.resource.kind == ResourceType::Group));
}

#[test]
fn validation_refuses_what_kafka_refuses() {
    let mut cluster = binding(
        ResourceType::Cluster,
        "other",
        PatternType::Literal,
        "User:a",
        Operation::Alter,
        Permission::Allow,
    );
    assert!(cluster.validate().is_err());
    cluster.resource.name = CLUSTER_NAME.to_string();
    assert!(cluster.validate().is_ok());
    assert!(topic("", "User:a", Operation::Read, Permission::Allow)
        .validate()
        .is_err());
    assert!(topic("t", "alice", Operation::Read, Permission::Allow)
        .validate()
        .is_err());
}
