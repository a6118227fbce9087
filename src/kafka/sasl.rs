//! SASL on a connection: where a session is in authenticating, what it may send meanwhile,
//! and the unframed flow of SaslHandshake v0.
//!
//! On a SASL listener a session starts at [`SaslStage::Handshake`]: only ApiVersions and
//! SaslHandshake are served, anything else closes the connection. SaslHandshake v1 moves it to
//! [`SaslStage::Framed`], where SaslAuthenticate requests carry the mechanism's messages;
//! SaslHandshake v0 to [`SaslStage::Unframed`], where the next frames are the bare messages
//! (size-prefixed, no request header), as Kafka's oldest clients send them. Once authenticated
//! the session's principal is `User:<name>`; with `connections.max.reauth.ms` the session
//! lasts that long, and a client must authenticate again (SaslHandshake and SaslAuthenticate
//! on the same connection, as the same user, KIP-368) before it runs out, or it is closed at
//! its next request. A failed login is answered SASL_AUTHENTICATION_FAILED and closes.

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::context::{Principal, Session};
use super::frame::ResponseFrame;
use super::Handled;
use crate::error::ProtocolError;
use crate::node::Shard;
use crate::sasl::{Exchange, Mechanism, Step};

/// Where a session is in authenticating.
#[derive(Debug)]
pub enum SaslStage {
    /// Not a SASL listener.
    Off,
    /// Waiting for SaslHandshake.
    Handshake,
    /// After SaslHandshake v1: SaslAuthenticate carries the messages. `again`: the user of a
    /// re-authentication, who must stay the same.
    Framed { exchange: Exchange, again: Option<String> },
    /// After SaslHandshake v0: the next frames are the bare messages.
    Unframed { exchange: Exchange },
    /// Authenticated as `user`; the session ends at `expires`, if set.
    Authenticated {
        user: String,
        mechanism: Mechanism,
        expires: Option<Instant>,
    },
}

/// What the session may not send now: the reason to close it, None when the frame may be
/// handled. A frame of the unframed flow is answered here.
pub fn gate(shard: &Shard, frame: &Bytes, session: &Session) -> Option<Handled> {
    let api_key = (frame.len() >= 2).then(|| i16::from_be_bytes([frame[0], frame[1]]));
    let is = |key: ApiKey| api_key == Some(key as i16);
    let refuse = |reason: String| {
        shard
            .metrics
            .authentication_failed(api_key.unwrap_or(crate::metrics::NO_API), &session.listener);
        Some(Handled::Ready(Err(ProtocolError::Sasl(reason))))
    };
    let stage = session.sasl.borrow();
    match &*stage {
        SaslStage::Off => None,
        SaslStage::Unframed { .. } => {
            drop(stage);
            Some(unframed(shard, frame, session))
        }
        SaslStage::Authenticated { expires, .. } => {
            let expired = expires.is_some_and(|at| Instant::now() >= at);
            if expired && !is(ApiKey::SaslHandshake) && !is(ApiKey::ApiVersions) {
                return refuse("the session outlived connections.max.reauth.ms without authenticating again".into());
            }
            None
        }
        SaslStage::Handshake | SaslStage::Framed { .. } => {
            let framed = matches!(&*stage, SaslStage::Framed { .. });
            if is(ApiKey::ApiVersions) || is(ApiKey::SaslHandshake) || (framed && is(ApiKey::SaslAuthenticate)) {
                return None;
            }
            let what = api_key
                .and_then(|k| ApiKey::try_from(k).ok())
                .map_or_else(|| format!("{api_key:?}"), |k| format!("{k:?}"));
            refuse(format!("{what} before the session authenticated"))
        }
    }
}

/// One message of the unframed flow: the reply is the bare answer (a zero-length frame when
/// the mechanism has nothing to say); a failure closes without an answer, as Kafka does.
fn unframed(shard: &Shard, frame: &Bytes, session: &Session) -> Handled {
    match step(shard, session, frame) {
        Ok(answer) => {
            let mut out = BytesMut::with_capacity(4 + answer.len());
            out.put_i32(answer.len() as i32);
            out.put_slice(&answer);
            Handled::Ready(Ok(Some(ResponseFrame::whole(out.freeze()))))
        }
        Err(reason) => Handled::Ready(Err(ProtocolError::Sasl(reason))),
    }
}

/// Feeds the client's message to the session's exchange: the answer to send, or why the
/// login failed. On success the session is authenticated (its principal set).
pub fn step(shard: &Shard, session: &Session, message: &[u8]) -> Result<Vec<u8>, String> {
    // The unframed flow's messages follow a SaslHandshake v0; the framed ones are
    // SaslAuthenticate's.
    let api_key = match &*session.sasl.borrow() {
        SaslStage::Unframed { .. } => ApiKey::SaslHandshake as i16,
        _ => ApiKey::SaslAuthenticate as i16,
    };
    let mut stage = session.sasl.borrow_mut();
    let (exchange, again) = match &mut *stage {
        SaslStage::Framed { exchange, again } => (exchange, again.clone()),
        SaslStage::Unframed { exchange } => (exchange, None),
        _ => return Err("no SASL exchange in progress".into()),
    };
    let mechanism = exchange.mechanism();
    let snapshot = shard.metadata();
    let users = crate::sasl::Users {
        config: &shard.config.credentials,
        online: &snapshot.dynamic.scram,
    };
    match exchange.step(message, &users) {
        Step::Continue(answer) => Ok(answer),
        Step::Failed(reason) => {
            shard.metrics.authentication_failed(api_key, &session.listener);
            Err(format!("{} authentication failed: {reason}", mechanism.name()))
        }
        Step::Done { user, response } => {
            if let Some(before) = again {
                if before != user {
                    shard.metrics.authentication_failed(api_key, &session.listener);
                    return Err(format!("re-authentication as {user:?} by a session of {before:?}"));
                }
            }
            let reauth_ms = shard.config.security.connections_max_reauth_ms;
            let expires = (reauth_ms > 0).then(|| Instant::now() + std::time::Duration::from_millis(reauth_ms));
            *session.principal.borrow_mut() = Principal::user(&user);
            tracing::debug!(
                "SASL {}: {} on {} authenticated as User:{user}",
                mechanism.name(),
                session.peer,
                session.listener
            );
            *stage = SaslStage::Authenticated {
                user,
                mechanism,
                expires,
            };
            Ok(response)
        }
    }
}
