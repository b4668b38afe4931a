//! `eso-provider-aws`: the AWS provider (`spec.provider.aws`) for Secrets Manager and Systems
//! Manager Parameter Store, on the official AWS SDK for Rust (hyper 1 + rustls, the
//! workspace's one TLS stack).
//!
//! It owns the AWS clients of a store: credentials (static keys from a Secret, a
//! ServiceAccount token exchanged through `AssumeRoleWithWebIdentity` for the role its
//! `eks.amazonaws.com/role-arn` annotation names (EKS IRSA), or the SDK's default
//! chain), the role chain (`additionalRoles`, then `role` with `externalID`, `sessionTags`
//! and `transitiveTagKeys`), reads, `find`, push and delete. It knows nothing of Kubernetes
//! (credentials come through [`eso_provider::ClientContext`]) and reads no environment
//! variable itself: endpoints come from [`AwsConfig`], which binaries fill from
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>` and a flag with
//! [`AwsConfig::endpoints_from`]. Only the SDK's default
//! credential chain, used when a store names no credentials (as upstream), looks at the
//! environment, profiles and the instance metadata service.
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_aws::{AwsConfig, AwsProvider};
//!
//! let config = AwsConfig::default()
//!     .endpoint_url(Some("http://127.0.0.1:5000".to_owned()))
//!     .read_cache_ttl(Duration::from_secs(30));
//! let registry = ProviderRegistry::new().with(Arc::new(AwsProvider::new().config(config)));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["aws"]);
//! ```
//!
//! # Supported
//! - `service: SecretsManager`: get (`SecretString` or `SecretBinary`; `property` as a
//!   literal key, then a gjson path; `version` as `uuid/<id>`, a bare version id (a UUID), or
//!   a stage such as `AWSPREVIOUS`), `metadataPolicy: Fetch` (the tags, as JSON, or one tag
//!   with `property`), get map, find by name regexp, tags and path prefix (`ListSecrets` with
//!   `name`/`tag-key`/`tag-value` filters, paginated), push (`CreateSecret` with the
//!   `managed-by: external-secrets` tag, else `PutSecretValue`; no write when unchanged;
//!   `property` merges into the JSON document; metadata `secretPushFormat` (`binary`, the
//!   default as upstream, or `string`), `description`, `kmsKeyID`, `tags`), delete (only
//!   tagged secrets; `property` removes one key; `forceDeleteWithoutRecovery`,
//!   `recoveryWindowInDays`), secret-exists, validate.
//! - `service: ParameterStore`: get (`WithDecryption`; `version` as `name:version`), get map,
//!   `metadataPolicy: Fetch` (tags), find by path (`GetParametersByPath`, recursive, values
//!   included), by tags or name regexp (`DescribeParameters` filters, then `GetParameters`
//!   ten at a time), push (`SecureString` by default; metadata `secretType`, `kmsKeyID`,
//!   `tier.type`, `tags`; no write when unchanged), delete (only tagged), secret-exists.
//! - `prefix` is put in front of every remote key.
//!
//! # Economy
//! A client resolves its credentials once per session (an assumed role is assumed again five
//! minutes before it expires) and shares them between calls and `validate`, which calls no
//! service API. Concurrent reads of one (key, version) are one request, and a read answered
//! less than [`AwsConfig::read_cache_ttl`] ago (default 10 s) is served from the client's
//! cache; errors are shared the same way. On Secrets Manager, reads of current values that
//! arrive within [`AwsConfig::batch_window`] (5 ms) of each other, and the values a `find`
//! matched, are read with `BatchGetSecretValue`, 20 per call (falling back to
//! `GetSecretValue` for good when the credentials may not batch). Measured against moto:
//! 1,000 concurrent gets of 100 keys make 100 `GetSecretValue` calls unbatched, or 5 to 10
//! `BatchGetSecretValue` calls batched. Parameter Store batches the same way with
//! `GetParameters` (10 names per call), and `find` by path uses `GetParametersByPath`,
//! which returns the values with the listing. Parameter Store calls
//! of one client are paced to [`AwsConfig::parameter_store_rate`] (default 40/s, the
//! service's default quota). The SDK's standard retry (exponential backoff with jitter, 3
//! attempts by default) handles throttling and transient failures. Every SDK operation
//! counts once in `externalsecret_provider_api_calls_count{provider, call, status}` with
//! upstream's labels (`AWS/SecretsManager`, `AWS/ParameterStore`, and `AWS/STS` for role
//! steps).
//!
//! # Errors
//! `ResourceNotFoundException`, `ParameterNotFound`, `ParameterVersionNotFound`, a secret
//! scheduled for deletion, and absent properties are `NotFound`. `AccessDenied*`,
//! `UnrecognizedClientException`, `InvalidClientTokenId`, expired tokens, signature errors
//! and any 401/403 are `Auth`, never `NotFound`. Throttling codes and 429 are `Throttled`;
//! 5xx, connection failures and timeouts are `Unavailable`; other 4xx answers
//! (`InvalidRequestException`, `InvalidParameterException`, `ValidationException`) are
//! `InvalidRequest`.
//!
//! # Differences from upstream
//! - With `auth.jwt`, as upstream, the ServiceAccount token (audience: the
//!   `eks.amazonaws.com/audience` annotation or `sts.amazonaws.com`, then the reference's
//!   `audiences`) is exchanged for the role its `eks.amazonaws.com/role-arn` annotation names,
//!   then `additionalRoles` and `role` are assumed. Unlike upstream, a ServiceAccount without
//!   the annotation is not an error when `role` is set: the token is exchanged for `role`
//!   itself. The token is requested once per client; when it expires the next refresh fails
//!   with `Auth` and the reconciler rebuilds the client (upstream requests one per exchange).
//! - A bare UUID `version` is a version id (upstream treats it as a stage name, which AWS
//!   then rejects).
//! - Parameter Store pushes default to `SecureString` (upstream: `String`).
//! - The default chain has no SSO and no `credential_process` support (SDK features left out
//!   to keep the build small).
//! - `CertificateManager` is not supported. `prefix` applies to keys, not to `find` results.
//!
//! # Verified against a real server, and not
//! The integration tests run moto 5.2.5 (`moto_server`) and cover every read, find, push and
//! delete path above on both services, versions and stages, binary values, pagination of
//! `ListSecrets` and `GetParametersByPath`, tags, role chains and web identity through moto's
//! STS (which accepts any token), a stopped and restarted server, and moto's IAM enforcement
//! (`INITIAL_NO_AUTH_ACTION_COUNT`): an unknown key (403 `InvalidClientTokenId`) and a
//! policy that denies `ListSecrets`, `CreateSecret`, `BatchGetSecretValue` and
//! `GetParameters` (403 `AccessDenied`, whose XML body the SDK cannot parse, so the status
//! decides). Not verifiable there: real KMS decryption, session tag and external-id checks
//! (moto accepts them unchecked), and AWS's real throttling.

