//! Credentials of a store: static keys from a Secret, a ServiceAccount token exchanged through
//! `AssumeRoleWithWebIdentity`, or the SDK's default chain; then `additionalRoles` and `role`
//! assumed in order (upstream's `sessionFromSecretRef` / `sessionFromServiceAccount` and its
//! role chain). Every step caches its credentials until shortly before they expire (the SDK's
//! lazy identity cache in each STS client), so a client assumes its roles once per session,
//! not once per request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, future as credentials_future,
};
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::types::Tag;
use eso_api::StoreKind;
use eso_api::provider::{AwsProvider as AwsSpec, AwsSessionTagsPolicy};
use eso_provider::{ClientContext, ProviderError};

use crate::error::from_sdk;
use crate::{AwsConfig, metrics};

/// The audience upstream requests ServiceAccount tokens for.
const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// The ServiceAccount annotation that names the role its tokens are exchanged for (EKS IRSA).
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The ServiceAccount annotation that replaces [`STS_AUDIENCE`] (EKS IRSA).
const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// How long an assumed-role session lasts.
const SESSION_SECONDS: i32 = 3600;

/// Which identity the store's base credentials come from, for messages and the client key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BaseIdentity {
    /// Keys from a Secret (the access key id, for messages).
    Static(String),
    /// A ServiceAccount token exchanged for `role`.
    WebIdentity(String),
    /// The SDK's default chain (environment, profile, IMDS, ECS).
    DefaultChain,
}

/// The credentials provider a store's clients use, and how it was made.
pub(crate) struct StoreCredentials {
    pub(crate) provider: SharedCredentialsProvider,
    pub(crate) base: BaseIdentity,
}

fn session_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("eso-rs-{secs}")
}

fn text(bytes: Vec<u8>, field: &str) -> Result<String, ProviderError> {
    let s = String::from_utf8(bytes).map_err(|e| {
        ProviderError::invalid_store(format!("{field} is not UTF-8")).with_source(e)
    })?;
    // Keys never contain whitespace; a trailing newline from `echo > file` is a common slip.
    Ok(s.trim().to_owned())
}

/// An STS client for one step of a chain, signing with `credentials` (none for web identity).
pub(crate) fn sts_client(
    config: &AwsConfig,
    region: &str,
    credentials: Option<SharedCredentialsProvider>,
) -> aws_sdk_sts::Client {
    let mut b = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(config.retry_config())
        .timeout_config(config.timeout_config());
    if let Some(c) = credentials {
        b = b.credentials_provider(c);
    }
    if let Some(url) = config.endpoint_for(crate::Service::Sts) {
        b = b.endpoint_url(url);
    }
    aws_sdk_sts::Client::from_conf(b.build())
}

fn convert(
    creds: Option<&aws_sdk_sts::types::Credentials>,
    source: &'static str,
) -> Result<Credentials, CredentialsError> {
    let c = creds.ok_or_else(|| {
        CredentialsError::unhandled("STS answered without credentials".to_owned())
    })?;
    let expiry = SystemTime::try_from(c.expiration).ok();
    Ok(Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.clone(),
        Some(c.session_token.clone()),
        expiry,
        source,
    ))
}

/// `AssumeRole` on top of the previous step's credentials.
#[derive(Debug)]
struct AssumeRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    tags: Vec<Tag>,
    transitive_tag_keys: Vec<String>,
}

impl AssumeRole {
    async fn assume(&self) -> aws_credential_types::provider::Result {
        let mut req = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(session_name())
            .duration_seconds(SESSION_SECONDS)
            .set_external_id(self.external_id.clone());
        if !self.tags.is_empty() {
            req = req.set_tags(Some(self.tags.clone()));
        }
        if !self.transitive_tag_keys.is_empty() {
            req = req.set_transitive_tag_keys(Some(self.transitive_tag_keys.clone()));
        }
        let result = req.send().await;
        metrics::observe(metrics::STS, "AssumeRole", &result);
        let out = result.map_err(|e| {
            CredentialsError::provider_error(from_sdk(
                e,
                format!("assuming role {:?}", self.role_arn),
            ))
        })?;
        convert(out.credentials(), "eso-assume-role")
    }
}

impl ProvideCredentials for AssumeRole {
    fn provide_credentials<'a>(&'a self) -> credentials_future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        credentials_future::ProvideCredentials::new(self.assume())
    }
}

/// `AssumeRoleWithWebIdentity` with a ServiceAccount token.
///
/// The token is requested when the client is built and reused for later refreshes; once it
/// expires STS refuses it, the call fails with `Auth`, and the reconciler rebuilds the client
/// (which requests a new token).
#[derive(Debug)]
struct WebIdentity {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    token: String,
}

impl WebIdentity {
    async fn assume(&self) -> aws_credential_types::provider::Result {
        let result = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(session_name())
            .web_identity_token(&self.token)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await;
        metrics::observe(metrics::STS, "AssumeRoleWithWebIdentity", &result);
        let out = result.map_err(|e| {
            CredentialsError::provider_error(from_sdk(
                e,
                format!("assuming role {:?} with a web identity", self.role_arn),
            ))
        })?;
        convert(out.credentials(), "eso-web-identity")
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> credentials_future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        credentials_future::ProvideCredentials::new(self.assume())
    }
}

