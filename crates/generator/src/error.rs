use std::fmt;
use std::time::Duration;

use eso_provider::ProviderError;

/// The cause of a generator failure. The reconciler's decisions depend on it:
/// [`ErrorKind::Throttled`] and [`ErrorKind::Unavailable`] are retried with backoff, the rest
/// wait for a change of the generator or its credentials. No kind ever means "the value is
/// gone": a failed generation keeps the last generated value in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The generator's spec is invalid or incomplete (a missing field, an impossible password,
    /// an unreadable credential reference). Waits for a change.
    InvalidSpec,
    /// The backend rejected the credentials or they lack permission.
    Auth,
    /// The backend asked us to slow down.
    Throttled,
    /// The backend could not be reached or failed on its side; worth retrying.
    Unavailable,
    /// The backend refused the request itself (an unknown path, bad parameters, a response
    /// without the expected data).
    Rejected,
    /// No generator of this kind is registered, or the kind does not support the operation.
    Unsupported,
}

impl ErrorKind {
    /// A PascalCase code, used in condition reasons, events and metric labels.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidSpec => "InvalidGeneratorSpec",
            Self::Auth => "Unauthorized",
            Self::Throttled => "Throttled",
            Self::Unavailable => "Unavailable",
            Self::Rejected => "GeneratorRejected",
            Self::Unsupported => "Unsupported",
        }
    }

    /// Whether retrying later (with backoff) can help.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable)
    }
}

impl From<eso_provider::ErrorKind> for ErrorKind {
    /// A provider failure seen through a generator: a missing remote path is the generator's
    /// request being refused (never "the value is gone"), and a bad store configuration is a
    /// bad generator spec.
    fn from(kind: eso_provider::ErrorKind) -> Self {
        use eso_provider::ErrorKind as P;
        match kind {
            P::NotFound | P::InvalidRequest => Self::Rejected,
            P::Auth => Self::Auth,
            P::Throttled => Self::Throttled,
            P::Unavailable => Self::Unavailable,
            P::InvalidStore => Self::InvalidSpec,
            P::Unsupported => Self::Unsupported,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed generation or cleanup: its cause, a message that says what failed (naming the
/// generator object), and the underlying error if there is one. The message never repeats the
/// source's text, so a printed chain reads once.
#[derive(Debug)]
pub struct GeneratorError {
    kind: ErrorKind,
    message: String,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl GeneratorError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// The spec is invalid.
    pub fn invalid_spec(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSpec, message)
    }

    /// Credentials rejected.
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }

    /// The backend is unreachable or failing.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The backend throttled us.
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Throttled, message)
    }

    /// The backend refused the request.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, message)
    }

    /// Not supported.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// A provider failure behind `message`: the kind is mapped by [`ErrorKind::from`], the
    /// provider's wait hint is kept and the provider error becomes the source.
    pub fn from_provider(message: impl Into<String>, err: ProviderError) -> Self {
        let mut out = Self::new(err.kind().into(), message);
        out.retry_after = err.retry_after();
        out.with_source(err)
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Records how long the backend asked us to wait.
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

    /// How long the backend asked us to wait, if it said.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The PascalCase code of the cause.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
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

impl fmt::Display for GeneratorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GeneratorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// A plain-text error in a chain (a provider error whose store wording was rewritten for the
/// generator it served).
#[derive(Debug)]
pub(crate) struct TextError(pub(crate) String);

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TextError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let provider = ProviderError::unavailable("cannot reach vault").with_source(io);
        let err =
            GeneratorError::from_provider("VaultDynamicSecret \"a/b\": request failed", provider);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(
            err.chain(),
            "VaultDynamicSecret \"a/b\": request failed: cannot reach vault: connection refused"
        );
        assert!(err.kind().is_transient());
    }

    #[test]
    fn provider_kinds_map_by_cause_and_keep_the_wait_hint() {
        let throttled =
            ProviderError::throttled("slow down").with_retry_after(Duration::from_secs(7));
        let err = GeneratorError::from_provider("x", throttled);
        assert_eq!(err.kind(), ErrorKind::Throttled);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        for (provider, expected) in [
            (ProviderError::not_found("k"), ErrorKind::Rejected),
            (ProviderError::auth("x"), ErrorKind::Auth),
            (ProviderError::invalid_store("x"), ErrorKind::InvalidSpec),
            (ProviderError::invalid_request("x"), ErrorKind::Rejected),
            (ProviderError::unsupported("x"), ErrorKind::Unsupported),
        ] {
            assert_eq!(
                GeneratorError::from_provider("x", provider).kind(),
                expected
            );
        }
        assert_eq!(ErrorKind::InvalidSpec.reason(), "InvalidGeneratorSpec");
    }
}
