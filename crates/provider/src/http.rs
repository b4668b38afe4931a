//! The HTTP layer the REST providers share (feature `http`): a client built from the store's
//! TLS settings ([`ClientSettings`]), one request ([`Call`]) sent with retries ([`Http`]), and
//! a failed exchange ([`HttpError`]) typed by its cause.
//!
//! The rules every provider follows:
//! - **Causes.** Only a 404 means "does not exist" ([`ErrorKind::NotFound`]); 401 and 403 are
//!   authentication problems; 429 is throttling, with the server's `Retry-After` (seconds or an
//!   HTTP date) kept; no answer at all, 408 and 5xx are transient; anything else is a refused
//!   request. A provider whose API gives a status another meaning maps it itself (e.g. a 404
//!   that names a missing project is a misconfigured store).
//! - **Retries.** A throttled call was not carried out, so any call is repeated, after the wait
//!   the server asked for when that fits in [`RetryPolicy::max_wait`] (a longer one ends the
//!   call with the error, which carries the wait for the reconciler). A transient failure is
//!   repeated only for calls that are safe to repeat ([`Call::idempotent`]: GET and DELETE by
//!   default). The backoff doubles from [`RetryPolicy::base_delay`], with 0-25 % jitter, and
//!   never exceeds `max_wait`; the whole call makes at most [`RetryPolicy::max_attempts`].
//! - **Messages.** A failure names the request (`GET https://host/path`, never the query) and
//!   its cause: `timed out`, `could not connect`, `failed`; an error answer keeps its status and
//!   the API's own message ([`Http::errors`] reads the API's error body).
//!
//! ```
//! use std::time::Duration;
//! use eso_provider::ErrorKind;
//! use eso_provider::http::{ClientSettings, HttpError, RetryPolicy};
//!
//! let client = ClientSettings::new(Duration::from_secs(30), Duration::from_secs(5))
//!     .owner("SecretStore \"ns/store\"")
//!     .user_agent("eso-rs")
//!     .build()
//!     .unwrap();
//! let _http = eso_provider::http::Http::new(client, RetryPolicy::default(), "example");
//!
//! let refused = HttpError::answered(reqwest::StatusCode::FORBIDDEN, "no access");
//! assert_eq!(refused.kind(), ErrorKind::Auth);
//! assert_eq!(refused.to_string(), "403: no access");
//! let err = refused.into_provider_error(ErrorKind::Auth, "store: reading db failed");
//! assert_eq!(err.chain(), "store: reading db failed: 403: no access");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::{ErrorKind, ProviderError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The settings of one store's HTTP client. Errors name the store when [`owner`](Self::owner)
/// is set.
#[derive(Debug)]
pub struct ClientSettings {
    request_timeout: Duration,
    connect_timeout: Duration,
    owner: Option<String>,
    user_agent: Option<String>,
    accept_json: bool,
    redirect: Option<reqwest::redirect::Policy>,
    no_proxy: bool,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<Vec<u8>>,
    accept_invalid_certs: bool,
    http1_single_connection: bool,
}