/// Wraps a step so the next STS client caches its answer (the SDK's lazy identity cache lives
/// in the client that uses a provider, so each step is cached by the client of the next).
fn shared(p: impl ProvideCredentials + 'static) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(p)
}

/// The session tags for the final role: the store's `sessionTags`, plus upstream's automatic
/// tags when `sessionTagsPolicy` asks for them.
fn session_tags(spec: &AwsSpec, ctx: &ClientContext<'_>) -> Result<Vec<Tag>, ProviderError> {
    let mut pairs: Vec<(String, String)> = spec
        .session_tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    let policy = spec.session_tags_policy();
    if policy != AwsSessionTagsPolicy::None {
        let store = ctx.store;
        pairs.push((
            "esoNamespace".into(),
            store
                .namespace
                .clone()
                .unwrap_or_else(|| ctx.namespace.to_owned()),
        ));
        pairs.push(("esoStoreName".into(), store.name.clone()));
        pairs.push((
            "esoStoreKind".into(),
            match store.kind {
                StoreKind::SecretStore => "SecretStore",
                StoreKind::ClusterSecretStore => "ClusterSecretStore",
            }
            .into(),
        ));
    }
    if policy == AwsSessionTagsPolicy::Custom {
        pairs.extend(spec.custom_session_tags.clone());
    }
    pairs
        .into_iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| {
                ProviderError::invalid_store("a session tag needs a key and a value").with_source(e)
            })
        })
        .collect()
}

/// Builds the credentials provider of a store.
pub(crate) async fn resolve(
    ctx: &ClientContext<'_>,
    spec: &AwsSpec,
    config: &AwsConfig,
) -> Result<StoreCredentials, ProviderError> {
    let field = "spec.provider.aws.auth";
    let describe = ctx.store.describe();
    let region = spec.region.as_str();
    let auth = spec.auth.as_ref();
    let mut roles: Vec<&str> = spec.additional_roles.iter().map(String::as_str).collect();
    let final_role = spec.role.as_deref().filter(|r| !r.is_empty());
    // Whether `role` was spent on the web identity exchange (then it is not assumed again).
    let mut role_is_web_identity = false;

    let (mut provider, base) = if let Some(refs) = auth.and_then(|a| a.secret_ref.as_ref()) {
        let ak_ref = refs.access_key_id_secret_ref.as_ref().ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{describe}: {field}.secretRef.accessKeyIDSecretRef is required"
            ))
        })?;
        let sk_ref = refs.secret_access_key_secret_ref.as_ref().ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{describe}: {field}.secretRef.secretAccessKeySecretRef is required"
            ))
        })?;
        let ak_field = format!("{field}.secretRef.accessKeyIDSecretRef");
        let sk_field = format!("{field}.secretRef.secretAccessKeySecretRef");
        let ak = text(ctx.read_secret_key(ak_ref, &ak_field).await?, &ak_field)?;
        let sk = text(ctx.read_secret_key(sk_ref, &sk_field).await?, &sk_field)?;
        let token = match &refs.session_token_secret_ref {
            Some(r) => {
                let f = format!("{field}.secretRef.sessionTokenSecretRef");
                Some(text(ctx.read_secret_key(r, &f).await?, &f)?).filter(|t| !t.is_empty())
            }
            None => None,
        };
        let creds = Credentials::new(ak.clone(), sk, token, None, "eso-secret-ref");
        (shared(creds), BaseIdentity::Static(ak))
    } else if let Some(jwt) = auth.and_then(|a| a.jwt.as_ref()) {
        let account = jwt.service_account_ref.as_ref().ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{describe}: {field}.jwt.serviceAccountRef is required"
            ))
        })?;
        let identity = web_identity(ctx, account).await?;
        let role = match identity.role {
            Some(role) => role,
            // Not upstream: without the annotation the store's `role` is the web identity
            // role (upstream fails), so a ServiceAccount need not be annotated.
            None => {
                let role = final_role.ok_or_else(|| {
                    ProviderError::invalid_store(format!(
                        "{describe}: {field}.jwt: ServiceAccount \"{}/{}\" has no {ROLE_ARN_ANNOTATION} annotation and spec.provider.aws.role is empty; one of them names the role to assume with its token",
                        identity.namespace, account.name
                    ))
                })?;
                role_is_web_identity = true;
                role.to_owned()
            }
        };
        let step = WebIdentity {
            sts: sts_client(config, region, None),
            role_arn: role.clone(),
            token: identity.token,
        };
        (shared(step), BaseIdentity::WebIdentity(role))
    } else {
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .region(Region::new(region.to_owned()))
            .build()
            .await;
        (shared(chain), BaseIdentity::DefaultChain)
    };

    // As upstream: additional roles, then `role`, on top of the base credentials (web identity
    // included), unless `role` was the web identity role itself.
    if !role_is_web_identity && let Some(role) = final_role {
        roles.push(role);
    }
    let tags = session_tags(spec, ctx)?;
    let last = roles.len().saturating_sub(1);
    for (i, role) in roles.into_iter().enumerate() {
        let is_last = i == last;
        let step = AssumeRole {
            sts: sts_client(config, region, Some(provider)),
            role_arn: role.to_owned(),
            // Upstream applies externalID and the session tags to `role` only.
            external_id: spec
                .external_id
                .clone()
                .filter(|e| is_last && !e.is_empty() && final_role.is_some()),
            tags: if is_last { tags.clone() } else { Vec::new() },
            transitive_tag_keys: if is_last {
                spec.transitive_tag_keys.clone()
            } else {
                Vec::new()
            },
        };
        provider = shared(step);
    }
    let provider = shared(Cached {
        inner: provider,
        state: tokio::sync::Mutex::new(None),
    });
    Ok(StoreCredentials { provider, base })
}

