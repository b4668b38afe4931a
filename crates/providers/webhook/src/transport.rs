//! One HTTP exchange with the webhook: the client (CA, timeouts, redirect rule), the NTLM
//! handshake when the store asks for it, the response-size cap, the
//! `externalsecret_provider_api_calls_count` metric and the mapping of every failure to an
//! [`ErrorKind`] by its cause.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use eso_provider::http::{ClientSettings, status_kind};
use eso_provider::{ErrorKind, ProviderError};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use crate::ntlm::{self, Challenge, Credentials};

/// The `provider` label of upstream's `externalsecret_provider_api_calls_count`.
const PROVIDER_LABEL: &str = "Webhook";

/// The `call` label values.
pub(crate) mod call {
    pub(crate) const GET: &str = "GetWebhookData";
    pub(crate) const PUSH: &str = "PushWebhookData";
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub(crate) struct TransportSettings {
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) cross_host_redirects: bool,
    /// `auth.ntlm`'s user and password.
    pub(crate) ntlm: Option<Credentials>,
}

/// One request, rendered.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) label: &'static str,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

/// The HTTP client of one webhook client.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
    ntlm: Option<Arc<NtlmSession>>,
}

/// NTLM authenticates a connection, not a request: the three messages must travel on one
/// kept-alive connection. The client keeps at most one idle connection and runs one exchange
/// at a time, so the connection a handshake starts on is the one it ends on, and once
/// authenticated the next exchange reuses it without a new handshake (as go-ntlmssp does,
/// each exchange first goes without credentials).
#[derive(Debug)]
struct NtlmSession {
    credentials: Credentials,
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// An answer, read within the size cap.
struct Read {
    status: StatusCode,
    retry_after: Option<Duration>,
    /// The headers of a 401 (for the NTLM handshake); empty otherwise.
    headers_seen: HeaderMap,
    body: Vec<u8>,
}

/// The scheme (`NTLM` or `Negotiate`) a 401 offers and the base64 token after it, if any.
/// NTLM is preferred when both are offered, as go-ntlmssp does.
fn offered_ntlm(headers: &HeaderMap) -> Option<(&'static str, Option<Vec<u8>>)> {
    let mut offers = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|offer| {
            let offer = offer.trim();
            let (scheme, token) = offer.split_once(' ').unwrap_or((offer, ""));
            let scheme = if scheme.eq_ignore_ascii_case("NTLM") {
                "NTLM"
            } else if scheme.eq_ignore_ascii_case("Negotiate") {
                "Negotiate"
            } else {
                return None;
            };
            let token = base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .ok()
                .filter(|t| !t.is_empty());
            Some((scheme, token))
        })
        .collect::<Vec<_>>();
    offers.sort_by_key(|(scheme, _)| *scheme != "NTLM");
    offers.into_iter().next()
}