mod batch;
mod credentials;
mod error;
pub mod generators;
mod metrics;
mod parameterstore;
mod ratelimit;
mod secretsmanager;
mod value;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use eso_api::SecretStoreCapabilities;
use eso_api::provider::{AwsProvider as AwsSpec, AwsService};
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};

pub use parameterstore::ParameterStoreClient;
pub use secretsmanager::SecretsManagerClient;

/// An AWS service endpoint that [`AwsConfig`] can point elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// AWS Secrets Manager (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    SecretsManager,
    /// AWS Systems Manager, which serves Parameter Store (`AWS_ENDPOINT_URL_SSM`).
    Ssm,
    /// AWS Security Token Service, for assumed roles (`AWS_ENDPOINT_URL_STS`).
    Sts,
}

impl Service {
    /// Every service [`AwsConfig`] can point elsewhere.
    pub const ALL: [Self; 3] = [Self::SecretsManager, Self::Ssm, Self::Sts];

    /// The SDK's standard variable that names this service's endpoint (the service id in
    /// upper snake case after `AWS_ENDPOINT_URL_`).
    #[must_use]
    pub const fn endpoint_variable(self) -> &'static str {
        match self {
            Self::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Self::Ssm => "AWS_ENDPOINT_URL_SSM",
            Self::Sts => "AWS_ENDPOINT_URL_STS",
        }
    }
}