impl ClientSettings {
    /// A client that gives up on a request after `request_timeout` and on connecting after
    /// `connect_timeout`, trusts the platform's roots, and follows reqwest's default redirects.
    #[must_use]
    pub fn new(request_timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            request_timeout,
            connect_timeout,
            owner: None,
            user_agent: None,
            accept_json: false,
            redirect: None,
            no_proxy: false,
            ca_pem: None,
            identity_pem: None,
            accept_invalid_certs: false,
            http1_single_connection: false,
        }
    }

    /// The store the client serves (`store.describe()`), named by every error.
    #[must_use]
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The `User-Agent` of every request.
    #[must_use]
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// Every request asks for JSON (`Accept: application/json`).
    #[must_use]
    pub fn accept_json(mut self) -> Self {
        self.accept_json = true;
        self
    }

    /// Redirects are answers, never followed.
    #[must_use]
    pub fn no_redirects(self) -> Self {
        self.redirect(reqwest::redirect::Policy::none())
    }

    /// The redirect rule.
    #[must_use]
    pub fn redirect(mut self, policy: reqwest::redirect::Policy) -> Self {
        self.redirect = Some(policy);
        self
    }

    /// Requests never go through a proxy, not even the process's installed ones
    /// ([`Proxies::install`](crate::proxy::Proxies::install)).
    #[must_use]
    pub fn no_proxy(mut self) -> Self {
        self.no_proxy = true;
        self
    }

    /// Only these PEM roots are trusted (the store's `caBundle` / `caProvider`, as Go's
    /// `tls.Config{RootCAs: pool}`); `None` keeps the platform's roots. A bundle that is not
    /// PEM or holds no certificate is refused.
    #[must_use]
    pub fn ca_pem(mut self, pem: Option<Vec<u8>>) -> Self {
        self.ca_pem = pem;
        self
    }

    /// A client certificate chain followed by its key, in PEM, for mutual TLS.
    #[must_use]
    pub fn identity_pem(mut self, pem: Option<Vec<u8>>) -> Self {
        self.identity_pem = pem;
        self
    }

    /// Whether any server certificate is accepted (a store that turns verification off).
    #[must_use]
    pub fn accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// One kept-open HTTP/1 connection per host (what connection-bound authentication such
    /// as NTLM needs).
    #[must_use]
    pub fn http1_single_connection(mut self) -> Self {
        self.http1_single_connection = true;
        self
    }

    fn invalid(&self, message: &str) -> ProviderError {
        ProviderError::invalid_store(match &self.owner {
            Some(owner) => format!("{owner}: {message}"),
            None => message.to_owned(),
        })
    }

    /// The client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidStore`] when the CA bundle or client identity cannot be used, or
    /// the client cannot be set up.
    pub fn build(self) -> Result<reqwest::Client, ProviderError> {
        let mut builder = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout);
        if let Some(agent) = &self.user_agent {
            builder = builder.user_agent(agent.as_str());
        }
        if self.accept_json {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            builder = builder.default_headers(headers);
        }
        builder = if self.no_proxy {
            builder.no_proxy()
        } else {
            crate::proxy::Proxies::use_installed(builder).map_err(|e| {
                self.invalid("the installed proxy cannot be used")
                    .with_source(e)
            })?
        };
        if self.accept_invalid_certs {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if self.http1_single_connection {
            builder = builder.pool_max_idle_per_host(1).http1_only();
        }
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                self.invalid("the CA bundle is not valid PEM")
                    .with_source(e)
            })?;
            if certs.is_empty() {
                return Err(self.invalid("the CA bundle holds no certificate"));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some(pem) = &self.identity_pem {
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                self.invalid(
                    "the client certificate or key is not valid PEM (RSA, SEC1 or PKCS#8 key)",
                )
                .with_source(e)
            })?;
            builder = builder.identity(identity);
        }
        let invalid = self.invalid("cannot set up the HTTP client");
        if let Some(policy) = self.redirect {
            builder = builder.redirect(policy);
        }
        builder.build().map_err(|e| invalid.with_source(e))
    }
}

/// The HTTP tuning of a REST provider's clients: timeouts and retries. A provider's config
/// holds one and offers its setters through [`http_tuning_setters!`](crate::http_tuning_setters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTuning {
    /// The timeout of one HTTP request.
    pub request_timeout: Duration,
    /// The timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// How failed calls are retried.
    pub retry: RetryPolicy,
}

impl HttpTuning {
    /// Settings of a client with these timeouts.
    #[must_use]
    pub fn client(&self) -> ClientSettings {
        ClientSettings::new(self.request_timeout, self.connect_timeout)
    }
}

