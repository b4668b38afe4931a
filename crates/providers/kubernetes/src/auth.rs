//! The `kube::Config` of a store: its server, trust and credentials, from `server` + `auth` or
//! from the kubeconfig `authRef` names.
//!
//! Namespace safety lives here: credentials are only ever the ones the store names, read with
//! [`ClientContext`]'s namespace rules; a store without credentials is refused rather than
//! falling back to the operator's own identity, and a kubeconfig may not point at files, run
//! commands or name a proxy (each would let a store borrow something of the operator's pod).

use std::time::Duration;

use base64::Engine;
use eso_api::SecretKeySelector;
use eso_api::provider::KubernetesProvider as KubernetesSpec;
use eso_provider::{ClientContext, ProviderError, tls};
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

use crate::FIELD;

/// Timeouts of the built client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) request: Duration,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `server.url` as a URL: client-go reads a bare host (the default `kubernetes.default`) as
/// `https://host`.
pub(crate) fn server_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    }
}

/// Reads one credential key, trimmed of surrounding whitespace (a token or PEM written with
/// `echo` ends with a newline).
async fn read_key(
    ctx: &ClientContext<'_>,
    selector: &SecretKeySelector,
    field: &str,
) -> Result<Vec<u8>, ProviderError> {
    let value = ctx.read_secret_key(selector, field).await?;
    let text = String::from_utf8_lossy(&value);
    Ok(text.trim().as_bytes().to_vec())
}

/// The kubeconfig of a store, built from `server` and `auth`, or read from `authRef`.
pub(crate) async fn kubeconfig(
    ctx: &ClientContext<'_>,
    spec: &KubernetesSpec,
) -> Result<Kubeconfig, ProviderError> {
    let store = ctx.store.describe();
    if let Some(auth_ref) = &spec.auth_ref {
        let raw = ctx
            .read_secret_key(auth_ref, &format!("{FIELD}.authRef"))
            .await?;
        let text = String::from_utf8(raw).map_err(|e| {
            ProviderError::invalid_store(format!("{store}: {FIELD}.authRef is not UTF-8 text"))
                .with_source(e)
        })?;
        let config = Kubeconfig::from_yaml(&text).map_err(|e| {
            ProviderError::invalid_store(format!("{store}: {FIELD}.authRef is not a kubeconfig"))
                .with_source(e)
        })?;
        check_kubeconfig(&config)
            .map_err(|m| ProviderError::invalid_store(format!("{store}: {FIELD}.authRef: {m}")))?;
        return Ok(config);
    }

    let server = spec.server.clone().unwrap_or_default();
    let url = server_url(server.url());
    // The kubeconfig carries the roots as base64 of PEM.
    let ca = tls::load_ca_bundle(
        ctx,
        server.ca_bundle.as_deref(),
        server.ca_provider.as_ref(),
        &format!("{FIELD}.server"),
    )
    .await?
    .map(|pem| b64(&pem));
    if ca.is_none() && url.starts_with("https://") {
        return Err(ProviderError::invalid_store(format!(
            "{store}: {FIELD}.server needs caBundle or caProvider for {url}"
        )));
    }

    let auth = spec.auth.clone().unwrap_or_default();
    let mut user = AuthInfo::default();
    match (&auth.token, &auth.cert, &auth.service_account) {
        (Some(token), None, None) => {
            let value = read_key(
                ctx,
                &token.bearer_token,
                &format!("{FIELD}.auth.token.bearerToken"),
            )
            .await?;
            let value = String::from_utf8(value).map_err(|_| {
                ProviderError::invalid_store(format!(
                    "{store}: {FIELD}.auth.token.bearerToken is not UTF-8 text"
                ))
            })?;
            user.token = Some(value.into());
        }
        (None, Some(cert), None) => {
            let pem = read_key(
                ctx,
                &cert.client_cert,
                &format!("{FIELD}.auth.cert.clientCert"),
            )
            .await?;
            let key = read_key(
                ctx,
                &cert.client_key,
                &format!("{FIELD}.auth.cert.clientKey"),
            )
            .await?;
            user.client_certificate_data = Some(b64(&pem));
            user.client_key_data = Some(b64(&key).into());
        }
        (None, None, Some(account)) => {
            let token = ctx.service_account_token(account, &[]).await?;
            user.token = Some(token.into());
        }
        (None, None, None) => {
            return Err(ProviderError::invalid_store(format!(
                "{store}: {FIELD} names no credentials: set auth.token, auth.cert, auth.serviceAccount or authRef (the operator's own identity is never used)"
            )));
        }
        _ => {
            return Err(ProviderError::invalid_store(format!(
                "{store}: {FIELD}.auth must set exactly one of token, cert and serviceAccount"
            )));
        }
    }

    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: "remote".into(),
            cluster: Some(Cluster {
                server: Some(url),
                certificate_authority_data: ca,
                ..Cluster::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "store".into(),
            auth_info: Some(user),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "store".into(),
            context: Some(Context {
                cluster: "remote".into(),
                user: Some("store".into()),
                ..Context::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("store".into()),
        ..Kubeconfig::default()
    })
}

/// Refuses what a kubeconfig in a Secret must not do: read files of the operator's pod (token,
/// certificate, key or CA files), run commands (`exec`, `auth-provider`), go through a proxy,
/// or carry no credentials at all.
pub(crate) fn check_kubeconfig(config: &Kubeconfig) -> Result<(), String> {
    let context_name = config
        .current_context
        .as_deref()
        .ok_or("the kubeconfig has no current-context")?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| format!("context {context_name:?} is not in the kubeconfig"))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| format!("cluster {:?} is not in the kubeconfig", context.cluster))?;
    if cluster.certificate_authority.is_some() {
        return Err(
            "certificate-authority files are not allowed; use certificate-authority-data".into(),
        );
    }
    if cluster.proxy_url.is_some() {
        return Err("proxy-url is not supported".into());
    }
    let user = context
        .user
        .as_deref()
        .and_then(|u| config.auth_infos.iter().find(|a| a.name == u))
        .and_then(|a| a.auth_info.as_ref());
    let Some(user) = user else {
        return Err(
            "the current context names no user, and anonymous access is not allowed".into(),
        );
    };
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err("exec and auth-provider credentials are not allowed".into());
    }
    if user.token_file.is_some() || user.client_certificate.is_some() || user.client_key.is_some() {
        return Err(
            "credential files (tokenFile, client-certificate, client-key) are not allowed; use inline data".into(),
        );
    }
    let has_token = user.token.is_some();
    let has_cert = user.client_certificate_data.is_some() && user.client_key_data.is_some();
    let has_basic = user.username.is_some() && user.password.is_some();
    if !(has_token || has_cert || has_basic) {
        return Err("the user has no credentials (token, client certificate data, or username and password)".into());
    }
    Ok(())
}

