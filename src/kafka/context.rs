//! Who sent a request and over what: the per-connection [`Session`] and the per-request
//! [`RequestContext`] every handler receives.
//!
//! A session knows the listener its connection came in on (Metadata answers with that
//! listener's addresses) and its principal: `User:ANONYMOUS`, a TLS client certificate's
//! subject, or the user SASL authenticated. Handlers ask the context's [`Access`] what that
//! principal may do ([`crate::acl`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, Request, ResourceType, CLUSTER_NAME};
use crate::metadata::MetadataSnapshot;
use crate::node::Shard;

/// The listener name of the plaintext listener, as Kafka names it.
pub const PLAINTEXT_LISTENER: &str = "PLAINTEXT";

/// An authenticated identity, in Kafka's form `Type:name` (`User:alice`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    /// The principal of a connection that has not authenticated: Kafka's `User:ANONYMOUS`.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// `User:name`.
    pub fn user(name: &str) -> Principal {
        Principal {
            kind: "User".to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// One client connection, as the requests on it see it.
#[derive(Debug)]
pub struct Session {
    /// Unique within the process for its life.
    pub connection_id: u64,
    /// The name of the listener the connection was accepted on.
    pub listener: String,
    /// The client's address (`ip:port`), or "unknown peer".
    pub peer: String,
    /// Who the client is: set by TLS at accept, or by SASL once it authenticates.
    pub principal: RefCell<Principal>,
    /// Where a SASL listener's session is in authenticating ([`crate::kafka::sasl`]).
    pub sasl: RefCell<crate::kafka::sasl::SaslStage>,
    /// Set by a handler whose response must be the connection's last: why it closes.
    pub close_after: RefCell<Option<String>>,
}

/// Connection ids are taken once per accepted connection, never per request.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

impl Session {
    /// A new anonymous session on the plaintext listener.
    pub fn plaintext(peer: String) -> Session {
        Session::on(PLAINTEXT_LISTENER, peer, Principal::anonymous(), false)
    }

    /// A new session on listener `listener`, of `principal`; `sasl` when it must
    /// authenticate with SASL before anything else.
    pub fn on(listener: &str, peer: String, principal: Principal, sasl: bool) -> Session {
        let stage = if sasl {
            crate::kafka::sasl::SaslStage::Handshake
        } else {
            crate::kafka::sasl::SaslStage::Off
        };
        Session {
            connection_id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            listener: listener.to_string(),
            peer,
            principal: RefCell::new(principal),
            sasl: RefCell::new(stage),
            close_after: RefCell::new(None),
        }
    }

    /// The principal the session acts as.
    pub fn principal(&self) -> Principal {
        self.principal.borrow().clone()
    }

    /// Makes the response being built the connection's last.
    pub fn close_after_response(&self, reason: String) {
        *self.close_after.borrow_mut() = Some(reason);
    }
}

/// What a handler knows of its request besides the body: the shard it runs on, the session it
/// came over, and the header's client id and version.
pub struct RequestContext<'a> {
    pub shard: &'a Rc<Shard>,
    pub session: &'a Session,
    /// The API the request is of.
    pub api_key: ApiKey,
    /// The header's client id ("" when the client sent none).
    pub client_id: &'a str,
    /// The version the handler serves (a v10 OffsetCommit or OffsetFetch is served as the v9
    /// it is but for topic ids: see [`crate::kafka::topic_ids`]).
    pub api_version: i16,
    /// The size of the frame the request came in: produce batches are slices of it.
    pub frame_bytes: usize,
}

impl<'a> RequestContext<'a> {
    /// The client's host as Kafka reports a member's host: "/" and the IP, as Java prints an
    /// address.
    pub fn client_host(&self) -> String {
        format!("/{}", self.session.peer_ip())
    }

    /// What the session's principal may do, read against the ACLs of the current metadata.
    pub fn access(&self) -> Access<'_, 'a> {
        let checks = self.shard.config.authorizer.as_ref().map(|authorizer| Checks {
            authorizer: authorizer.clone(),
            snapshot: self.shard.metadata(),
            principal: self.session.principal().to_string(),
            host: self.session.peer_ip().to_string(),
        });
        Access { ctx: self, checks }
    }

    /// One check: whether the principal may do `operation` on the resource.
    pub fn allows(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        self.access().allows(operation, kind, name)
    }

    /// One check on the cluster resource.
    pub fn allows_cluster(&self, operation: Operation) -> bool {
        self.access().allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }
}

impl Session {
    /// The client's IP address, as ACL hosts name it: without port or brackets.
    pub fn peer_ip(&self) -> &str {
        let peer = self.peer.as_str();
        let host = peer.rsplit_once(':').map_or(peer, |(host, _)| host);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// What an authorizer needs for a request's checks, taken once per [`Access`].
struct Checks {
    authorizer: Arc<crate::acl::Authorizer>,
    snapshot: Arc<MetadataSnapshot>,
    principal: String,
    host: String,
}

/// The principal's rights for one request. Without `acl.enable` everything is allowed at
/// no cost; with it, each refusal [`Access::allows`] gives is counted (per API and listener)
/// and logged at debug, while [`Access::sees`] filters silently, as Kafka does for the
/// topics a listing leaves out.
pub struct Access<'c, 'a> {
    ctx: &'c RequestContext<'a>,
    checks: Option<Checks>,
}

impl Access<'_, '_> {
    /// Whether the principal may do `operation` on the resource; a refusal is counted.
    pub fn allows(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        let allowed = self.sees(operation, kind, name);
        if !allowed {
            self.denied(operation, kind, name);
        }
        allowed
    }

    pub fn allows_cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the principal may do `operation` on some resource of type `kind` (an
    /// idempotent producer's WRITE on some topic); a refusal is counted.
    pub fn allows_some(&self, operation: Operation, kind: ResourceType) -> bool {
        let Some(checks) = &self.checks else {
            return true;
        };
        let allowed = checks
            .authorizer
            .authorize_some(&checks.snapshot.dynamic.acls, &checks.request(operation), kind);
        if !allowed {
            self.denied(operation, kind, "any");
        }
        allowed
    }

    /// Like [`Access::allows`], for what is left out rather than refused: nothing counted.
    pub fn sees(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        match &self.checks {
            None => true,
            Some(checks) => {
                checks
                    .authorizer
                    .authorize(&checks.snapshot.dynamic.acls, &checks.request(operation), kind, name)
            }
        }
    }

    /// The authorized-operations bit field (KIP-430) of the resource: `1 << code` for each
    /// of its type's operations the principal may perform.
    pub fn operations(&self, kind: ResourceType, name: &str) -> i32 {
        kind.operations()
            .iter()
            .filter(|operation| self.sees(**operation, kind, name))
            .fold(0, |bits, operation| bits | (1 << operation.code()))
    }

    fn denied(&self, operation: Operation, kind: ResourceType, name: &str) {
        let ctx = self.ctx;
        ctx.shard
            .metrics
            .authorization_denied(ctx.api_key as i16, &ctx.session.listener);
        tracing::debug!(
            "{} from {} on {}: {:?} {operation} on {kind} {name} denied",
            ctx.session.principal(),
            ctx.session.peer,
            ctx.session.listener,
            ctx.api_key
        );
    }
}

impl Checks {
    fn request(&self, operation: Operation) -> Request<'_> {
        Request {
            principal: &self.principal,
            host: &self.host,
            operation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_get_distinct_ids_and_the_anonymous_principal() {
        let first = Session::plaintext("127.0.0.1:5000".to_string());
        let second = Session::plaintext("127.0.0.1:5001".to_string());
        assert_ne!(first.connection_id, second.connection_id);
        assert_eq!(first.principal().to_string(), "User:ANONYMOUS");
        assert_eq!(first.listener, "PLAINTEXT");
    }
}
