//! Where the provider sends requests: Google's endpoints by default; a local server in tests
//! (one base URL can stand in for all of them, see [`GcpEndpoints::all_at`]).

/// The Google endpoints a client talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct GcpEndpoints {
    pub(crate) secret_manager: String,
    pub(crate) regional_secret_manager: String,
    pub(crate) sts: String,
    pub(crate) identity_binding: String,
    pub(crate) iam_credentials: String,
    pub(crate) metadata: String,
}

impl Default for GcpEndpoints {
    fn default() -> Self {
        Self::google()
    }
}

fn trim(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

impl GcpEndpoints {
    /// Google's public endpoints.
    pub fn google() -> Self {
        Self {
            secret_manager: "https://secretmanager.googleapis.com".to_owned(),
            regional_secret_manager: "https://secretmanager.{location}.rep.googleapis.com"
                .to_owned(),
            sts: "https://sts.googleapis.com/v1/token".to_owned(),
            identity_binding: "https://securetoken.googleapis.com/v1/identitybindingtoken"
                .to_owned(),
            iam_credentials: "https://iamcredentials.googleapis.com".to_owned(),
            // The link-local address, as Go's metadata client uses (no DNS needed).
            metadata: "http://169.254.169.254".to_owned(),
        }
    }

    /// Every endpoint under one base URL, with the paths the real services use
    /// (`{base}/v1/projects/...`, `{base}/v1/token`, `{base}/v1/identitybindingtoken`,
    /// `{base}/computeMetadata/v1/...`): how a local test server (`eso-testserver-gcp`) is
    /// addressed. Regional secrets go to the same base.
    pub fn all_at(base: &str) -> Self {
        let base = trim(base);
        Self {
            secret_manager: base.clone(),
            regional_secret_manager: base.clone(),
            sts: format!("{base}/v1/token"),
            identity_binding: format!("{base}/v1/identitybindingtoken"),
            iam_credentials: base.clone(),
            metadata: base,
        }
    }

    /// The Secret Manager endpoint of global secrets (default
    /// `https://secretmanager.googleapis.com`).
    pub fn secret_manager(mut self, url: &str) -> Self {
        self.secret_manager = trim(url);
        self
    }

    /// The Secret Manager endpoint of regional secrets; `{location}` is replaced by the
    /// store's `location` (default `https://secretmanager.{location}.rep.googleapis.com`).
    pub fn regional_secret_manager(mut self, template: &str) -> Self {
        self.regional_secret_manager = trim(template);
        self
    }

    /// The STS token URL (default `https://sts.googleapis.com/v1/token`). A federation
    /// `credConfig` must name exactly this `token_url`.
    pub fn sts(mut self, url: &str) -> Self {
        self.sts = trim(url);
        self
    }

    /// GKE's identity binding token URL (default
    /// `https://securetoken.googleapis.com/v1/identitybindingtoken`).
    pub fn identity_binding(mut self, url: &str) -> Self {
        self.identity_binding = trim(url);
        self
    }

    /// The IAM credentials API (default `https://iamcredentials.googleapis.com`).
    pub fn iam_credentials(mut self, url: &str) -> Self {
        self.iam_credentials = trim(url);
        self
    }

    /// The metadata server (default `http://169.254.169.254`, `metadata.google.internal`).
    pub fn metadata(mut self, url: &str) -> Self {
        self.metadata = trim(url);
        self
    }

    /// The Secret Manager base URL for a store's `location`.
    pub(crate) fn secret_manager_for(&self, location: Option<&str>) -> String {
        match location {
            Some(l) => self.regional_secret_manager.replace("{location}", l),
            None => self.secret_manager.clone(),
        }
    }

    /// The impersonation URL of a Google service account.
    pub(crate) fn impersonation_url(&self, email: &str) -> String {
        format!(
            "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            self.iam_credentials
        )
    }

    /// The service account a `service_account_impersonation_url` names, if it is one of ours.
    pub(crate) fn impersonated_account<'a>(&self, url: &'a str) -> Option<&'a str> {
        let prefix = format!("{}/v1/projects/-/serviceAccounts/", self.iam_credentials);
        url.strip_prefix(prefix.as_str())?
            .strip_suffix(":generateAccessToken")
            .filter(|e| !e.is_empty() && !e.contains(char::is_whitespace) && !e.contains('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_endpoints_follow_the_location() {
        let e = GcpEndpoints::google();
        assert_eq!(
            e.secret_manager_for(Some("europe-west4")),
            "https://secretmanager.europe-west4.rep.googleapis.com"
        );
        assert_eq!(
            e.secret_manager_for(None),
            "https://secretmanager.googleapis.com"
        );
        let local = GcpEndpoints::all_at("http://127.0.0.1:9/");
        assert_eq!(local.secret_manager_for(Some("x")), "http://127.0.0.1:9");
        assert_eq!(local.sts, "http://127.0.0.1:9/v1/token");
    }

    #[test]
    fn impersonation_urls_must_be_ours() {
        let e = GcpEndpoints::google();
        let url = e.impersonation_url("a@p.iam.gserviceaccount.com");
        assert_eq!(
            e.impersonated_account(&url),
            Some("a@p.iam.gserviceaccount.com")
        );
        assert_eq!(
            e.impersonated_account(
                "https://evil.example/v1/projects/-/serviceAccounts/a:generateAccessToken"
            ),
            None
        );
    }
}