/// The `kube::Config` of a checked kubeconfig, for `namespace`.
pub(crate) async fn kube_config(
    kubeconfig: Kubeconfig,
    namespace: &str,
    timeouts: Timeouts,
    store: &str,
) -> Result<kube::Config, ProviderError> {
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| {
                ProviderError::invalid_store(format!(
                    "{store}: {FIELD}: cannot use the client configuration"
                ))
                .with_source(e)
            })?;
    // kube falls back to HTTPS_PROXY from the environment; a library reads none.
    config.proxy_url = None;
    config.default_namespace = namespace.to_owned();
    config.connect_timeout = Some(timeouts.connect);
    config.read_timeout = Some(timeouts.request);
    config.write_timeout = Some(timeouts.request);
    // One request per call: the reconciler retries with its own backoff.
    config.default_retry = false;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(yaml).unwrap()
    }

    const BASE: &str = r"
apiVersion: v1
kind: Config
current-context: c
contexts:
- name: c
  context: {cluster: k, user: u}
clusters:
- name: k
  cluster: {server: 'https://k8s.example:6443', certificate-authority-data: 'AAAA'}
users:
- name: u
  user: USER
";

    fn with_user(user: &str) -> Kubeconfig {
        parse(&BASE.replace("USER", user))
    }

    #[test]
    fn kubeconfigs_need_inline_credentials() {
        assert!(check_kubeconfig(&with_user("{token: abc}")).is_ok());
        assert!(
            check_kubeconfig(&with_user(
                "{client-certificate-data: AAAA, client-key-data: AAAA}"
            ))
            .is_ok()
        );
        for bad in [
            "{tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}",
            "{client-certificate: /etc/c.pem, client-key: /etc/k.pem}",
            "{exec: {command: cat, apiVersion: client.authentication.k8s.io/v1}}",
            "{}",
        ] {
            assert!(check_kubeconfig(&with_user(bad)).is_err(), "{bad}");
        }
        let file_ca = BASE
            .replace(
                "certificate-authority-data: 'AAAA'",
                "certificate-authority: /ca.pem",
            )
            .replace("USER", "{token: abc}");
        assert!(check_kubeconfig(&parse(&file_ca)).is_err());
        let proxy = BASE
            .replace(
                "certificate-authority-data: 'AAAA'",
                "proxy-url: 'http://p'",
            )
            .replace("USER", "{token: abc}");
        assert!(check_kubeconfig(&parse(&proxy)).is_err());
    }

    #[test]
    fn bare_hosts_are_https() {
        assert_eq!(
            server_url("kubernetes.default"),
            "https://kubernetes.default"
        );
        assert_eq!(server_url("http://127.0.0.1:1"), "http://127.0.0.1:1");
    }
}
