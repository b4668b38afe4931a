//! Doppler's side of the shared HTTP layer ([`eso_provider::http`]): its error bodies
//! (`{"messages": [...], "success": false}`). The token goes as the Basic user name with an
//! empty password, as upstream sends it ([`Call::basic`]); a 304 to `If-None-Match` is an
//! answer.

pub(crate) use eso_provider::http::{Call, Http, HttpError, RetryPolicy};
use reqwest::StatusCode;
use serde_json::Value;

/// Doppler's `messages`, joined; else the shared layer's (the body's text).
pub(crate) fn decode_error(_: StatusCode, bytes: &[u8], err: &mut HttpError) {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    if let Some(Value::Array(list)) = body.as_ref().and_then(|b| b.get("messages")) {
        err.message = list
            .iter()
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_doppler_error_bodies() {
        let mut err = HttpError::answered(StatusCode::TOO_MANY_REQUESTS, "raw");
        decode_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"messages":["Rate limit exceeded","try later"],"success":false}"#,
            &mut err,
        );
        assert_eq!(err.to_string(), "429: Rate limit exceeded; try later");
    }
}
