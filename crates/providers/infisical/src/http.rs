//! Infisical's side of the shared HTTP layer ([`eso_provider::http`]): its error bodies
//! (`{"statusCode", "message", "error"}`, where the message may be a list of validation
//! issues).

pub(crate) use eso_provider::http::{Call, Http, HttpError, RetryPolicy};
use reqwest::StatusCode;
use serde_json::Value;

/// Infisical's `message`; else the shared layer's (the body's text).
pub(crate) fn decode_error(_: StatusCode, bytes: &[u8], err: &mut HttpError) {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    match body.as_ref().and_then(|b| b.get("message")) {
        Some(Value::String(m)) => m.clone_into(&mut err.message),
        Some(other) => err.message = other.to_string(),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_infisical_error_bodies() {
        let mut err = HttpError::answered(StatusCode::TOO_MANY_REQUESTS, "raw");
        decode_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"reqId":"r","statusCode":429,"message":"Rate limit exceeded","error":"Too Many Requests"}"#,
            &mut err,
        );
        assert_eq!(err.to_string(), "429: Rate limit exceeded");
        let mut list = HttpError::answered(StatusCode::BAD_REQUEST, "raw");
        decode_error(
            StatusCode::BAD_REQUEST,
            br#"{"message":[{"path":["secretName"]}]}"#,
            &mut list,
        );
        assert_eq!(list.message, r#"[{"path":["secretName"]}]"#);
    }
}
