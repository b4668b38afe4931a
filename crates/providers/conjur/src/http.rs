//! Conjur's side of the shared HTTP layer ([`eso_provider::http`]): its error bodies
//! (`{"error": {"code", "message"}}`, or none at all for 401 and 403, which keep the status's
//! reason).

pub(crate) use eso_provider::http::{Answer, Call, Http, HttpError, RetryPolicy};
use reqwest::StatusCode;
use serde_json::Value;

/// Conjur's message: `error.message` of its JSON body; else the shared layer's (the body's
/// text, or the status's reason when there is no body).
pub(crate) fn decode_error(_: StatusCode, bytes: &[u8], err: &mut HttpError) {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    if let Some(m) = body
        .as_ref()
        .and_then(|b| b.pointer("/error/message"))
        .and_then(Value::as_str)
    {
        m.clone_into(&mut err.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_conjur_error_bodies() {
        let mut err = HttpError::answered(StatusCode::NOT_FOUND, "raw");
        decode_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"not_found","message":"CONJ00076E Variable a:variable:x is empty or not found."}}"#,
            &mut err,
        );
        assert_eq!(
            err.message,
            "CONJ00076E Variable a:variable:x is empty or not found."
        );
        let mut plain = HttpError::answered(StatusCode::BAD_GATEWAY, "bad gateway");
        decode_error(StatusCode::BAD_GATEWAY, b" bad gateway \n", &mut plain);
        assert_eq!(plain.message, "bad gateway");
    }
}
