//! SaslAuthenticate: one message of the session's SASL exchange, after SaslHandshake v1. A
//! failed login is answered SASL_AUTHENTICATION_FAILED and closes the connection; a
//! successful one reports (v1+) how long the session lasts (`connections.max.reauth.ms`, 0 for
//! ever).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::Api;
use crate::kafka::sasl::SaslStage;

/// The versions served.
pub const API: Api = Api::new(ApiKey::SaslAuthenticate, 0, 2);

pub async fn handle(ctx: &RequestContext<'_>, request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let session = ctx.session;
    let (mechanism, off) = match &*session.sasl.borrow() {
        SaslStage::Framed { exchange, .. } => (Some(exchange.mechanism().name()), false),
        SaslStage::Off => (None, true),
        _ => (None, false),
    };
    let Some(mechanism) = mechanism else {
        if !off {
            session.close_after_response("SaslAuthenticate out of turn".into());
        }
        return SaslAuthenticateResponse::default()
            .with_error_code(KafkaCode::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "SaslAuthenticate without a SaslHandshake v1 before it",
            )));
    };
    match crate::kafka::sasl::step(ctx.shard, session, &request.auth_bytes) {
        Ok(answer) => {
            let authenticated = matches!(&*session.sasl.borrow(), SaslStage::Authenticated { .. });
            let lifetime = if authenticated {
                ctx.shard.config.security.connections_max_reauth_ms as i64
            } else {
                0
            };
            SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(answer))
                .with_session_lifetime_ms(lifetime)
        }
        Err(reason) => {
            tracing::info!("{} on {}: {reason}", session.peer, session.listener);
            session.close_after_response(reason);
            SaslAuthenticateResponse::default()
                .with_error_code(KafkaCode::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism \
                     {mechanism}"
                ))))
        }
    }
}