fn authorization(scheme: &str, message: &[u8]) -> Option<HeaderValue> {
    let token = base64::engine::general_purpose::STANDARD.encode(message);
    let mut value = HeaderValue::from_str(&format!("{scheme} {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A URL for messages: no user info, no query (either may carry credentials), no fragment.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot have credentials (`cannot-be-a-base`).
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    text
}

impl Transport {
    pub(crate) fn new(settings: TransportSettings) -> Result<Self, ProviderError> {
        let cross_host = settings.cross_host_redirects;
        // Go's client follows up to 10 redirects. We follow them only within the same origin
        // unless allowed: a redirect to another host would carry our templated request (and
        // its secrets) to a server the store does not name.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("stopped after 10 redirects");
            }
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin || cross_host {
                attempt.follow()
            } else {
                let to = redact(attempt.url());
                attempt.error(format!(
                    "refused a redirect to another host ({to}); cross-host redirects are not allowed"
                ))
            }
        });
        let mut client = ClientSettings::new(settings.timeout, settings.connect_timeout)
            .redirect(policy)
            // Like upstream's `tls.Config{RootCAs: pool}`: only these roots are trusted.
            .ca_pem(settings.ca_pem);
        if settings.ntlm.is_some() {
            // One connection that stays open (see `NtlmSession`); NTLM does not work over
            // HTTP/2, which upstream switches off too.
            client = client.http1_single_connection();
        }
        let http = client.build()?;
        Ok(Self {
            http,
            timeout: settings.timeout,
            max_response_bytes: settings.max_response_bytes,
            ntlm: settings.ntlm.map(|credentials| {
                Arc::new(NtlmSession {
                    credentials,
                    one_at_a_time: tokio::sync::Mutex::new(()),
                })
            }),
        })
    }

    /// Sends one request; any status outside 2xx is an error.
    pub(crate) async fn send(&self, call: Call) -> Result<Answer, ProviderError> {
        let label = call.label;
        let result = self.exchange(call).await;
        eso_provider::metrics::observe(PROVIDER_LABEL, label, &result);
        result
    }

    async fn exchange(&self, call: Call) -> Result<Answer, ProviderError> {
        let what = format!("{} {}", call.method, redact(&call.url));
        let read = match &self.ntlm {
            Some(session) => self.exchange_ntlm(&call, session, &what).await?,
            None => {
                let response = self.send_once(&call, None).await;
                self.read(response, &what).await?
            }
        };
        let Read {
            status,
            retry_after,
            body,
            ..
        } = read;
        if status.is_success() {
            return Ok(Answer { status, body });
        }
        let kind = status_kind(status);
        let detail = eso_provider::http::body_text(&body);
        // Bodies of auth failures can echo what was sent; keep them out of messages.
        let message = if detail.is_empty() || kind == ErrorKind::Auth {
            format!("{what} answered {status}")
        } else {
            format!("{what} answered {status}: {detail}")
        };
        let mut err = ProviderError::new(kind, message);
        if let Some(wait) = retry_after {
            err = err.with_retry_after(wait);
        }
        Err(err)
    }

    /// The request, first without credentials (the connection may be authenticated already);
    /// on a 401 offering NTLM or Negotiate, the NEGOTIATE and AUTHENTICATE messages on the
    /// same connection. Like go-ntlmssp, there is no Basic fallback: a 401 that offers
    /// neither is the answer.
    async fn exchange_ntlm(
        &self,
        call: &Call,
        session: &NtlmSession,
        what: &str,
    ) -> Result<Read, ProviderError> {
        let _turn = session.one_at_a_time.lock().await;
        let first = self.read(self.send_once(call, None).await, what).await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let Some((scheme, _)) = offered_ntlm(&first.headers_seen) else {
            return Ok(first);
        };
        let negotiate = authorization(scheme, &ntlm::negotiate_message(&session.credentials));
        let second = self
            .read(self.send_once(call, negotiate).await, what)
            .await?;
        if second.status != StatusCode::UNAUTHORIZED {
            return Ok(second);
        }
        let rejected = |detail: &str| {
            ProviderError::auth(format!(
                "{what} answered 401 Unauthorized: NTLM authentication {detail}"
            ))
        };
        let Some((_, Some(token))) = offered_ntlm(&second.headers_seen) else {
            return Err(rejected("failed: the server sent no challenge"));
        };
        let challenge = Challenge::parse(&token).map_err(|e| rejected("failed").with_source(e))?;
        let mut client_challenge = [0u8; 8];
        // getrandom's error is no `std::error::Error` without its `std` feature.
        getrandom::fill(&mut client_challenge).map_err(|e| {
            ProviderError::unavailable(format!("no randomness for the NTLM client challenge ({e})"))
        })?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let message = ntlm::authenticate_message(
            &challenge,
            &session.credentials,
            client_challenge,
            ntlm::filetime(now),
        );
        let third = self
            .read(
                self.send_once(call, authorization(scheme, &message)).await,
                what,
            )
            .await?;
        if third.status == StatusCode::UNAUTHORIZED {
            return Err(rejected(&format!(
                "failed: the server rejected the credentials of user {:?}",
                session.credentials.username()
            )));
        }
        Ok(third)
    }

    async fn send_once(
        &self,
        call: &Call,
        authorization: Option<HeaderValue>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut headers = call.headers.clone();
        if let Some(value) = authorization {
            headers.insert(AUTHORIZATION, value);
        }
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(headers);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        request.send().await
    }

    /// Reads an answer to its end (which also frees the connection for the next request),
    /// within the size cap.
    async fn read(
        &self,
        response: Result<reqwest::Response, reqwest::Error>,
        what: &str,
    ) -> Result<Read, ProviderError> {
        let mut response = response.map_err(|e| self.transport_error(what, e))?;
        let status = response.status();
        let retry_after = eso_provider::http::retry_after(response.headers());
        let too_big = |limit: usize| {
            ProviderError::invalid_request(format!(
                "{what} answered {status} with a body larger than the {limit}-byte limit"
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(too_big(self.max_response_bytes));
        }
        let headers_seen = if status == StatusCode::UNAUTHORIZED {
            response.headers().clone()
        } else {
            HeaderMap::new()
        };
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(what, e))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_big(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Read {
            status,
            retry_after,
            headers_seen,
            body,
        })
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> ProviderError {
        let reason = if e.is_timeout() {
            format!("timed out after {:?}", self.timeout)
        } else if e.is_connect() {
            "could not connect".to_owned()
        } else if e.is_redirect() {
            "was redirected where it may not go".to_owned()
        } else {
            "failed".to_owned()
        };
        let kind = if e.is_redirect() {
            ErrorKind::InvalidRequest
        } else {
            ErrorKind::Unavailable
        };
        ProviderError::new(kind, format!("{what} {reason}")).with_source(e)
    }
}

/// Builds a header map from rendered `(name, value)` pairs.
pub(crate) fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, ProviderError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            ProviderError::invalid_store(format!("header name {name:?} is not valid"))
                .with_source(e)
        })?;
        // The message never shows the value: it is usually a rendered credential.
        let mut value = HeaderValue::from_str(value).map_err(|e| {
            ProviderError::invalid_request(format!(
                "the rendered value of header {name:?} holds characters a header cannot"
            ))
            .with_source(e)
        })?;
        value.set_sensitive(true);
        map.append(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_credentials_and_query() {
        let url = Url::parse("https://user:pw@api.example/v1/s?token=abc#x").unwrap();
        assert_eq!(redact(&url), "https://api.example/v1/s?…");
        let url = Url::parse("http://127.0.0.1:8080/a").unwrap();
        assert_eq!(redact(&url), "http://127.0.0.1:8080/a");
    }

    #[test]
    fn header_values_are_checked() {
        assert!(header_map(&[("X-A".into(), "ok".into())]).is_ok());
        assert!(header_map(&[("bad name".into(), "ok".into())]).is_err());
        let err = header_map(&[("X-A".into(), "line\nbreak".into())]).unwrap_err();
        assert!(!err.message().contains("line"), "{err}");
    }
}
