//! Endpoint overrides from the environment, for the providers whose endpoints are not in the
//! store spec: what the operator and `sync-once` read (a local or private endpoint, a test
//! server). Each variable is named as the vendor's own tools name it.
//!
//! | provider | variable | effect |
//! |---|---|---|
//! | `gcpsm` | `CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER` | Secret Manager base URL (global and regional secrets), as `gcloud`'s property |
//! | `gcpsm` | `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS` | IAM credentials base URL (impersonation) |
//! | `gcpsm` | `CLOUDSDK_API_ENDPOINT_OVERRIDES_STS` | STS base URL (`{base}/v1/token`, Workload Identity federation) |
//! | `gcpsm` | `GCE_METADATA_HOST` | the metadata server's `host[:port]` (default credentials), as Google's clients |
//! | `azurekv` | `AZURE_AUTHORITY_HOST` | the Entra ID authority host, as `azure-identity` |
//! | `azurekv` | `AZURE_POD_IDENTITY_AUTHORITY_HOST` | the IMDS base URL managed identities get tokens from (`{base}/metadata/identity/oauth2/token`), as `azure-identity` and MSAL |
//! | `doppler` | `DOPPLER_BASE_URL` | the API base URL, as upstream ESO |
//! | `doppler` | `DOPPLER_VERIFY_TLS` | `false` turns certificate checks off, as upstream ESO |
//! | all HTTP providers | `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (and lower-case) | outbound proxies, as Go's clients read them (see [`eso_provider::proxy`]); installed for the whole process |
//!
//! Service-account keys name their own token URL (`token_uri`), so a key issued by a local
//! server needs no variable.

use crate::ProviderRegistry;

/// A variable of [`builtin_from_env`] that holds no usable value.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} is invalid: {reason}")]
pub struct EnvError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// [`crate::builtin()`] with the endpoint overrides the environment names (see the table in
/// this module's documentation); `var` looks a variable up (`|n| std::env::var(n).ok()`).
/// Without any of them set, the result is [`crate::builtin()`]. The proxy variables are
/// [installed](eso_provider::proxy::Proxies::install) for every provider client of the process
/// (the AWS SDK reads them itself).
///
/// ```
/// let registry = eso_providers::builtin_from_env(|name| {
///     (name == "DOPPLER_BASE_URL").then(|| "http://127.0.0.1:8080".to_owned())
/// })
/// .unwrap();
/// assert!(registry.keys().any(|key| key == "doppler"));
/// assert!(eso_providers::builtin_from_env(|name| {
///     (name == "DOPPLER_VERIFY_TLS").then(|| "maybe".to_owned())
/// })
/// .is_err());
/// ```
///
/// # Errors
/// A variable whose value is not a URL (or, for `DOPPLER_VERIFY_TLS`, a boolean).
#[allow(unused_variables, unused_mut)] // with the gcp, azure and doppler features off
pub fn builtin_from_env(
    var: impl Fn(&str) -> Option<String>,
) -> Result<ProviderRegistry, EnvError> {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    eso_provider::proxy::Proxies::from_vars(var)
        .map_err(|e| EnvError {
            name: e.name,
            reason: e.reason,
        })?
        .install();
    let mut registry = crate::builtin();
    #[cfg(feature = "gcp")]
    {
        let mut endpoints = crate::gcp::GcpEndpoints::google();
        let mut any = false;
        if let Some(url) = var("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER") {
            let url = checked_url("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", &url)?;
            endpoints = endpoints.secret_manager(&url).regional_secret_manager(&url);
            any = true;
        }
        if let Some(url) = var("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS") {
            let url = checked_url("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", &url)?;
            endpoints = endpoints.iam_credentials(&url);
            any = true;
        }
        if let Some(url) = var("CLOUDSDK_API_ENDPOINT_OVERRIDES_STS") {
            let url = checked_url("CLOUDSDK_API_ENDPOINT_OVERRIDES_STS", &url)?;
            endpoints = endpoints.sts(&format!("{}/v1/token", url.trim_end_matches('/')));
            any = true;
        }
        if let Some(host) = var("GCE_METADATA_HOST") {
            let url = checked_url("GCE_METADATA_HOST", &format!("http://{}", host.trim()))?;
            endpoints = endpoints.metadata(&url);
            any = true;
        }
        if any {
            registry.register(std::sync::Arc::new(
                crate::gcp::GcpProvider::with_endpoints(endpoints),
            ));
        }
    }
    #[cfg(feature = "azure")]
    {
        let authority = var("AZURE_AUTHORITY_HOST");
        let imds = var("AZURE_POD_IDENTITY_AUTHORITY_HOST");
        if authority.is_some() || imds.is_some() {
            let mut config = crate::azure::AzureConfig::default();
            if let Some(url) = authority {
                config = config.authority_host(&checked_url("AZURE_AUTHORITY_HOST", &url)?);
            }
            if let Some(url) = imds {
                let base = checked_url("AZURE_POD_IDENTITY_AUTHORITY_HOST", &url)?;
                config = config.imds_endpoint(&format!(
                    "{}/metadata/identity/oauth2/token",
                    base.trim_end_matches('/')
                ));
            }
            registry.register(std::sync::Arc::new(
                crate::azure::AzureKvProvider::new().config(config),
            ));
        }
    }
    #[cfg(feature = "doppler")]
    {
        let base = var("DOPPLER_BASE_URL");
        let verify = var("DOPPLER_VERIFY_TLS");
        if base.is_some() || verify.is_some() {
            let mut config = crate::doppler::DopplerConfig::default();
            if let Some(url) = base {
                config = config.base_url(&url).map_err(|e| EnvError {
                    name: "DOPPLER_BASE_URL",
                    reason: e.to_string(),
                })?;
            }
            if let Some(verify) = verify {
                let verify = match verify.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    other => {
                        return Err(EnvError {
                            name: "DOPPLER_VERIFY_TLS",
                            reason: format!("{other:?} is not a boolean (true or false)"),
                        });
                    }
                };
                config = config.verify_tls(verify);
            }
            registry.register(std::sync::Arc::new(
                crate::doppler::DopplerProvider::new().config(config),
            ));
        }
    }
    Ok(registry)
}

/// `url` when it is an `http` or `https` URL with a host.
#[allow(dead_code)] // with the gcp and azure features off
fn checked_url(name: &'static str, url: &str) -> Result<String, EnvError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(url.to_owned()),
        _ => Err(EnvError {
            name,
            reason: format!("{url:?} is not an http(s) URL"),
        }),
    }
}
