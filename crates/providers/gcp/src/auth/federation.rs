//! Workload identity federation (`auth.workloadIdentityFederation`), as upstream defines it:
//! exactly one subject-token source (an external-account `credConfig` from a ConfigMap, a
//! Kubernetes `serviceAccountRef`, or `awsSecurityCredentials` from a Secret) exchanged at STS
//! (`urn:ietf:params:oauth:grant-type:token-exchange`) for a federated token, optionally traded
//! for a Google service account's token (`gcpServiceAccountEmail`, the ServiceAccount's
//! `iam.gke.io/gcp-service-account` annotation, or the `credConfig`'s
//! `service_account_impersonation_url`). The `credConfig` checks are upstream's: `token_url`
//! must be the STS endpoint, the impersonation URL must be IAM credentials', `credential_source`
//! may not run executables or read the operator's own ServiceAccount token, and a
//! `credential_source.url` must equal `externalTokenEndpoint`.

use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use eso_api::provider::GcpWorkloadIdentityFederation;
use eso_provider::{ClientContext, ErrorKind, ProviderError};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::auth::aws::{self, AwsCredentials};
use crate::auth::{
    GCP_SA_ANNOTATION, KubernetesToken, impersonate, request_service_account_token, token_answer,
};
use crate::http::{Call, GoogleError, Http};
use crate::metrics::{self, call};
use crate::token::{AccessToken, TokenFetch};
use crate::{CLOUD_PLATFORM_SCOPE, GcpConfig};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const AWS_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The operator's own ServiceAccount token, which a `credConfig` may not use (upstream).
const OWN_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How a file or URL holds the subject token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    Text,
    Json(String),
}

#[derive(Debug)]
enum Subject {
    Kubernetes(KubernetesToken),
    Aws(AwsCredentials),
    File {
        path: PathBuf,
        format: Format,
    },
    Url {
        url: Url,
        headers: Vec<(String, String)>,
        format: Format,
    },
}

/// The federation credential of one client.
#[derive(Debug)]
pub(crate) struct Federation {
    subject: Subject,
    audience: String,
    subject_token_type: String,
    sts: Url,
    client_auth: Option<String>,
    impersonation: Option<(String, Option<u64>)>,
    owner: String,
}

fn invalid(owner: &str, what: impl std::fmt::Display) -> ProviderError {
    ProviderError::invalid_store(format!(
        "{owner}: invalid workloadIdentityFederation config: {what}"
    ))
}

