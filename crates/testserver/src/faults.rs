//! Fault injection: latency on every request and failures of chosen requests.

use std::time::Duration;

/// What an injected fault does to the request it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a matching `kind: Status` body (429 also carries
    /// `Retry-After: 1`).
    Status(u16),
    /// Never answer: the client's own timeout decides (as with a hung API server).
    Hang,
    /// Close the connection without an answer.
    CloseConnection,
}

/// A fault for the next requests matching a verb and a resource.
///
/// ```
/// # use eso_test_apiserver::Fault;
/// let fault = Fault::status(503).verb("update").resource("secrets").times(2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Fault {
    pub(crate) verb: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) times: usize,
    pub(crate) action: FaultAction,
}

impl Fault {
    /// Fails the next matching request with this HTTP status.
    pub fn status(code: u16) -> Self {
        Self {
            verb: None,
            resource: None,
            times: 1,
            action: FaultAction::Status(code),
        }
    }

    /// Leaves the next matching request unanswered.
    pub fn hang() -> Self {
        Self {
            verb: None,
            resource: None,
            times: 1,
            action: FaultAction::Hang,
        }
    }

    /// Closes the connection of the next matching request.
    pub fn close_connection() -> Self {
        Self {
            verb: None,
            resource: None,
            times: 1,
            action: FaultAction::CloseConnection,
        }
    }

    /// Only requests with this Kubernetes verb: `get`, `list`, `watch`, `create`, `update`,
    /// `patch`, `delete`, `deletecollection`.
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_string());
        self
    }

    /// Only requests for this resource (plural name, e.g. `secrets`, `externalsecrets`; a
    /// subresource as `externalsecrets/status`).
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    /// How many matching requests fail (default 1).
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    pub(crate) fn matches(&self, verb: &str, resource: &str) -> bool {
        self.times > 0
            && self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
    }
}

/// The faults currently armed.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) latency: Option<Duration>,
    pub(crate) rules: Vec<Fault>,
}

impl Faults {
    /// Takes one use of the first matching rule.
    pub(crate) fn take(&mut self, verb: &str, resource: &str) -> Option<FaultAction> {
        let rule = self.rules.iter_mut().find(|r| r.matches(verb, resource))?;
        rule.times -= 1;
        let action = rule.action.clone();
        self.rules.retain(|r| r.times > 0);
        Some(action)
    }
}

/// The `reason` the API server gives with a status code.
pub(crate) fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}
