//! 1Password Connect's side of the shared HTTP layer ([`eso_provider::http`]): its error
//! bodies (`{"status", "message"}`), and the retry of a 403 `Authorization…` answer a few
//! times, as upstream does while Connect's token cache catches up
//! (external-secrets/external-secrets#4205).

pub(crate) use eso_provider::http::{Call, Http, HttpError, RetryPolicy};
use reqwest::StatusCode;
use serde_json::Value;

/// Attempts of a call answered 403 `Authorization…`.
const FORBIDDEN_ATTEMPTS: u32 = 3;

/// Connect's `message`; else the shared layer's (the body's text).
pub(crate) fn decode_error(_: StatusCode, bytes: &[u8], err: &mut HttpError) {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    match body.as_ref().and_then(|b| b.get("message")) {
        Some(Value::String(m)) => m.clone_into(&mut err.message),
        Some(other) => err.message = other.to_string(),
        None => {}
    }
}

/// Whether a call that failed at `attempt` with Connect's 403 `Authorization…` is repeated.
pub(crate) fn retry_forbidden(err: &HttpError, attempt: u32) -> bool {
    err.status_is(403) && err.message.starts_with("Authorization") && attempt < FORBIDDEN_ATTEMPTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_connect_error_bodies() {
        let mut err = HttpError::answered(StatusCode::TOO_MANY_REQUESTS, "raw");
        decode_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"status":429,"message":"Rate limit exceeded"}"#,
            &mut err,
        );
        assert_eq!(err.to_string(), "429: Rate limit exceeded");
    }

    #[test]
    fn retries_authorization_refusals_a_few_times() {
        let forbidden = HttpError::answered(
            StatusCode::FORBIDDEN,
            "Authorization: token is not yet valid",
        );
        assert!(retry_forbidden(&forbidden, 1));
        assert!(!retry_forbidden(&forbidden, FORBIDDEN_ATTEMPTS));
        let other = HttpError::answered(StatusCode::FORBIDDEN, "vault access denied");
        assert!(!retry_forbidden(&other, 1));
    }
}