/// The SDK's standard variable that names one endpoint for every service.
pub const ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL";
/// The SDK's standard variable that, when `true`, makes the endpoint variables ignored.
pub const IGNORE_ENDPOINTS_VARIABLE: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// Tuning and endpoints of the clients an [`AwsProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct AwsConfig {
    endpoint_url: Option<String>,
    service_endpoints: Vec<(Service, String)>,
    read_cache_ttl: Duration,
    operation_timeout: Duration,
    connect_timeout: Duration,
    max_attempts: u32,
    parameter_store_rate: Option<f64>,
    list_page_size: i32,
    batch_reads: bool,
    batch_window: Duration,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            service_endpoints: Vec::new(),
            read_cache_ttl: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 3,
            parameter_store_rate: Some(40.0),
            list_page_size: 100,
            batch_reads: true,
            batch_window: Duration::from_millis(5),
        }
    }
}

impl AwsConfig {
    /// One endpoint for every AWS service (the SDK's `AWS_ENDPOINT_URL`), for AWS-compatible
    /// servers and tests. `None` (the default) uses AWS's regional endpoints.
    pub fn endpoint_url(mut self, url: Option<String>) -> Self {
        self.endpoint_url = url.filter(|u| !u.is_empty());
        self
    }

    /// The endpoint of one service (`AWS_ENDPOINT_URL_<SERVICE>`); wins over
    /// [`AwsConfig::endpoint_url`].
    pub fn service_endpoint(mut self, service: Service, url: impl Into<String>) -> Self {
        self.service_endpoints.retain(|(s, _)| *s != service);
        self.service_endpoints.push((service, url.into()));
        self
    }

    /// How long a read answer is served again without asking AWS (default 10 s). Zero still
    /// shares one request between concurrent identical reads.
    pub fn read_cache_ttl(mut self, ttl: Duration) -> Self {
        self.read_cache_ttl = ttl;
        self
    }

    /// The timeout of one operation, retries included (default 30 s).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The timeout of establishing a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Attempts per operation, the first included, with the SDK's exponential backoff between
    /// them (default 3; 1 disables retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The most Parameter Store requests per second one client sends (default 40, the
    /// service's default quota); `None` for no limit.
    pub fn parameter_store_rate(mut self, per_second: Option<f64>) -> Self {
        self.parameter_store_rate = per_second.filter(|r| *r > 0.0);
        self
    }

