//! GitLab's side of the shared HTTP layer ([`eso_provider::http`]): its error bodies
//! (`{"message": "..."}`, `{"message": {field: [...]}}` or `{"error": "..."}`).

pub(crate) use eso_provider::http::{Call, Http, HttpError, RetryPolicy};
use reqwest::StatusCode;
use serde_json::Value;

/// GitLab's message: `message` (a string, or field errors) or `error`; else the shared
/// layer's (the body's text, or the status's reason).
pub(crate) fn decode_error(_: StatusCode, bytes: &[u8], err: &mut HttpError) {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    match body
        .as_ref()
        .and_then(|b| b.get("message").or_else(|| b.get("error")))
    {
        Some(Value::String(m)) => m.clone_into(&mut err.message),
        Some(other) => err.message = other.to_string(),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: StatusCode, body: &[u8]) -> String {
        let mut err = HttpError::answered(status, eso_provider::http::body_text(body));
        decode_error(status, body, &mut err);
        err.message
    }

    #[test]
    fn reads_gitlab_error_bodies() {
        assert_eq!(
            message(
                StatusCode::NOT_FOUND,
                br#"{"message":"404 Variable Not Found"}"#
            ),
            "404 Variable Not Found"
        );
        assert_eq!(
            message(
                StatusCode::BAD_REQUEST,
                br#"{"message":{"key":["(K) has already been taken"]}}"#
            ),
            r#"{"key":["(K) has already been taken"]}"#
        );
        assert_eq!(
            message(StatusCode::BAD_REQUEST, br#"{"error":"key is missing"}"#),
            "key is missing"
        );
        assert_eq!(
            message(StatusCode::TOO_MANY_REQUESTS, b"Retry later\n"),
            "Retry later"
        );
    }
}
