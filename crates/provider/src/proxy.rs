//! The outbound HTTP proxies of the process. Upstream's providers are Go clients, which send
//! requests through `HTTPS_PROXY` / `HTTP_PROXY` unless `NO_PROXY` names the host (Go's
//! `http.ProxyFromEnvironment`); clusters whose egress goes through a proxy rely on that.
//!
//! Libraries read no environment: a binary reads the variables ([`Proxies::from_vars`]) and
//! [`install`](Proxies::install)s them for the process; every provider client built afterwards
//! uses them (the REST providers through [`ClientSettings`](crate::http::ClientSettings), the
//! others through their own client builders). Nothing installed: no proxy.
//!
//! As Go's rules: an `https://` request uses the HTTPS proxy only, an `http://` request the
//! HTTP proxy only; a proxy without a scheme is `http://`; `NO_PROXY` is a comma list of
//! hosts, domains (matching their subdomains), IP addresses, CIDR blocks or `*`; requests to
//! `localhost` and loopback addresses never go through a proxy; upper-case names win over
//! lower-case ones.

use std::sync::{Arc, RwLock};

/// Hosts never proxied, whatever `NO_PROXY` says (Go never proxies loopback requests).
const ALWAYS_DIRECT: &str = "localhost,127.0.0.0/8,::1";

/// A proxy variable that holds no usable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name} is invalid: {reason}")]
pub struct ProxyVarError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// Where the process's provider clients send their requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// The proxy of `https://` requests (`HTTPS_PROXY`).
    pub https: Option<String>,
    /// The proxy of `http://` requests (`HTTP_PROXY`).
    pub http: Option<String>,
    /// Hosts, domains, addresses and CIDR blocks reached directly (`NO_PROXY`).
    pub no_proxy: String,
}

static INSTALLED: RwLock<Option<Arc<Proxies>>> = RwLock::new(None);

impl Proxies {
    /// The proxies the variables name (`var` looks one up, e.g. `|n| std::env::var(n).ok()`):
    /// `HTTPS_PROXY` / `https_proxy`, `HTTP_PROXY` / `http_proxy`, `NO_PROXY` / `no_proxy`.
    ///
    /// # Errors
    /// A proxy that is not an `http://` or `https://` URL with a host.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ProxyVarError> {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                var(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .map(|v| (name, v))
            })
        };
        let proxy = |names| first(names).map(|(name, v)| checked(name, &v)).transpose();
        Ok(Self {
            https: proxy(["HTTPS_PROXY", "https_proxy"])?,
            http: proxy(["HTTP_PROXY", "http_proxy"])?,
            no_proxy: first(["NO_PROXY", "no_proxy"])
                .map(|(_, v)| v)
                .unwrap_or_default(),
        })
    }

    /// Whether any request would go through a proxy.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.https.is_none() && self.http.is_none()
    }

    /// The hosts reached directly, as a `NO_PROXY` list: the configured ones and loopback.
    #[must_use]
    pub fn direct(&self) -> String {
        let own = self.no_proxy.trim().trim_matches(',');
        if own.is_empty() {
            ALWAYS_DIRECT.to_owned()
        } else {
            format!("{own},{ALWAYS_DIRECT}")
        }
    }

    /// Makes these the proxies of every provider client built from now on (replacing what
    /// was installed before).
    pub fn install(self) {
        let installed = (!self.is_empty()).then(|| Arc::new(self));
        *INSTALLED
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = installed;
    }

    /// The installed proxies, if any request goes through one.
    #[must_use]
    pub fn installed() -> Option<Arc<Self>> {
        INSTALLED
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// `value` as a proxy URL (`http://` when it names no scheme).
fn checked(name: &'static str, value: &str) -> Result<String, ProxyVarError> {
    let url = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let invalid = |reason: &str| ProxyVarError {
        name,
        reason: format!("{value:?} {reason}"),
    };
    let (scheme, rest) = url.split_once("://").unwrap_or_default();
    if !matches!(scheme, "http" | "https") {
        return Err(invalid("is not an http:// or https:// proxy URL"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid("names no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn variables_are_read_as_go_reads_them() {
        let p = Proxies::from_vars(vars(&[
            ("HTTPS_PROXY", "proxy.corp:3128"),
            ("https_proxy", "http://ignored:1"),
            ("http_proxy", "http://user:pw@plain.corp:8080"),
            ("no_proxy", ".svc,10.0.0.0/8"),
        ]))
        .unwrap();
        assert_eq!(p.https.as_deref(), Some("http://proxy.corp:3128"));
        assert_eq!(p.http.as_deref(), Some("http://user:pw@plain.corp:8080"));
        assert_eq!(p.direct(), ".svc,10.0.0.0/8,localhost,127.0.0.0/8,::1");
        assert!(!p.is_empty());

        let none = Proxies::from_vars(vars(&[("NO_PROXY", "*"), ("HTTP_PROXY", " ")])).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_proxy_that_is_not_an_http_url_is_refused_naming_the_variable() {
        for (value, reason) in [
            (
                "socks5://proxy:1080",
                "is not an http:// or https:// proxy URL",
            ),
            ("http://", "names no host"),
            ("http://:3128", "names no host"),
        ] {
            let err = Proxies::from_vars(vars(&[("HTTPS_PROXY", value)])).unwrap_err();
            assert_eq!(err.name, "HTTPS_PROXY");
            assert!(err.reason.ends_with(reason), "{value}: {err}");
        }
    }
}
