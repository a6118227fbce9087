//! SaslHandshake: the client names its mechanism. v1 starts the framed exchange
//! (SaslAuthenticate), v0 the unframed one ([`crate::kafka::sasl`]). A mechanism not in
//! `sasl.enabled.mechanisms` is answered UNSUPPORTED_SASL_MECHANISM with the enabled ones, and
//! the connection closes; on a listener without SASL the answer is ILLEGAL_SASL_STATE, as
//! Kafka's.

use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::Api;
use crate::kafka::sasl::SaslStage;
use crate::sasl::{Exchange, Mechanism};

/// The versions served.
pub const API: Api = Api::new(ApiKey::SaslHandshake, 0, 1);

pub async fn handle(ctx: &RequestContext<'_>, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let session = ctx.session;
    let enabled = ctx.shard.config.security.mechanisms().unwrap_or_default();
    let response = SaslHandshakeResponse::default()
        .with_mechanisms(enabled.iter().map(|m| StrBytes::from_static_str(m.name())).collect());
    let wanted = Mechanism::parse(request.mechanism.as_str()).filter(|m| enabled.contains(m));
    let mut stage = session.sasl.borrow_mut();
    let again = match &*stage {
        SaslStage::Off => return response.with_error_code(KafkaCode::IllegalSaslState.code()),
        SaslStage::Handshake => None,
        // KIP-368: a live session authenticates again, framed, with the same mechanism.
        SaslStage::Authenticated { user, mechanism, .. } if ctx.api_version >= 1 && Some(*mechanism) == wanted => {
            Some(user.clone())
        }
        _ => {
            session.close_after_response("SaslHandshake out of turn".into());
            return response.with_error_code(KafkaCode::IllegalSaslState.code());
        }
    };
    let Some(mechanism) = wanted else {
        session.close_after_response(format!("SASL mechanism {} is not enabled", request.mechanism.as_str()));
        return response.with_error_code(KafkaCode::UnsupportedSaslMechanism.code());
    };
    let exchange = Exchange::new(mechanism);
    *stage = if ctx.api_version == 0 {
        SaslStage::Unframed { exchange }
    } else {
        SaslStage::Framed { exchange, again }
    };
    response
}
