//! Fault injection: answer the next N matching requests with an error status.

/// A fault: the next `times` requests that match answer `status` (in Connect's error shape,
/// with `Retry-After` when set) instead of being served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Fault {
    pub(crate) status: u16,
    pub(crate) message: Option<String>,
    method: Option<String>,
    resource: Option<String>,
    times: Option<u32>,
    pub(crate) retry_after: Option<u64>,
}

impl Fault {
    /// Answers `status` to every request until limited with [`times`](Self::times).
    pub fn status(status: u16) -> Self {
        Self {
            status,
            message: None,
            method: None,
            resource: None,
            times: None,
            retry_after: None,
        }
    }

    /// Only requests of this method ([`crate::method`]).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Only requests whose decoded path or query contains this text (a vault or item ID, an
    /// item title in a filter).
    pub fn resource(mut self, text: &str) -> Self {
        self.resource = Some(text.to_owned());
        self
    }

    /// The error message (default: one in Connect's words for the status).
    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_owned());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Adds `Retry-After: <seconds>`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// The active faults.
#[derive(Debug, Default)]
pub(crate) struct Faults(Vec<Fault>);

impl Faults {
    pub(crate) fn push(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The first fault matching `method` and `target` (the decoded path and query), consuming
    /// one of its uses.
    pub(crate) fn take(&mut self, method: &str, target: &str) -> Option<Fault> {
        let idx = self.0.iter().position(|f| {
            f.method.as_deref().is_none_or(|m| m == method)
                && f.resource.as_deref().is_none_or(|r| target.contains(r))
        })?;
        let fault = self.0[idx].clone();
        if let Some(n) = self.0[idx].times.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                let _spent = self.0.remove(idx);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_faults_run_out_and_filters_apply() {
        let mut f = Faults::default();
        f.push(Fault::status(503).method("A").times(2));
        f.push(Fault::status(500).resource("db"));
        f.push(Fault::status(429).retry_after(3));
        assert_eq!(f.take("A", "/x").map(|f| f.status), Some(503));
        assert_eq!(f.take("A", "/db").map(|f| f.status), Some(503));
        assert_eq!(f.take("A", "/v1/db").map(|f| f.status), Some(500));
        let next = f.take("A", "/x").unwrap();
        assert_eq!((next.status, next.retry_after), (429, Some(3)));
        f.clear();
        assert!(f.take("B", "/x").is_none());
    }
}