/// The setters of a provider config's [`HttpTuning`] field, with the provider's defaults in
/// their docs: `request_timeout`, `connect_timeout`, `max_attempts` (at least 1),
/// `retry_base_delay` and `max_retry_wait`. Used inside the config's `impl` block:
///
/// ```
/// use std::time::Duration;
/// use eso_provider::http::{HttpTuning, RetryPolicy};
///
/// #[derive(Debug, Clone)]
/// #[must_use]
/// pub struct ExampleConfig {
///     http: HttpTuning,
/// }
///
/// impl ExampleConfig {
///     eso_provider::http_tuning_setters! {
///         field: http,
///         request_timeout: "30 s",
///         connect_timeout: "5 s",
///         max_attempts: "3",
///         retry_base_delay: "250 ms",
///         max_retry_wait: "10 s",
///     }
/// }
///
/// let config = ExampleConfig {
///     http: HttpTuning {
///         request_timeout: Duration::from_secs(30),
///         connect_timeout: Duration::from_secs(5),
///         retry: RetryPolicy::default(),
///     },
/// }
/// .max_attempts(0)
/// .max_retry_wait(Duration::from_secs(2));
/// assert_eq!(config.http.retry.max_attempts, 1);
/// assert_eq!(config.http.retry.max_wait, Duration::from_secs(2));
/// ```
#[macro_export]
macro_rules! http_tuning_setters {
    (
        field: $field:ident,
        request_timeout: $request_timeout:literal,
        connect_timeout: $connect_timeout:literal,
        max_attempts: $max_attempts:literal,
        retry_base_delay: $retry_base_delay:literal,
        max_retry_wait: $max_retry_wait:literal $(,)?
    ) => {
        #[doc = concat!("The timeout of one HTTP request (default ", $request_timeout, ").")]
        pub fn request_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.$field.request_timeout = timeout;
            self
        }

        #[doc = concat!("The timeout of establishing a connection (default ", $connect_timeout, ").")]
        pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.$field.connect_timeout = timeout;
            self
        }

        #[doc = concat!("Attempts per API call, the first included (default ", $max_attempts, "; at least 1).")]
        pub fn max_attempts(mut self, attempts: u32) -> Self {
            self.$field.retry.max_attempts = attempts.max(1);
            self
        }

        #[doc = concat!("The first retry's backoff, doubled after each attempt (default ", $retry_base_delay, ").")]
        pub fn retry_base_delay(mut self, delay: ::std::time::Duration) -> Self {
            self.$field.retry.base_delay = delay;
            self
        }

        #[doc = concat!(
            "The longest wait spent inside one call before retrying it (default ",
            $max_retry_wait,
            "): a 429 asking for longer ends the call with a `Throttled` error that carries ",
            "the wait."
        )]
        pub fn max_retry_wait(mut self, wait: ::std::time::Duration) -> Self {
            self.$field.retry.max_wait = wait;
            self
        }
    };
}

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first backoff; doubled after each attempt.
    pub base_delay: Duration,
    /// The longest wait (backoff or `Retry-After`) spent inside one call; a longer
    /// `Retry-After` ends the call with the error, carrying the wait.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms first backoff, at most 5 s of waiting.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_wait: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1`: `base_delay * 2^(attempt-1)` with 0-25 %
    /// jitter, at most `max_wait`.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = 2u32.saturating_pow(attempt.saturating_sub(1));
        jitter(self.base_delay.saturating_mul(exp)).min(self.max_wait)
    }
}

/// A little jitter (0-25 %) from the clock, so that clients backing off together spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.saturating_add(d.mul_f64(f64::from(nanos % 250) / 1000.0))
}

/// Who a call authenticates as.
#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, Option<String>),
}

/// A request body.
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Raw(Cow<'static, str>, Vec<u8>),
}

/// One request. Not `Debug`: it may hold a token.
#[derive(Clone)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    auth: Auth,
    headers: Vec<(Cow<'static, str>, String)>,
    body: Body,
    /// Whether repeating the request after a transient failure is harmless (GET and DELETE
    /// unless said otherwise).
    pub idempotent: bool,
}

impl Call {
    /// A request without body.
    #[must_use]
    pub fn new(method: Method, url: Url) -> Self {
        let idempotent = matches!(method, Method::GET | Method::DELETE);
        Self {
            method,
            url,
            auth: Auth::None,
            headers: Vec::new(),
            body: Body::None,
            idempotent,
        }
    }

    /// A GET.
    #[must_use]
    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// `Authorization: Bearer <token>` (sent as a sensitive header).
    #[must_use]
    pub fn bearer(mut self, token: &str) -> Self {
        self.auth = Auth::Bearer(token.to_owned());
        self
    }

    /// HTTP Basic authentication.
    #[must_use]
    pub fn basic(mut self, user: &str, password: Option<&str>) -> Self {
        self.auth = Auth::Basic(user.to_owned(), password.map(str::to_owned));
        self
    }