    /// The page size of `ListSecrets` (default 100, the most AWS allows) and, capped at the
    /// service maxima, of Parameter Store listings.
    pub fn list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = size.clamp(1, 100);
        self
    }

    /// Whether values are read in batches (default on): `BatchGetSecretValue` (20 ids) on
    /// Secrets Manager, `GetParameters` (10 names) on Parameter Store, by `find` and by reads
    /// of current values that arrive within [`AwsConfig::batch_window`]. It needs the
    /// `secretsmanager:BatchGetSecretValue` or `ssm:GetParameters` permission; a client
    /// refused it falls back to single reads for good.
    pub fn batch_reads(mut self, on: bool) -> Self {
        self.batch_reads = on;
        self
    }

    /// How long a read of a current value waits for others to share a batch call with
    /// (default 5 ms; zero reads each value on its own). Only with
    /// [`AwsConfig::batch_reads`]. Callers that read one after another (a one-shot sync)
    /// never share a batch and only pay the wait: give them zero (`find` still batches).
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.batch_window = window;
        self
    }

    /// Sets the endpoints that the SDK's standard variables name: [`ENDPOINT_VARIABLE`] for
    /// every service and [`Service::endpoint_variable`] for one (which wins), unless
    /// [`IGNORE_ENDPOINTS_VARIABLE`] is `true`. Empty values are ignored. `lookup` gives a
    /// variable's value: binaries pass `|name| std::env::var(name).ok()`, since this crate
    /// reads no environment itself.
    pub fn endpoints_from_variables(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let ignore = lookup(IGNORE_ENDPOINTS_VARIABLE)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if ignore {
            return self;
        }
        if let Some(url) = lookup(ENDPOINT_VARIABLE).filter(|u| !u.is_empty()) {
            self.endpoint_url = Some(url);
        }
        for service in Service::ALL {
            if let Some(url) = lookup(service.endpoint_variable()).filter(|u| !u.is_empty()) {
                self = self.service_endpoint(service, url);
            }
        }
        self
    }

    /// Sets the endpoints the way the eso-rs binaries take them, an explicit endpoint (their
    /// `--aws-endpoint-url` flag) together with the SDK's standard variables, from the weakest
    /// to the strongest:
    ///
    /// | source | applies to | ignored when |
    /// |---|---|---|
    /// | [`ENDPOINT_VARIABLE`] (`AWS_ENDPOINT_URL`) | every service | `flag` is given, or [`IGNORE_ENDPOINTS_VARIABLE`] is `true` |
    /// | `flag` | every service | never (an empty one asks for AWS's own endpoints) |
    /// | [`Service::endpoint_variable`] (`AWS_ENDPOINT_URL_SSM`, ...) | that service | [`IGNORE_ENDPOINTS_VARIABLE`] is `true` |
    ///
    /// As the SDK does, `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` drops the configured
    /// variables, not an endpoint given explicitly. Empty variables are ignored. `lookup` gives
    /// a variable's value: binaries pass `|name| std::env::var(name).ok()`.
    ///
    /// ```
    /// use eso_provider_aws::AwsConfig;
    /// let env = |name: &str| (name == "AWS_ENDPOINT_URL").then(|| "http://from-env".to_owned());
    /// // The flag wins over AWS_ENDPOINT_URL.
    /// let config = AwsConfig::default().endpoints_from(Some("http://flag".into()), env);
    /// # let _ = config;
    /// ```
    pub fn endpoints_from(
        self,
        flag: Option<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let explicit = flag.is_some();
        let config = if explicit {
            self.endpoint_url(flag)
        } else {
            self
        };
        config.endpoints_from_variables(|name| {
            if explicit && name == ENDPOINT_VARIABLE {
                return None;
            }
            lookup(name)
        })
    }

    pub(crate) fn endpoint_for(&self, service: Service) -> Option<String> {
        self.service_endpoints
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, u)| u.clone())
            .or_else(|| self.endpoint_url.clone())
    }

    pub(crate) fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard().with_max_attempts(self.max_attempts)
    }

    pub(crate) fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(self.operation_timeout)
            .connect_timeout(self.connect_timeout)
            .build()
    }
}

/// The `aws` provider.
#[derive(Debug, Clone, Default)]
pub struct AwsProvider {
    config: AwsConfig,
}

impl AwsProvider {
    /// Serves `spec.provider.aws` with the default [`AwsConfig`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning and endpoints.
    #[must_use]
    pub fn config(mut self, config: AwsConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&AwsSpec, ProviderError> {
    store.spec.provider.aws.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.aws is not set",
            store.describe()
        ))
    })
}

