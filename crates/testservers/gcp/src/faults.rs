//! Fault injection: answer the next N matching requests with an error status.

use crate::http::ApiError;

/// A fault: the next `times` requests that match answer `status` (in Google's error shape,
/// with `Retry-After` when set) instead of being served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Fault {
    status: u16,
    method: Option<String>,
    resource: Option<String>,
    times: Option<u32>,
    retry_after: Option<u64>,
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
        }
    }

    /// Only requests of this method ([`crate::method`]).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Only requests whose resource name contains this text.
    pub fn resource_contains(mut self, text: &str) -> Self {
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

    fn matches(&self, method: &str, resource: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| resource.contains(r))
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

    /// The error the first matching fault answers, consuming one of its uses.
    pub(crate) fn take(&mut self, method: &str, resource: &str) -> Option<ApiError> {
        let idx = self.0.iter().position(|f| f.matches(method, resource))?;
        let fault = &mut self.0[idx];
        let status = fault.status;
        let retry_after = fault.retry_after;
        if let Some(n) = fault.times.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                let _spent = self.0.remove(idx);
            }
        }
        let name = ApiError::status_name(status);
        let message = match status {
            429 => format!(
                "Quota exceeded for quota metric '{method} requests' and limit '{method} requests per minute' of service 'secretmanager.googleapis.com'."
            ),
            503 => "The service is currently unavailable.".to_owned(),
            _ => format!("Injected fault for {method}."),
        };
        Some(ApiError::Google {
            code: status,
            status: name,
            message,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_faults_run_out_and_filters_apply() {
        let mut f = Faults::default();
        f.push(Fault::status(503).method("A").times(2));
        f.push(Fault::status(429).resource_contains("db").retry_after(3));
        assert!(f.take("B", "x").is_none());
        assert!(f.take("A", "x").is_some());
        assert!(f.take("A", "x").is_some());
        assert!(f.take("A", "x").is_none());
        let Some(ApiError::Google {
            code, retry_after, ..
        }) = f.take("B", "projects/1/secrets/db")
        else {
            panic!("no fault")
        };
        assert_eq!((code, retry_after), (429, Some(3)));
    }
}
