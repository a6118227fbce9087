//! The built-in authorizer: Kafka's ACLs, kept in the metadata (cluster.json on a single node,
//! the controller log in a cluster) and checked by every handler through
//! [`crate::kafka::context::RequestContext::access`].
//!
//! An ACL binds a resource pattern (a TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID, named
//! literally, `*` for all, or by a PREFIXED name) to an entry: a principal (`User:alice`, or
//! `User:*`), a host (an IP, or `*`), an operation and ALLOW or DENY. A request is allowed when
//! its principal is a super user; otherwise when no ACL names its resource at all and
//! `allow.everyone.if.no.acl.found` is set; otherwise when an ALLOW matches and no DENY does
//! (DENY wins). An ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE, and one of
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS; a DENY implies nothing.

pub mod codes;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use codes::{Operation, PatternType, Permission, ResourceType};

/// The one name a CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The literal resource name, principal name and host that stand for all of them.
pub const WILDCARD: &str = "*";
/// The principal every `User:` principal matches.
pub const ANY_USER: &str = "User:*";

/// What an ACL is about: a resource type and a name, taken literally or as a prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourcePattern {
    #[serde(rename = "resource_type")]
    pub kind: ResourceType,
    pub name: String,
    pub pattern: PatternType,
}

/// Who may (or may not) do what, from where.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclEntry {
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// One ACL, as CreateAcls makes it and the metadata keeps it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    #[serde(flatten)]
    pub resource: ResourcePattern,
    #[serde(flatten)]
    pub entry: AclEntry,
}

impl AclBinding {
    /// Checks a binding CreateAcls was asked for, as Kafka's controller does.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource.name.is_empty() {
            return Err("Resource name should not be empty".to_string());
        }
        if self.resource.kind == ResourceType::Cluster && self.resource.name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        parse_principal(&self.entry.principal)?;
        if self.entry.host.is_empty() {
            return Err("Invalid host: an ACL's host is an IP address or *".to_string());
        }
        Ok(())
    }

    /// An ACL of `permission` for `principal` to do `operation` on a resource.
    pub fn new(
        resource: ResourcePattern,
        principal: &str,
        host: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource,
            entry: AclEntry {
                principal: principal.to_string(),
                host: host.to_string(),
                operation,
                permission,
            },
        }
    }
}

/// `Type:name`, split; Kafka refuses a principal without the colon.
pub fn parse_principal(text: &str) -> Result<(&str, &str), String> {
    match text.split_once(':') {
        Some((kind, name)) if !kind.is_empty() => Ok((kind, name)),
        _ => Err(format!("Could not parse principal from `{text}` (no colon is present separating the principal type from the principal name)")),
    }
}

/// How a DescribeAcls or DeleteAcls filter matches patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PatternFilter {
    /// Any pattern type; a name, if given, must be equal.
    Any,
    /// The patterns that apply to the named resource: its literal name, the `*` literal and
    /// every prefix of it.
    Match,
    /// Only this pattern type; a name, if given, must be equal.
    Exactly(PatternType),
}

/// A DescribeAcls or DeleteAcls filter: each None matches anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub kind: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// The filter that matches every ACL.
    pub fn any() -> AclFilter {
        AclFilter {
            kind: None,
            name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_resource(&binding.resource) && self.matches_entry(&binding.entry)
    }

    fn matches_resource(&self, resource: &ResourcePattern) -> bool {
        if self.kind.is_some_and(|kind| kind != resource.kind) {
            return false;
        }
        let Some(name) = &self.name else {
            return match self.pattern {
                PatternFilter::Exactly(pattern) => pattern == resource.pattern,
                PatternFilter::Any | PatternFilter::Match => true,
            };
        };
        match self.pattern {
            PatternFilter::Any => *name == resource.name,
            PatternFilter::Exactly(pattern) => pattern == resource.pattern && *name == resource.name,
            PatternFilter::Match => match resource.pattern {
                PatternType::Literal => *name == resource.name || resource.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&resource.name),
            },
        }
    }

    fn matches_entry(&self, entry: &AclEntry) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == entry.principal)
            && self.host.as_ref().is_none_or(|h| *h == entry.host)
            && self.operation.is_none_or(|o| o == entry.operation)
            && self.permission.is_none_or(|p| p == entry.permission)
    }
}