/// Static checks of an AWS spec; returns warnings.
fn check_spec(spec: &AwsSpec, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
    let invalid = |msg: &str| {
        ProviderError::invalid_store(format!("{}: spec.provider.aws.{msg}", store.describe()))
    };
    let mut warnings = Vec::new();
    if spec.service == AwsService::CertificateManager {
        return Err(ProviderError::unsupported(format!(
            "{}: spec.provider.aws.service CertificateManager is not supported by eso-rs",
            store.describe()
        )));
    }
    if spec.region.trim().is_empty() {
        return Err(invalid("region is required"));
    }
    if let Some(auth) = &spec.auth {
        if auth.secret_ref.is_some() && auth.jwt.is_some() {
            return Err(invalid("auth must set one of secretRef and jwt"));
        }
        if let Some(refs) = &auth.secret_ref
            && (refs.access_key_id_secret_ref.is_none()
                || refs.secret_access_key_secret_ref.is_none())
        {
            return Err(invalid(
                "auth.secretRef needs accessKeyIDSecretRef and secretAccessKeySecretRef",
            ));
        }
        // The web identity role may come from the ServiceAccount's annotation, which only
        // building a client can read.
        if let Some(jwt) = &auth.jwt
            && jwt.service_account_ref.is_none()
        {
            return Err(invalid("auth.jwt.serviceAccountRef is required"));
        }
    }
    if spec.session_tags.iter().any(|t| t.key.is_empty()) {
        return Err(invalid("sessionTags need a key"));
    }
    if let Some(sm) = &spec.secrets_manager {
        let force = sm.force_delete_without_recovery == Some(true);
        match sm.recovery_window_in_days {
            Some(days) if force && days != 0 => {
                return Err(invalid(
                    "secretsManager: forceDeleteWithoutRecovery and recoveryWindowInDays are mutually exclusive",
                ));
            }
            Some(days) if days != 0 && !(7..=30).contains(&days) => {
                return Err(invalid(
                    "secretsManager.recoveryWindowInDays must be between 7 and 30",
                ));
            }
            _ => {}
        }
        if spec.service != AwsService::SecretsManager {
            warnings.push(
                "spec.provider.aws.secretsManager applies to service SecretsManager only and is ignored"
                    .to_owned(),
            );
        }
    }
    Ok(warnings)
}

#[async_trait]
impl Provider for AwsProvider {
    fn key(&self) -> &'static str {
        "aws"
    }

    fn display_name(&self) -> &'static str {
        "AWS"
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadWrite
    }

    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        check_spec(spec_of(store)?, store)
    }

    async fn new_client(
        &self,
        ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = ctx.store;
        let spec = spec_of(store)?;
        check_spec(spec, store)?;
        let creds = credentials::resolve(&ctx, spec, &self.config).await?;
        let settings = ClientSettings {
            config: self.config.clone(),
            region: spec.region.clone(),
            prefix: spec.prefix.clone().unwrap_or_default(),
            store: store.describe(),
        };
        Ok(match spec.service {
            AwsService::SecretsManager => Arc::new(SecretsManagerClient::new(
                settings,
                creds,
                spec.secrets_manager.clone().unwrap_or_default(),
            )),
            AwsService::ParameterStore => Arc::new(ParameterStoreClient::new(settings, creds)),
            AwsService::CertificateManager => {
                return Err(ProviderError::unsupported(
                    "service CertificateManager is not supported",
                ));
            }
        })
    }
}

/// What every service client of a store needs.
pub(crate) struct ClientSettings {
    pub(crate) config: AwsConfig,
    pub(crate) region: String,
    pub(crate) prefix: String,
    /// The store, for messages.
    pub(crate) store: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::SecretStoreSpec;
    use eso_api::provider::{AwsAuth, AwsJwtAuth, AwsSecretsManager};

    fn store(spec: AwsSpec) -> StoreInfo {
        let mut s = SecretStoreSpec::default();
        s.provider.aws = Some(spec);
        StoreInfo::secret_store("aws", "default", s)
    }