fn format_of(source: &Value, owner: &str) -> Result<Format, ProviderError> {
    let Some(f) = source.get("format").filter(|f| !f.is_null()) else {
        return Ok(Format::Text);
    };
    match f.get("type").and_then(Value::as_str).unwrap_or("text") {
        "text" => Ok(Format::Text),
        "json" => f
            .get("subject_token_field_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| Format::Json(s.to_owned()))
            .ok_or_else(|| {
                invalid(
                    owner,
                    "credential_source.format.subject_token_field_name is required for json",
                )
            }),
        other => Err(invalid(
            owner,
            format!("credential_source.format.type {other:?} is not text or json"),
        )),
    }
}

fn read_format(raw: &str, format: &Format) -> Option<String> {
    match format {
        Format::Text => Some(raw.trim().to_owned()).filter(|s| !s.is_empty()),
        Format::Json(field) => serde_json::from_str::<Value>(raw)
            .ok()?
            .get(field)?
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    }
}

impl Federation {
    pub(crate) async fn build(
        ctx: &ClientContext<'_>,
        wif: &GcpWorkloadIdentityFederation,
        config: &GcpConfig,
    ) -> Result<Self, ProviderError> {
        let owner = ctx.store.describe();
        let sources = [
            wif.cred_config.is_some(),
            wif.service_account_ref.is_some(),
            wif.aws_security_credentials.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(invalid(
                &owner,
                "exactly one of credConfig, awsSecurityCredentials or serviceAccountRef must be provided",
            ));
        }
        let spec_audience = wif.audience.clone().filter(|a| !a.is_empty());
        if (wif.service_account_ref.is_some() || wif.aws_security_credentials.is_some())
            && spec_audience.is_none()
        {
            return Err(invalid(
                &owner,
                "audience must be provided, when serviceAccountRef or awsSecurityCredentials is provided",
            ));
        }
        let mut audience = spec_audience.clone().unwrap_or_default();
        let mut subject_token_type = JWT_TOKEN_TYPE.to_owned();
        let mut token_url = config.endpoints.sts.clone();
        let mut impersonation_url: Option<String> = None;
        let mut lifetime: Option<u64> = None;
        let mut client_auth = None;
        let subject = if let Some(cm) = &wif.cred_config {
            let namespace = ctx.credential_namespace(cm.namespace.as_deref()).to_owned();
            let data = ctx
                .config_maps
                .config_map_data(&namespace, &cm.name)
                .await?
                .ok_or_else(|| {
                    invalid(
                        &owner,
                        format!("ConfigMap \"{namespace}/{}\" does not exist", cm.name),
                    )
                })?;
            let text = data.get(&cm.key).filter(|t| !t.is_empty()).ok_or_else(|| {
                invalid(
                    &owner,
                    format!(
                        "key {:?} of ConfigMap \"{namespace}/{}\" is missing or empty",
                        cm.key, cm.name
                    ),
                )
            })?;
            let file: Value = serde_json::from_str(text).map_err(|e| {
                invalid(
                    &owner,
                    format!(
                        "ConfigMap \"{namespace}/{}\" key {:?} is not JSON",
                        cm.name, cm.key
                    ),
                )
                .with_source(e)
            })?;
            let s = |k: &str| {
                file.get(k)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            if s("type").as_deref() != Some("external_account") {
                return Err(invalid(
                    &owner,
                    format!(
                        "'type' field is {:?} (expected \"external_account\")",
                        s("type").unwrap_or_default()
                    ),
                ));
            }
            if audience.is_empty() {
                audience = s("audience").unwrap_or_default();
            }
            if let Some(t) = s("subject_token_type") {
                subject_token_type = t;
            }
            if let Some(t) = s("token_url") {
                token_url = t;
            }
            impersonation_url = s("service_account_impersonation_url");
            lifetime = file
                .pointer("/service_account_impersonation/token_lifetime_seconds")
                .and_then(Value::as_u64)
                .filter(|l| *l > 0);
            if let (Some(id), Some(secret)) = (s("client_id"), s("client_secret")) {
                client_auth = Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("{id}:{secret}"))
                ));
            }
            let source = file
                .get("credential_source")
                .cloned()
                .unwrap_or(Value::Null);
            if source.get("executable").is_some_and(|e| !e.is_null()) {
                return Err(invalid(
                    &owner,
                    "credential_source.executable.command is not allowed",
                ));
            }
            if source
                .get("environment_id")
                .and_then(Value::as_str)
                .is_some_and(|e| !e.is_empty())
            {
                return Err(ProviderError::unsupported(format!(
                    "{owner}: a credConfig with an AWS credential_source (environment_id) is not supported; use awsSecurityCredentials"
                )));
            }
            let file_path = source
                .get("file")
                .and_then(Value::as_str)
                .filter(|f| !f.is_empty());
            let url = source
                .get("url")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty());
            match (file_path, url) {
                (Some(OWN_TOKEN_PATH), _) => {
                    return Err(invalid(
                        &owner,
                        "credential_source.file may not be the operator's own ServiceAccount token; use serviceAccountRef",
                    ));
                }
                (Some(path), None) => Subject::File {
                    path: PathBuf::from(path),
                    format: format_of(&source, &owner)?,
                },
                (None, Some(url)) => {
                    let expected = wif.external_token_endpoint.as_deref().unwrap_or_default();
                    if url != expected {
                        return Err(invalid(
                            &owner,
                            format!(
                                "credential_source.url {url:?} does not match with the configured {expected:?} externalTokenEndpoint"
                            ),
                        ));
                    }
                    let parsed = Url::parse(url).map_err(|e| {
                        invalid(
                            &owner,
                            format!("credential_source.url {url:?} is not a URL"),
                        )
                        .with_source(e)
                    })?;
                    let headers = source
                        .get("headers")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                                .collect()
                        })
                        .unwrap_or_default();
                    Subject::Url {
                        url: parsed,
                        headers,
                        format: format_of(&source, &owner)?,
                    }
                }
                _ => {
                    return Err(invalid(
                        &owner,
                        "credential_source must set exactly one of file or url",
                    ));
                }
            }
        } else if let Some(account) = &wif.service_account_ref {
            let (token, annotations) =
                request_service_account_token(ctx, account, &account.audiences, config).await?;
            if let Some(email) = annotations.get(GCP_SA_ANNOTATION).filter(|e| !e.is_empty()) {
                impersonation_url = Some(config.endpoints.impersonation_url(email));
            }
            Subject::Kubernetes(token)
        } else if let Some(aws_ref) = &wif.aws_security_credentials {
            let secret = &aws_ref.aws_credentials_secret_ref;
            let namespace = ctx
                .credential_namespace(secret.namespace.as_deref())
                .to_owned();
            let data = ctx
                .secrets
                .secret_data(&namespace, &secret.name)
                .await?
                .ok_or_else(|| {
                    invalid(
                        &owner,
                        format!("Secret \"{namespace}/{}\" does not exist", secret.name),
                    )
                })?;
            let get = |k: &str| {
                data.get(k)
                    .map(|v| String::from_utf8_lossy(v).trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            let (Some(access_key_id), Some(secret_access_key)) =
                (get("aws_access_key_id"), get("aws_secret_access_key"))
            else {
                return Err(invalid(
                    &owner,
                    "aws_access_key_id and aws_secret_access_key keys must be present in AwsSecurityCredentials secret",
                ));
            };
            subject_token_type = AWS_TOKEN_TYPE.to_owned();
            Subject::Aws(AwsCredentials {
                region: aws_ref.region.clone(),
                access_key_id,
                secret_access_key,
                session_token: get("aws_session_token"),
            })
        } else {
            return Err(invalid(&owner, "no subject token source"));
        };
        if let Some(email) = wif
            .gcp_service_account_email
            .as_deref()
            .filter(|e| !e.is_empty())
        {
            impersonation_url = Some(config.endpoints.impersonation_url(email));
        }
        if audience.is_empty() {
            return Err(invalid(&owner, "audience is empty"));
        }
        if token_url.trim_end_matches('/') != config.endpoints.sts {
            return Err(invalid(
                &owner,
                format!(
                    "token_url {token_url:?} must match {}",
                    config.endpoints.sts
                ),
            ));
        }
        if let Some(url) = &impersonation_url
            && config.endpoints.impersonated_account(url).is_none()
        {
            return Err(invalid(
                &owner,
                format!("service_account_impersonation_url {url:?} does not have expected value"),
            ));
        }
        let sts = Url::parse(&token_url).map_err(|e| {
            invalid(&owner, format!("token_url {token_url:?} is not a URL")).with_source(e)
        })?;
        Ok(Self {
            subject,
            audience,
            subject_token_type,
            sts,
            client_auth,
            impersonation: impersonation_url.map(|u| (u, lifetime)),
            owner,
        })
    }

    async fn subject_token(&self, http: &Http) -> Result<String, ProviderError> {
        match &self.subject {
            Subject::Kubernetes(t) => Ok(t.current(&self.owner)?.to_owned()),
            Subject::Aws(creds) => Ok(aws::subject_token(
                creds,
                &self.audience,
                jiff::Timestamp::now(),
            )),
            Subject::File { path, format } => {
                let raw = tokio::fs::read_to_string(path).await.map_err(|e| {
                    ProviderError::new(
                        ErrorKind::Auth,
                        format!(
                            "{}: cannot read the subject token file {}",
                            self.owner,
                            path.display()
                        ),
                    )
                    .with_source(e)
                })?;
                read_format(&raw, format).ok_or_else(|| {
                    ProviderError::auth(format!(
                        "{}: the subject token file {} holds no token",
                        self.owner,
                        path.display()
                    ))
                })
            }
            Subject::Url {
                url,
                headers,
                format,
            } => {
                let mut request = Call::new(Method::GET, url.clone());
                for (k, v) in headers {
                    request = request.header(k.clone(), v.clone());
                }
                let result = http.send(&request).await;
                metrics::observe(call::EXTERNAL_TOKEN, &result);
                let body = result.map_err(|e| {
                    ProviderError::new(
                        e.token_kind(),
                        format!(
                            "{}: the external token endpoint {url} gave no token",
                            self.owner
                        ),
                    )
                    .with_source(e)
                })?;
                read_format(&String::from_utf8_lossy(&body), format).ok_or_else(|| {
                    ProviderError::auth(format!(
                        "{}: the external token endpoint {url} answered without a token",
                        self.owner
                    ))
                })
            }
        }
    }
}