/// The ACLs of a cluster, indexed by resource type and pattern type, then resource name, so
/// that an authorization looks up the resource's literal name, the `*` literal and each
/// prefix of the name, never the whole set. Persisted as the plain list of bindings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<AclBinding>", into = "Vec<AclBinding>")]
pub struct Acls {
    by_resource: BTreeMap<(ResourceType, PatternType), BTreeMap<String, BTreeSet<AclEntry>>>,
    count: usize,
}

impl From<Vec<AclBinding>> for Acls {
    fn from(bindings: Vec<AclBinding>) -> Acls {
        let mut acls = Acls::default();
        for binding in bindings {
            acls.insert(binding);
        }
        acls
    }
}

impl From<Acls> for Vec<AclBinding> {
    fn from(acls: Acls) -> Vec<AclBinding> {
        acls.iter().collect()
    }
}

/// Who asks, from where, to do what: the question an [`Authorizer`] answers.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `Type:name`.
    pub principal: &'a str,
    /// The client's IP address.
    pub host: &'a str,
    pub operation: Operation,
}

impl Acls {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Adds `binding`; false when it was there already.
    pub fn insert(&mut self, binding: AclBinding) -> bool {
        let added = self
            .by_resource
            .entry((binding.resource.kind, binding.resource.pattern))
            .or_default()
            .entry(binding.resource.name)
            .or_default()
            .insert(binding.entry);
        if added {
            self.count += 1;
        }
        added
    }

