//! Fault injection: answer the next N matching requests with an error status.

/// A fault: the next `times` requests that match answer `status` (in the error shape of the
/// server it is injected into, with `Retry-After` when set) instead of being served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Fault {
    status: u16,
    method: Option<String>,
    resource: Option<String>,
    times: Option<u32>,
    retry_after: Option<u64>,
    message: Option<String>,
}

impl Fault {
    /// Answers `status` to every request until limited with [`times`](Self::times).
    pub fn status(status: u16) -> Self {
        Self {
            status,
            method: None,
            resource: None,
            times: None,
            retry_after: None,
            message: None,
        }
    }

    /// Only requests of this method (the server's name for the API call).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Only requests about this resource. Each server says how it matches: Doppler and
    /// Infisical compare a secret's, config's or project's name; 1Password Connect and Google
    /// look for the text in the decoded path and query, or in the resource name.
    pub fn resource(mut self, text: &str) -> Self {
        self.resource = Some(text.to_owned());
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

    /// The error message (default: one in the server's words for the status).
    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_owned());
        self
    }

    /// The status answered.
    #[must_use]
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The `Retry-After` seconds, when set.
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }

    /// The message, when set.
    #[must_use]
    pub fn message_text(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

/// The active faults of one server.
#[derive(Debug, Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    /// Adds a fault (after those already active).
    pub fn push(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The first fault of `method` whose resource filter `about` accepts (a fault without one
    /// matches every resource), consuming one of its uses.
    pub fn take(&mut self, method: &str, about: impl Fn(&str) -> bool) -> Option<Fault> {
        let idx = self.0.iter().position(|f| {
            f.method.as_deref().is_none_or(|m| m == method)
                && f.resource.as_deref().is_none_or(&about)
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
        f.push(Fault::status(429).retry_after(3).message("slow down"));
        let is = |name: &'static str| move |r: &str| r == name;
        assert_eq!(f.take("A", is("x")).map(|f| f.status_code()), Some(503));
        assert_eq!(f.take("A", is("db")).map(|f| f.status_code()), Some(503));
        assert_eq!(f.take("A", is("db")).map(|f| f.status_code()), Some(500));
        let next = f.take("A", is("x")).unwrap();
        assert_eq!(
            (
                next.status_code(),
                next.retry_after_secs(),
                next.message_text()
            ),
            (429, Some(3), Some("slow down"))
        );
        f.clear();
        assert!(f.take("B", is("x")).is_none());
    }
}
