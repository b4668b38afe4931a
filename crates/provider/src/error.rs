use std::fmt;
use std::time::Duration;

/// The cause of a provider failure. The reconciler's decisions depend on it: only
/// [`ErrorKind::NotFound`] may lead to removing data, [`ErrorKind::Throttled`] and
/// [`ErrorKind::Unavailable`] are retried with backoff, the rest wait for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The remote key (or property, or version) does not exist.
    NotFound,
    /// The credentials were rejected or lack permission.
    Auth,
    /// The provider asked us to slow down.
    Throttled,
    /// The provider could not be reached or failed on its side; worth retrying.
    Unavailable,
    /// The request is malformed (bad property path, unsupported find, invalid value, ...).
    InvalidRequest,
    /// The store's configuration is invalid (missing field, unreadable credential reference).
    InvalidStore,
    /// The provider does not implement this operation or store key.
    Unsupported,
}

impl ErrorKind {
    /// A PascalCase code, used in condition reasons, events and metric labels.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "NotFound",
            Self::Auth => "Unauthorized",
            Self::Throttled => "Throttled",
            Self::Unavailable => "Unavailable",
            Self::InvalidRequest => "InvalidRequest",
            Self::InvalidStore => "InvalidStoreConfig",
            Self::Unsupported => "Unsupported",
        }
    }

    /// Whether retrying later (with backoff) can help.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed provider call: its cause, a message that says what failed, and the underlying
/// error if there is one. The message never repeats the source's text, so a printed chain
/// reads once.
#[derive(Debug)]
pub struct ProviderError {
    kind: ErrorKind,
    message: String,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl ProviderError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// The remote key does not exist.
    pub fn not_found(key: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!("secret {key:?} does not exist"),
        )
    }

    /// Credentials rejected.
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }

    /// The provider is unreachable or failing.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The provider throttled us.
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Throttled, message)
    }

    /// The request is invalid.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// A `property` the remote value does not hold. Deliberately not
    /// [`ErrorKind::NotFound`]: the key exists, so the entry is not skipped, and a typo in
    /// `property` never leads to a deletionPolicy deleting or emptying the Secret. Upstream's
    /// providers answer a plain error here too (all but `fake`, which keeps its not-found).
    pub fn missing_property(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// The store's configuration is invalid.
    pub fn invalid_store(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidStore, message)
    }

    /// The operation is not supported by this provider.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Records how long the provider asked us to wait.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// The cause.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source's text.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How long the provider asked us to wait, if it said.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The PascalCase code of the cause.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// Whether this is a confirmed "does not exist".
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The message followed by every source in the chain, `": "`-separated.
    #[must_use]
    pub fn chain(&self) -> String {
        let mut out = self.message.clone();
        let mut next: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|e| e as _);
        while let Some(err) = next {
            out.push_str(": ");
            out.push_str(&err.to_string());
            next = err.source();
        }
        out
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err =
            ProviderError::unavailable("cannot reach vault at http://127.0.0.1:1").with_source(io);
        assert_eq!(err.to_string(), "cannot reach vault at http://127.0.0.1:1");
        assert_eq!(
            err.chain(),
            "cannot reach vault at http://127.0.0.1:1: connection refused"
        );
        assert!(err.kind().is_transient());
        assert!(!err.is_not_found());
    }

    #[test]
    fn only_not_found_is_not_found() {
        assert!(ProviderError::not_found("db").is_not_found());
        for err in [
            ProviderError::auth("x"),
            ProviderError::throttled("x"),
            ProviderError::unavailable("x"),
            ProviderError::invalid_request("x"),
        ] {
            assert!(!err.is_not_found(), "{:?}", err.kind());
        }
    }
}