    /// Removes every binding `filter` matches and returns them.
    pub fn remove_matching(&mut self, filter: &AclFilter) -> Vec<AclBinding> {
        let removed: Vec<AclBinding> = self.iter().filter(|b| filter.matches(b)).collect();
        for binding in &removed {
            let key = (binding.resource.kind, binding.resource.pattern);
            let names = self.by_resource.get_mut(&key).expect("a listed binding's type");
            let entries = names.get_mut(&binding.resource.name).expect("a listed binding's name");
            entries.remove(&binding.entry);
            if entries.is_empty() {
                names.remove(&binding.resource.name);
            }
            if names.is_empty() {
                self.by_resource.remove(&key);
            }
        }
        self.count -= removed.len();
        removed
    }

    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.by_resource
            .get(&(binding.resource.kind, binding.resource.pattern))
            .and_then(|names| names.get(&binding.resource.name))
            .is_some_and(|entries| entries.contains(&binding.entry))
    }

    /// Every binding, in resource order.
    pub fn iter(&self) -> impl Iterator<Item = AclBinding> + '_ {
        self.by_resource.iter().flat_map(|((kind, pattern), names)| {
            names.iter().flat_map(move |(name, entries)| {
                entries.iter().map(move |entry| AclBinding {
                    resource: ResourcePattern {
                        kind: *kind,
                        name: name.clone(),
                        pattern: *pattern,
                    },
                    entry: entry.clone(),
                })
            })
        })
    }

    /// The entries of every pattern that applies to resource `name` of type `kind`.
    fn applying<'s>(&'s self, kind: ResourceType, name: &'s str) -> impl Iterator<Item = &'s AclEntry> + 's {
        let literal = self.by_resource.get(&(kind, PatternType::Literal));
        let prefixed = self.by_resource.get(&(kind, PatternType::Prefixed));
        let literals = literal.into_iter().flat_map(move |names| {
            let exact = names.get(name);
            let wildcard = if name == WILDCARD { None } else { names.get(WILDCARD) };
            exact.into_iter().chain(wildcard).flatten()
        });
        let prefixes = prefixed.into_iter().flat_map(move |names| {
            name.char_indices()
                .map(|(at, c)| &name[..at + c.len_utf8()])
                .filter_map(move |prefix| names.get(prefix))
                .flatten()
        });
        literals.chain(prefixes)
    }

    /// Whether `request` may act on resource `name` of type `kind`, by the ACLs alone (super
    /// users are the [`Authorizer`]'s): a matching DENY refuses, then a matching ALLOW allows;
    /// with neither, `no_acl_allows` decides when no ACL applies to the resource at all.
    pub fn allows(&self, request: &Request, kind: ResourceType, name: &str, no_acl_allows: bool) -> bool {
        let mut any = false;
        let mut allowed = false;
        for entry in self.applying(kind, name) {
            any = true;
            if !entry.concerns(request) {
                continue;
            }
            match entry.permission {
                Permission::Deny if entry.operation.denies(request.operation) => return false,
                Permission::Allow if entry.operation.allows(request.operation) => allowed = true,
                _ => {}
            }
        }
        allowed || (!any && no_acl_allows)
    }

    /// Whether `request` may act on at least one resource of type `kind` (Kafka's
    /// authorizeByResourceType, which an idempotent producer's WRITE on some topic is checked
    /// with): a DENY of the `*` literal refuses; an ALLOW of any pattern not denied by a
    /// DENY of the same or a broader pattern allows; with no ACL of the type, `no_acl_allows`.
    pub fn allows_some(&self, request: &Request, kind: ResourceType, no_acl_allows: bool) -> bool {
        let entries = |pattern: PatternType| {
            self.by_resource
                .get(&(kind, pattern))
                .into_iter()
                .flat_map(|names| names.iter())
                .flat_map(|(name, entries)| entries.iter().map(move |entry| (name.as_str(), entry)))
        };
        let concerning = |pattern| entries(pattern).filter(|(_, e)| e.concerns(request));
        let denied = |pattern: PatternType, target: &str| {
            concerning(PatternType::Literal).any(|(name, e)| {
                e.permission == Permission::Deny
                    && e.operation.denies(request.operation)
                    && (name == WILDCARD || (pattern == PatternType::Literal && name == target))
            }) || concerning(PatternType::Prefixed).any(|(name, e)| {
                e.permission == Permission::Deny && e.operation.denies(request.operation) && target.starts_with(name)
            })
        };
        if denied(PatternType::Literal, WILDCARD) {
            return false;
        }
        let mut any = false;
        for pattern in [PatternType::Literal, PatternType::Prefixed] {
            for (name, entry) in entries(pattern) {
                any = true;
                if entry.concerns(request)
                    && entry.permission == Permission::Allow
                    && entry.operation.allows(request.operation)
                    && !denied(pattern, name)
                {
                    return true;
                }
            }
        }
        !any && no_acl_allows
    }
}

impl AclEntry {
    /// Whether the entry names the request's principal and host (or their wildcards).
    fn concerns(&self, request: &Request) -> bool {
        (self.principal == request.principal || (self.principal == ANY_USER && request.principal.starts_with("User:")))
            && (self.host == WILDCARD || self.host == request.host)
    }
}

/// `acl.enable`'s authorizer: the super users and the rule for resources without ACLs. The
/// ACLs themselves come with each metadata snapshot.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    super_users: BTreeSet<String>,
    allow_if_no_acl: bool,
}

impl Authorizer {
    /// From `super.users` (`User:a;User:b`) and `allow.everyone.if.no.acl.found`.
    pub fn new(super_users: &str, allow_if_no_acl: bool) -> Result<Authorizer, String> {
        let mut users = BTreeSet::new();
        for user in super_users.split(';').map(str::trim).filter(|u| !u.is_empty()) {
            parse_principal(user)?;
            users.insert(user.to_string());
        }
        Ok(Authorizer {
            super_users: users,
            allow_if_no_acl,
        })
    }

    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.contains(principal)
    }

    pub fn authorize(&self, acls: &Acls, request: &Request, kind: ResourceType, name: &str) -> bool {
        self.is_super_user(request.principal) || acls.allows(request, kind, name, self.allow_if_no_acl)
    }

    pub fn authorize_some(&self, acls: &Acls, request: &Request, kind: ResourceType) -> bool {
        self.is_super_user(request.principal) || acls.allows_some(request, kind, self.allow_if_no_acl)
    }
}

#[cfg(test)]
mod tests;