    /// One more header.
    #[must_use]
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A JSON body.
    #[must_use]
    pub fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    /// A body of the given content type.
    #[must_use]
    pub fn body(mut self, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Self {
        self.body = Body::Raw(content_type.into(), body);
        self
    }

    /// An `application/x-www-form-urlencoded` body (names and values percent-encoded but for
    /// RFC 3986's unreserved characters).
    #[must_use]
    pub fn form<K: AsRef<str>, V: AsRef<str>>(
        self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{}={}", form_encode(k.as_ref()), form_encode(v.as_ref())))
            .collect();
        self.body(
            "application/x-www-form-urlencoded",
            body.join("&").into_bytes(),
        )
    }

    /// Whether the call may be repeated after a transient failure.
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// `GET https://host/path`, without the query, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, without_query(&self.url))
    }
}

/// The URL without its query (which may hold names a message need not show).
#[must_use]
pub fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
#[must_use]
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A successful answer (2xx, or 304 to a conditional request).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: bytes::Bytes,
}

impl Answer {
    /// The body as JSON; an empty body is `null`.
    ///
    /// # Errors
    ///
    /// A transient [`HttpError`] naming `call` when the body is not JSON.
    pub fn json(&self, call: &Call) -> Result<Value, HttpError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::local(format!("{}: the answer is not JSON", call.describe())).with_source(e)
        })
    }

    /// The value of a header, when it is text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A failed exchange: the answer's status and the API's message, or the transport failure.
#[derive(Debug)]
pub struct HttpError {
    /// `None` when no answer came (connection refused, timeout, unreadable or unusable
    /// answer).
    pub status: Option<StatusCode>,
    /// A code the API gives besides the status (e.g. Google's `NOT_FOUND`), shown after it.
    pub code: Option<String>,
    /// The API's message, or the transport failure.
    pub message: String,
    /// How long the server asked us to wait.
    pub retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, "{} {c}: {}", s.as_u16(), self.message),
            (Some(s), None) => write!(f, "{}: {}", s.as_u16(), self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl HttpError {
    /// A failure without an answer (described by us, not by the server): transient.
    #[must_use]
    pub fn local(message: impl Into<String>) -> Self {
        Self {
            status: None,
            code: None,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// An answer with an error status.
    #[must_use]
    pub fn answered(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            ..Self::local(message)
        }
    }

    /// The underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The cause ([`status_kind`]); no answer at all is transient.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.status.map_or(ErrorKind::Unavailable, status_kind)
    }

    /// Whether the answer had this status.
    #[must_use]
    pub fn status_is(&self, code: u16) -> bool {
        self.status.is_some_and(|s| s.as_u16() == code)
    }

    /// A [`ProviderError`] of `kind` saying `message`, with this failure as its cause and the
    /// server's `Retry-After`.
    #[must_use]
    pub fn into_provider_error(self, kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        let retry_after = self.retry_after;
        let mut err = ProviderError::new(kind, message).with_source(self);
        if let Some(wait) = retry_after {
            err = err.with_retry_after(wait);
        }
        err
    }
}

/// The cause of an error answer: only 404 means "does not exist"; 401 and 403 are
/// authentication problems; 429 is throttling; 408 and 5xx are transient; anything else is a
/// refused request.
#[must_use]
pub fn status_kind(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::Auth,
        429 => ErrorKind::Throttled,
        408 | 500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidRequest,
    }
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date.
#[must_use]
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let wait = when.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

/// The first 200 characters of a body, trimmed, for a message.
#[must_use]
pub fn body_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim()
        .chars()
        .take(200)
        .collect()
}

/// The cause of a request that got no answer: `timed out`, `could not connect` or `failed`.
#[must_use]
pub fn transport_failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    }
}

/// Reads an API's error body into the error of an answer: its message (the body's text, or
/// the status's reason when empty, until the decoder says better), a code, a wait.
pub type ErrorDecoder = fn(StatusCode, &[u8], &mut HttpError);

/// Decides whether a failure no general rule retries is repeated anyway, given the attempt
/// that failed (e.g. 1Password Connect's 403 while its token cache catches up).
pub type ExtraRetry = fn(&HttpError, u32) -> bool;

/// The HTTP client of one store: sends [`Call`]s with the [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
    service: &'static str,
    decode: Option<ErrorDecoder>,
    extra_retry: Option<ExtraRetry>,
}

impl Http {
    /// Sends through `client`; `service` (e.g. `GitLab`) names the API in logs.
    #[must_use]
    pub fn new(client: reqwest::Client, retry: RetryPolicy, service: &'static str) -> Self {
        Self {
            client,
            retry,
            service,
            decode: None,
            extra_retry: None,
        }
    }