    fn spec() -> AwsSpec {
        AwsSpec {
            region: "eu-west-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validate_store_checks_region_auth_and_deletion() {
        let p = AwsProvider::new();
        assert!(p.validate_store(&store(spec())).unwrap().is_empty());
        assert!(p.validate_store(&store(AwsSpec::default())).is_err());
        let jwt = |service_account_ref| AwsSpec {
            auth: Some(AwsAuth {
                jwt: Some(AwsJwtAuth {
                    service_account_ref,
                }),
                ..Default::default()
            }),
            ..spec()
        };
        // The role may come from the ServiceAccount's annotation.
        assert!(
            p.validate_store(&store(jwt(Some(Default::default()))))
                .is_ok()
        );
        assert!(p.validate_store(&store(jwt(None))).is_err());
        let both = AwsSpec {
            secrets_manager: Some(AwsSecretsManager {
                force_delete_without_recovery: Some(true),
                recovery_window_in_days: Some(7),
            }),
            ..spec()
        };
        assert!(p.validate_store(&store(both)).is_err());
        let short = AwsSpec {
            secrets_manager: Some(AwsSecretsManager {
                force_delete_without_recovery: None,
                recovery_window_in_days: Some(3),
            }),
            ..spec()
        };
        assert!(p.validate_store(&store(short)).is_err());
        let acm = AwsSpec {
            service: AwsService::CertificateManager,
            ..spec()
        };
        assert_eq!(
            p.validate_store(&store(acm)).unwrap_err().kind(),
            eso_provider::ErrorKind::Unsupported
        );
    }

    #[test]
    fn service_endpoints_win_over_the_general_one() {
        let c = AwsConfig::default()
            .endpoint_url(Some("http://all".into()))
            .service_endpoint(Service::Sts, "http://sts");
        assert_eq!(c.endpoint_for(Service::Sts).as_deref(), Some("http://sts"));
        assert_eq!(
            c.endpoint_for(Service::SecretsManager).as_deref(),
            Some("http://all")
        );
        assert_eq!(AwsConfig::default().endpoint_for(Service::Ssm), None);
    }

    fn from_variables(vars: &[(&str, &str)]) -> AwsConfig {
        AwsConfig::default().endpoints_from_variables(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn from_flag_and_variables(flag: Option<&str>, vars: &[(&str, &str)]) -> AwsConfig {
        AwsConfig::default().endpoints_from(flag.map(str::to_owned), |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn endpoint_flag_wins_over_the_general_variable_not_over_a_service_one() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://env"),
            ("AWS_ENDPOINT_URL_SSM", "http://ssm"),
        ];
        let c = from_flag_and_variables(Some("http://flag"), &vars);
        assert_eq!(
            c.endpoint_for(Service::SecretsManager).as_deref(),
            Some("http://flag")
        );
        assert_eq!(c.endpoint_for(Service::Ssm).as_deref(), Some("http://ssm"));
        // Without the flag the general variable applies; an empty flag asks for AWS itself.
        let c = from_flag_and_variables(None, &vars);
        assert_eq!(
            c.endpoint_for(Service::SecretsManager).as_deref(),
            Some("http://env")
        );
        let c = from_flag_and_variables(Some(""), &vars);
        assert_eq!(c.endpoint_for(Service::SecretsManager), None);
        assert_eq!(c.endpoint_for(Service::Ssm).as_deref(), Some("http://ssm"));
    }

    #[test]
    fn ignoring_configured_endpoints_keeps_the_flag() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://env"),
            ("AWS_ENDPOINT_URL_SSM", "http://ssm"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ];
        let c = from_flag_and_variables(Some("http://flag"), &vars);
        assert_eq!(c.endpoint_for(Service::Ssm).as_deref(), Some("http://flag"));
        let c = from_flag_and_variables(None, &vars);
        assert_eq!(c.endpoint_for(Service::Ssm), None);
        assert_eq!(c.endpoint_for(Service::SecretsManager), None);
    }

    #[test]
    fn endpoint_variables_follow_the_sdk() {
        let c = from_variables(&[
            ("AWS_ENDPOINT_URL", "http://all"),
            ("AWS_ENDPOINT_URL_SSM", "http://ssm"),
            ("AWS_ENDPOINT_URL_STS", ""),
        ]);
        assert_eq!(c.endpoint_for(Service::Ssm).as_deref(), Some("http://ssm"));
        assert_eq!(c.endpoint_for(Service::Sts).as_deref(), Some("http://all"));
        let c = from_variables(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://sm")]);
        assert_eq!(
            c.endpoint_for(Service::SecretsManager).as_deref(),
            Some("http://sm")
        );
        assert_eq!(c.endpoint_for(Service::Ssm), None);
        let c = from_variables(&[
            ("AWS_ENDPOINT_URL", "http://all"),
            ("AWS_ENDPOINT_URL_SSM", "http://ssm"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(c.endpoint_for(Service::Ssm), None);
    }
}