#[async_trait]
impl TokenFetch for Federation {
    async fn fetch(&self, http: &Http) -> Result<AccessToken, ProviderError> {
        let subject = self.subject_token(http).await?;
        let mut request = Call::new(Method::POST, self.sts.clone())
            .form(vec![
                ("grant_type", TOKEN_EXCHANGE.to_owned()),
                ("audience", self.audience.clone()),
                ("scope", CLOUD_PLATFORM_SCOPE.to_owned()),
                ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                ("subject_token", subject),
                ("subject_token_type", self.subject_token_type.clone()),
            ])
            .idempotent(true);
        if let Some(basic) = &self.client_auth {
            request = request.header("authorization", basic.clone());
        }
        let result = http.send(&request).await;
        metrics::observe(call::STS_TOKEN, &result);
        let body = result.map_err(|e| {
            ProviderError::new(
                e.token_kind(),
                format!(
                    "{}: the STS token exchange at {} (audience {}) was refused",
                    self.owner, self.sts, self.audience
                ),
            )
            .with_source(e)
        })?;
        let federated = token_answer(&body, "access_token", "expires_in").ok_or_else(|| {
            ProviderError::auth(format!(
                "{}: the STS answer holds no access token",
                self.owner
            ))
        })?;
        match &self.impersonation {
            None => Ok(federated),
            Some((url, lifetime)) => {
                impersonate(http, url, &federated.value, *lifetime, &self.owner).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_subject_formats() {
        assert_eq!(read_format(" tok\n", &Format::Text).as_deref(), Some("tok"));
        assert_eq!(
            read_format(r#"{"id_token":"t"}"#, &Format::Json("id_token".into())).as_deref(),
            Some("t")
        );
        assert_eq!(read_format("{}", &Format::Json("id_token".into())), None);
        let f = format_of(
            &json!({"format": {"type": "json", "subject_token_field_name": "x"}}),
            "s",
        )
        .unwrap();
        assert_eq!(f, Format::Json("x".into()));
        assert!(format_of(&json!({"format": {"type": "json"}}), "s").is_err());
    }
}