    /// How the API's error bodies are read.
    #[must_use]
    pub fn errors(mut self, decode: ErrorDecoder) -> Self {
        self.decode = Some(decode);
        self
    }

    /// One more reason to retry.
    #[must_use]
    pub fn retry_also(mut self, extra: ExtraRetry) -> Self {
        self.extra_retry = Some(extra);
        self
    }

    /// Sends `call`, retrying as the policy allows.
    ///
    /// # Errors
    ///
    /// The last failure.
    pub async fn send(&self, call: &Call) -> Result<Answer, HttpError> {
        self.send_signed(call, |_| Ok(Vec::new())).await
    }

    /// Sends `call` and reads a JSON answer (an empty body is `null`).
    ///
    /// # Errors
    ///
    /// The last failure, or an answer that is not JSON.
    pub async fn json(&self, call: &Call) -> Result<Value, HttpError> {
        self.send(call).await?.json(call)
    }

    /// Sends `call` with headers `sign` makes again for every attempt (request signatures
    /// that carry a timestamp), retrying as the policy allows.
    ///
    /// # Errors
    ///
    /// The last failure, or the signer's.
    pub async fn send_signed(
        &self,
        call: &Call,
        sign: impl Fn(&Call) -> Result<Vec<(String, String)>, HttpError>,
    ) -> Result<Answer, HttpError> {
        let mut attempt = 1;
        loop {
            let err = match self.once(call, sign(call)?).await {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            let Some(wait) = self.wait_before_retry(call, &err, attempt) else {
                return Err(err);
            };
            tracing::debug!(
                service = self.service,
                request = %call.describe(),
                error = %err,
                attempt,
                ?wait,
                "retrying a call"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// The wait before repeating `call` after attempt `attempt` failed with `err`, or `None`
    /// when the failure is final.
    fn wait_before_retry(&self, call: &Call, err: &HttpError, attempt: u32) -> Option<Duration> {
        if attempt >= self.retry.max_attempts {
            return None;
        }
        let backoff = self.retry.backoff(attempt);
        let wait = match err.kind() {
            // A throttled call was not carried out: any call may be repeated, after the wait
            // the server asked for when it is short enough.
            ErrorKind::Throttled => match err.retry_after {
                Some(w) if w > self.retry.max_wait => return None,
                Some(w) => w.max(backoff),
                None => backoff,
            },
            ErrorKind::Unavailable if call.idempotent => backoff,
            _ if self.extra_retry.is_some_and(|extra| extra(err, attempt)) => backoff,
            _ => return None,
        };
        Some(wait.min(self.retry.max_wait))
    }

    async fn once(&self, call: &Call, signed: Vec<(String, String)>) -> Result<Answer, HttpError> {
        let mut request = self.client.request(call.method.clone(), call.url.clone());
        match &call.auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                        HttpError::local("the access token holds characters a header cannot")
                    })?;
                value.set_sensitive(true);
                request = request.header(header::AUTHORIZATION, value);
            }
            Auth::Basic(user, password) => request = request.basic_auth(user, password.as_ref()),
        }
        for (name, value) in &call.headers {
            request = request.header(name.as_ref(), value.as_str());
        }
        for (name, value) in &signed {
            request = request.header(name.as_str(), value.as_str());
        }
        request = match &call.body {
            Body::None if call.method == Method::POST => {
                request.header(header::CONTENT_LENGTH, "0")
            }
            Body::None => request,
            Body::Json(v) => request.json(v),
            Body::Raw(content_type, bytes) => request
                .header(header::CONTENT_TYPE, content_type.as_ref())
                .body(bytes.clone()),
        };
        let response = request.send().await.map_err(|e| {
            HttpError::local(format!("{} {}", call.describe(), transport_failure(&e)))
                .with_source(e)
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| {
            HttpError::local(format!("{}: reading the answer failed", call.describe()))
                .with_source(e)
        })?;
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        let text = body_text(&body);
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            text
        };
        let mut err = HttpError::answered(status, message);
        err.retry_after = retry_after(&headers);
        if let Some(decode) = self.decode {
            decode(status, &body, &mut err);
        }
        Err(err)
    }
}

