//! Chef's side of the shared HTTP layer ([`eso_provider::http`]): every attempt is signed
//! again (so timestamps stay fresh), and Chef's error bodies (`{"error": ["..."]}`) are read.

use eso_provider::http::{Call, Http as Shared};
pub(crate) use eso_provider::http::{HttpError, RetryPolicy};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::sign::{self, RequestSigner};

/// Chef's message: the strings of `{"error": [...]}` (or `{"error": "..."}`); else the shared
/// layer's (the body's text).
fn decode_error(_: StatusCode, bytes: &[u8], err: &mut HttpError) {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    match body.as_ref().and_then(|b| b.get("error")) {
        Some(Value::Array(items)) => {
            err.message = items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ");
        }
        Some(Value::String(s)) => s.clone_into(&mut err.message),
        _ => {}
    }
}

/// The signed HTTP client of one Chef client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    http: Shared,
    signer: RequestSigner,
}

impl Http {
    pub(crate) fn new(client: reqwest::Client, signer: RequestSigner, retry: RetryPolicy) -> Self {
        Self {
            http: Shared::new(client, retry, "Chef server").errors(decode_error),
            signer,
        }
    }

    /// GETs `url` and returns the JSON of a 2xx answer, retrying as the policy allows.
    pub(crate) async fn get_json(&self, url: &Url) -> Result<Value, HttpError> {
        let call = Call::get(url.clone());
        let sign = |call: &Call| {
            self.signer
                .headers(
                    "GET",
                    call.url.path(),
                    b"",
                    &sign::timestamp(jiff::Timestamp::now()),
                )
                .map_err(|e| HttpError::local("cannot sign the request").with_source(e))
        };
        self.http.send_signed(&call, sign).await?.json(&call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &[u8]) -> String {
        let mut err =
            HttpError::answered(StatusCode::NOT_FOUND, eso_provider::http::body_text(body));
        decode_error(StatusCode::NOT_FOUND, body, &mut err);
        err.message
    }

    #[test]
    fn reads_chef_error_bodies() {
        assert_eq!(
            message(br#"{"error":["Cannot load data bag item x for data bag y"]}"#),
            "Cannot load data bag item x for data bag y"
        );
        assert_eq!(message(br#"{"error":"nope"}"#), "nope");
        assert_eq!(message(b" plain \n"), "plain");
    }
}
