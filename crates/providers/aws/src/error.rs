//! Mapping AWS SDK failures to [`ErrorKind`]s, by cause: the error code when AWS sent one, else
//! the HTTP status, else how the request failed (no connection, timeout). A permission error is
//! never "not found", whatever the status.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use eso_provider::{ErrorKind, ProviderError};

/// How a request failed before or without a modelled answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request could not be built (bad input, credentials could not be loaded).
    Construction,
    /// No answer in time.
    Timeout,
    /// No connection, or it broke.
    Dispatch,
    /// An answer that could not be read.
    Response,
    /// An answer with an error code and status.
    Service,
}

/// Codes that mean "the credentials are wrong, expired or lack permission".
const AUTH_CODES: [&str; 14] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidIdentityToken",
    "IDPRejectedClaim",
];

const NOT_FOUND_CODES: [&str; 3] = [
    "ResourceNotFoundException",
    "ParameterNotFound",
    "ParameterVersionNotFound",
];

const THROTTLED_CODES: [&str; 7] = [
    "ThrottlingException",
    "Throttling",
    "TooManyUpdates",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ThrottledException",
    "RequestThrottled",
];

const UNAVAILABLE_CODES: [&str; 5] = [
    "InternalServiceError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// The kind of a failure from its code, HTTP status and manner. Codes win over statuses (AWS
/// answers `ResourceNotFoundException` with 400); a 403 or 401 without a readable code (moto's
/// and some proxies' XML error bodies) is still an auth failure.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>, failure: Failure) -> ErrorKind {
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        if NOT_FOUND_CODES.contains(&code) {
            return ErrorKind::NotFound;
        }
        if AUTH_CODES.contains(&code) || code.starts_with("AccessDenied") {
            return ErrorKind::Auth;
        }
        if THROTTLED_CODES.contains(&code) {
            return ErrorKind::Throttled;
        }
        if UNAVAILABLE_CODES.contains(&code) {
            return ErrorKind::Unavailable;
        }
    }
    match status {
        Some(401 | 403) => return ErrorKind::Auth,
        Some(429) => return ErrorKind::Throttled,
        Some(s) if s >= 500 => return ErrorKind::Unavailable,
        _ => {}
    }
    match failure {
        Failure::Timeout | Failure::Dispatch | Failure::Response => ErrorKind::Unavailable,
        Failure::Construction => ErrorKind::InvalidRequest,
        // Any other modelled 4xx answer (InvalidRequestException, InvalidParameterException,
        // ValidationException, LimitExceeded, ...) says the request itself is wrong.
        Failure::Service => ErrorKind::InvalidRequest,
    }
}

/// The kind a credentials failure somewhere in the chain imposes, if any: our own STS steps
/// carry a [`ProviderError`]; the SDK's own providers a [`CredentialsError`].
fn credentials_kind(err: &(dyn StdError + 'static)) -> Option<ErrorKind> {
    let mut next = Some(err);
    let mut credentials = None;
    while let Some(e) = next {
        if let Some(p) = e.downcast_ref::<ProviderError>() {
            return Some(p.kind());
        }
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            credentials.get_or_insert(match c {
                CredentialsError::ProviderTimedOut(_) => ErrorKind::Unavailable,
                CredentialsError::InvalidConfiguration(_) => ErrorKind::InvalidStore,
                _ => ErrorKind::Auth,
            });
        }
        next = e.source();
    }
    credentials
}

/// The error code of an SDK failure, if AWS sent one.
pub(crate) fn code_of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// A [`ProviderError`] for a failed SDK call; `what` says what failed (without the cause).
pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>, what: impl Into<String>) -> ProviderError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let failure = match &err {
        SdkError::ConstructionFailure(_) => Failure::Construction,
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(_) => Failure::Dispatch,
        SdkError::ResponseError(_) => Failure::Response,
        _ => Failure::Service,
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind = credentials_kind(&err).unwrap_or_else(|| classify(code_of(&err), status, failure));
    let mut what = what.into();
    if let Some(code) = code_of(&err) {
        what = format!("{what} ({code})");
    } else if let Some(status) = status {
        what = format!("{what} (HTTP {status})");
    }
    // The SDK's own Display is terse ("service error"): a service error is told by its
    // message; anything else by the context display, which carries the chain.
    let detail = match &err {
        SdkError::ServiceError(s) => s.err().message().unwrap_or("no message").to_owned(),
        _ => aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string(),
    };
    ProviderError::new(kind, what).with_source(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_before_statuses() {
        let k = |code, status| classify(Some(code), Some(status), Failure::Service);
        assert_eq!(k("ResourceNotFoundException", 400), ErrorKind::NotFound);
        assert_eq!(k("ParameterNotFound", 400), ErrorKind::NotFound);
        assert_eq!(k("ParameterVersionNotFound", 400), ErrorKind::NotFound);
        assert_eq!(k("AccessDeniedException", 400), ErrorKind::Auth);
        assert_eq!(k("AccessDenied", 403), ErrorKind::Auth);
        assert_eq!(k("UnrecognizedClientException", 400), ErrorKind::Auth);
        assert_eq!(k("InvalidClientTokenId", 403), ErrorKind::Auth);
        assert_eq!(k("ExpiredTokenException", 400), ErrorKind::Auth);
        assert_eq!(k("ThrottlingException", 400), ErrorKind::Throttled);
        assert_eq!(k("TooManyUpdates", 400), ErrorKind::Throttled);
        assert_eq!(k("InternalServiceError", 500), ErrorKind::Unavailable);
        assert_eq!(k("InvalidRequestException", 400), ErrorKind::InvalidRequest);
        assert_eq!(
            k("InvalidParameterException", 400),
            ErrorKind::InvalidRequest
        );
        assert_eq!(k("ValidationException", 400), ErrorKind::InvalidRequest);
    }

    #[test]
    fn statuses_decide_without_a_code() {
        let s = |status| classify(None, Some(status), Failure::Service);
        assert_eq!(s(403), ErrorKind::Auth);
        assert_eq!(s(401), ErrorKind::Auth);
        assert_eq!(s(429), ErrorKind::Throttled);
        assert_eq!(s(500), ErrorKind::Unavailable);
        assert_eq!(s(503), ErrorKind::Unavailable);
        assert_eq!(s(400), ErrorKind::InvalidRequest);
        // A 404 status without a code is not a confirmed "does not exist".
        assert_ne!(s(404), ErrorKind::NotFound);
    }

    #[test]
    fn a_permission_error_is_never_not_found() {
        for status in [400, 403, 404] {
            assert_eq!(
                classify(
                    Some("AccessDeniedException"),
                    Some(status),
                    Failure::Service
                ),
                ErrorKind::Auth
            );
        }
    }

    #[test]
    fn transport_failures_are_unavailable() {
        for f in [Failure::Timeout, Failure::Dispatch, Failure::Response] {
            assert_eq!(classify(None, None, f), ErrorKind::Unavailable);
        }
    }

    #[test]
    fn credential_failures_keep_their_cause() {
        let inner = ProviderError::throttled("sts said slow down");
        let wrapped = CredentialsError::provider_error(inner);
        assert_eq!(credentials_kind(&wrapped), Some(ErrorKind::Throttled));
        let missing = CredentialsError::not_loaded("no credentials in the environment");
        assert_eq!(credentials_kind(&missing), Some(ErrorKind::Auth));
        let io = std::io::Error::other("x");
        assert_eq!(credentials_kind(&io), None);
    }
}