impl crate::proxy::Proxies {
    /// `builder` sending its requests through the process's installed proxies (directly when
    /// none are installed), never through what reqwest itself would read from the environment.
    ///
    /// # Errors
    /// An installed proxy URL reqwest cannot use.
    pub fn use_installed(
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        let builder = builder.no_proxy();
        match Self::installed() {
            Some(proxies) => proxies.apply(builder),
            None => Ok(builder),
        }
    }

    /// `builder` sending its requests through these proxies.
    fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        let direct = reqwest::NoProxy::from_string(&self.direct());
        if let Some(url) = &self.https {
            builder = builder.proxy(reqwest::Proxy::https(url)?.no_proxy(direct.clone()));
        }
        if let Some(url) = &self.http {
            builder = builder.proxy(reqwest::Proxy::http(url)?.no_proxy(direct));
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn answered(code: u16) -> HttpError {
        HttpError::answered(StatusCode::from_u16(code).unwrap(), "m")
    }

    #[test]
    fn errors_are_typed_by_status() {
        assert_eq!(answered(404).kind(), ErrorKind::NotFound);
        assert_eq!(answered(401).kind(), ErrorKind::Auth);
        assert_eq!(answered(403).kind(), ErrorKind::Auth);
        assert_eq!(answered(429).kind(), ErrorKind::Throttled);
        assert_eq!(answered(408).kind(), ErrorKind::Unavailable);
        assert_eq!(answered(503).kind(), ErrorKind::Unavailable);
        assert_eq!(answered(400).kind(), ErrorKind::InvalidRequest);
        assert_eq!(answered(409).kind(), ErrorKind::InvalidRequest);
        assert_eq!(HttpError::local("down").kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn messages_show_status_code_and_cause_and_keep_retry_after() {
        let mut e = answered(429);
        e.code = Some("RESOURCE_EXHAUSTED".into());
        e.retry_after = Some(Duration::from_secs(7));
        assert_eq!(e.to_string(), "429 RESOURCE_EXHAUSTED: m");
        let err = e.into_provider_error(ErrorKind::Throttled, "store: throttled");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(err.chain(), "store: throttled: 429 RESOURCE_EXHAUSTED: m");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past");
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retries_throttling_within_max_wait_and_transient_failures_of_idempotent_calls() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_wait: Duration::from_secs(5),
        };
        let http = Http::new(reqwest::Client::new(), policy, "test");
        let url = Url::parse("http://localhost/x").unwrap();
        let get = Call::get(url.clone());
        let post = Call::new(Method::POST, url);
        let mut throttled = answered(429);
        throttled.retry_after = Some(Duration::from_secs(2));
        assert_eq!(
            http.wait_before_retry(&post, &throttled, 1),
            Some(Duration::from_secs(2))
        );
        throttled.retry_after = Some(Duration::from_secs(60));
        assert_eq!(http.wait_before_retry(&post, &throttled, 1), None);
        assert!(http.wait_before_retry(&get, &answered(503), 1).is_some());
        assert_eq!(http.wait_before_retry(&post, &answered(503), 1), None);
        assert_eq!(http.wait_before_retry(&get, &answered(503), 3), None);
        assert_eq!(http.wait_before_retry(&get, &answered(404), 1), None);
        let forbidden_too = http.retry_also(|e, _| e.status_is(403));
        assert!(
            forbidden_too
                .wait_before_retry(&get, &answered(403), 1)
                .is_some()
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_max_wait() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
        };
        let b = policy.backoff(2);
        assert!(b >= Duration::from_millis(200) && b <= Duration::from_millis(250));
        assert_eq!(policy.backoff(9), Duration::from_secs(1));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn client_settings_refuse_a_bundle_without_certificates() {
        let err = ClientSettings::new(Duration::from_secs(1), Duration::from_secs(1))
            .owner("SecretStore \"ns/s\"")
            .ca_pem(Some(b"not pem".to_vec()))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore);
        assert!(
            err.message()
                .starts_with("SecretStore \"ns/s\": the CA bundle"),
            "{err}"
        );
    }

    #[test]
    fn forms_are_percent_encoded() {
        assert_eq!(form_encode("a b&c=d~"), "a%20b%26c%3Dd~");
        assert_eq!(
            Call::get(Url::parse("https://h/p?token=x").unwrap()).describe(),
            "GET https://h/p"
        );
    }
}