/// What a ServiceAccount brings to a web identity exchange.
struct WebIdentityToken {
    /// The namespace the ServiceAccount was looked up in.
    namespace: String,
    /// Its `eks.amazonaws.com/role-arn` annotation, when set.
    role: Option<String>,
    token: String,
}

/// Reads the ServiceAccount's IRSA annotations and requests its token, as upstream's
/// `credsFromServiceAccount`: the audience is the `eks.amazonaws.com/audience` annotation or
/// `sts.amazonaws.com`, followed by the reference's own `audiences`.
async fn web_identity(
    ctx: &ClientContext<'_>,
    account: &eso_api::common::ServiceAccountSelector,
) -> Result<WebIdentityToken, ProviderError> {
    let namespace = ctx.credential_namespace(account.namespace.as_deref());
    let name = &account.name;
    let tokens = ctx.tokens.ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: a token for ServiceAccount \"{namespace}/{name}\" is needed, and none can be requested here (no cluster)",
            ctx.store.describe()
        ))
    })?;
    let annotations = tokens
        .service_account_annotations(namespace, name)
        .await?
        .ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{}: spec.provider.aws.auth.jwt.serviceAccountRef names ServiceAccount \"{namespace}/{name}\", which does not exist",
                ctx.store.describe()
            ))
        })?;
    let annotation = |key: &str| {
        annotations
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut audiences =
        vec![annotation(AUDIENCE_ANNOTATION).unwrap_or_else(|| STS_AUDIENCE.to_owned())];
    audiences.extend(account.audiences.iter().cloned());
    let token = tokens.token(namespace, name, &audiences, None).await?;
    Ok(WebIdentityToken {
        namespace: namespace.to_owned(),
        role: annotation(ROLE_ARN_ANNOTATION),
        token,
    })
}

/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// The store's final credentials, shared by `validate` and the service client, refreshed
/// shortly before they expire; concurrent refreshes are one refresh.
#[derive(Debug)]
struct Cached {
    inner: SharedCredentialsProvider,
    state: tokio::sync::Mutex<Option<Credentials>>,
}

impl Cached {
    async fn get(&self) -> aws_credential_types::provider::Result {
        let mut state = self.state.lock().await;
        if let Some(c) = state.as_ref()
            && c.expiry()
                .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE)
        {
            return Ok(c.clone());
        }
        let fresh = self.inner.provide_credentials().await?;
        *state = Some(fresh.clone());
        Ok(fresh)
    }
}

impl ProvideCredentials for Cached {
    fn provide_credentials<'a>(&'a self) -> credentials_future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        credentials_future::ProvideCredentials::new(self.get())
    }
}

/// Resolves the credentials once (for `validate`), mapping failures by cause.
pub(crate) async fn check(
    provider: &SharedCredentialsProvider,
    store: &str,
) -> Result<(), ProviderError> {
    let timeout = Duration::from_secs(60);
    match tokio::time::timeout(timeout, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            let kind = match &e {
                CredentialsError::ProviderTimedOut(_) => eso_provider::ErrorKind::Unavailable,
                CredentialsError::InvalidConfiguration(_) => eso_provider::ErrorKind::InvalidStore,
                _ => std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<ProviderError>())
                    .map_or(eso_provider::ErrorKind::Auth, ProviderError::kind),
            };
            Err(
                ProviderError::new(kind, format!("{store}: loading AWS credentials failed"))
                    .with_source(e),
            )
        }
        Err(_) => Err(ProviderError::unavailable(format!(
            "{store}: loading AWS credentials took longer than {}s",
            timeout.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> credentials_future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            credentials_future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKIA",
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.lifetime),
                "test",
            )))
        }
    }

    async fn calls_for(lifetime: Duration) -> usize {
        let calls = Arc::new(AtomicUsize::new(0));
        let cached = Cached {
            inner: shared(Counting {
                calls: calls.clone(),
                lifetime,
            }),
            state: tokio::sync::Mutex::new(None),
        };
        for _ in 0..3 {
            cached.provide_credentials().await.unwrap();
        }
        calls.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn credentials_are_reused_until_shortly_before_they_expire() {
        assert_eq!(calls_for(Duration::from_secs(3600)).await, 1);
        // Inside the refresh margin: every use refreshes.
        assert_eq!(calls_for(Duration::from_secs(60)).await, 3);
    }
}
