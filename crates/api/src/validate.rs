//! Admission-style validation of every resource, following upstream's webhooks
//! (`externalsecret_validator.go`, `secretstore_validator.go`) and the rules its CRD schemas
//! encode (patterns, lengths, "exactly one of").
//!
//! Each function returns every violation it finds, not just the first, each with the path of
//! the offending field (`spec.data[2].secretKey`), so that one admission response or one status
//! message can list them all. An empty vector means the object is valid.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::cluster_external_secret::ClusterExternalSecretSpec;
use crate::duration::parse_go_duration;
use crate::external_secret::{
    CreationPolicy, DeletionPolicy, ExternalSecretDataFromRemoteRef, ExternalSecretRewrite,
    ExternalSecretSpec, ExternalSecretTemplate, MergeStrategy, SyncWindows,
};
use crate::provider::{CaProvider, SecretStoreProvider};
use crate::push_secret::{ClusterPushSecretSpec, PushSecretRewrite, PushSecretSpec};
use crate::secret_store::{IntOrDuration, SecretStoreSpec};

/// One violation: the path of the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// The field, e.g. `spec.data[2].secretKey`.
    pub path: String,
    /// What is wrong, e.g. `duplicate secretKey found: password`.
    pub message: String,
}

impl FieldError {
    /// A violation at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The Secret type whose templates upstream rejects outright.
pub const SECRET_TYPE_BOOTSTRAP_TOKEN: &str = "bootstrap.kubernetes.io/token";
/// The Secret type that may not be combined with the ServiceAccount-name annotation.
pub const SECRET_TYPE_SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
/// The annotation that binds a `kubernetes.io/service-account-token` Secret to a ServiceAccount.
pub const ANNOTATION_SERVICE_ACCOUNT_NAME: &str = "kubernetes.io/service-account.name";

/// Validates an ExternalSecret's spec (paths start at `spec`).
#[must_use]
pub fn validate_external_secret(spec: &ExternalSecretSpec) -> Vec<FieldError> {
    let mut errs = Errors::default();
    external_secret(spec, "spec", &mut errs);
    errs.0
}

/// Validates a ClusterExternalSecret's spec, including the embedded ExternalSecret spec (at
/// `spec.externalSecretSpec`).
#[must_use]
pub fn validate_cluster_external_secret(spec: &ClusterExternalSecretSpec) -> Vec<FieldError> {
    let mut errs = Errors::default();
    external_secret(
        &spec.external_secret_spec,
        "spec.externalSecretSpec",
        &mut errs,
    );
    if let Some(name) = &spec.external_secret_name {
        errs.dns_subdomain("spec.externalSecretName", name);
    }
    if let Some(selector) = &spec.namespace_selector {
        errs.label_selector("spec.namespaceSelector", selector);
    }
    for (i, selector) in spec.namespace_selectors.iter().enumerate() {
        errs.label_selector(&format!("spec.namespaceSelectors[{i}]"), selector);
    }
    for (i, ns) in spec.namespaces.iter().enumerate() {
        errs.dns_label(&format!("spec.namespaces[{i}]"), ns);
    }
    if let Some(refresh) = &spec.refresh_time {
        errs.duration("spec.refreshTime", refresh);
    }
    errs.0
}

/// Validates a SecretStore (`cluster == false`) or ClusterSecretStore (`cluster == true`) spec.
///
/// Only violations upstream also rejects are returned; see [`secret_store_warnings`] for
/// settings that are accepted but have no effect.
#[must_use]
pub fn validate_secret_store(spec: &SecretStoreSpec, cluster: bool) -> Vec<FieldError> {
    let mut errs = Errors::default();
    let keys = spec.provider.keys();
    match keys.as_slice() {
        [_] => {}
        [] => errs.push(
            "spec.provider",
            "exactly one provider must be set, found none",
        ),
        many => errs.push(
            "spec.provider",
            format!(
                "exactly one provider must be set, found {}: {}",
                many.len(),
                many.join(", ")
            ),
        ),
    }
    provider(&spec.provider, cluster, &mut errs);
    match &spec.refresh_interval {
        Some(IntOrDuration::Int(secs)) if *secs < 0 => {
            errs.push("spec.refreshInterval", "must not be negative");
        }
        Some(IntOrDuration::Duration(text)) if !text.is_empty() => {
            errs.duration("spec.refreshInterval", text);
        }
        _ => {}
    }
    if let Some(interval) = spec
        .retry_settings
        .as_ref()
        .and_then(|r| r.retry_interval.as_deref())
    {
        errs.duration("spec.retrySettings.retryInterval", interval);
    }
    for (i, condition) in spec.conditions.iter().enumerate() {
        let path = format!("spec.conditions[{i}]");
        if let Some(selector) = &condition.namespace_selector {
            errs.label_selector(&format!("{path}.namespaceSelector"), selector);
        }
        for (j, ns) in condition.namespaces.iter().enumerate() {
            errs.dns_label(&format!("{path}.namespaces[{j}]"), ns);
        }
        for (j, re) in condition.namespace_regexes.iter().enumerate() {
            errs.regex(&format!("{path}.namespaceRegexes[{j}]"), re);
        }
    }
    errs.0
}

/// Settings of a store that upstream accepts but that have no effect, for a Warning event or
/// an admission warning: `spec.conditions` on a namespaced SecretStore.
#[must_use]
pub fn secret_store_warnings(spec: &SecretStoreSpec, cluster: bool) -> Vec<FieldError> {
    let mut warnings = Vec::new();
    if !cluster && !spec.conditions.is_empty() {
        warnings.push(FieldError::new(
            "spec.conditions",
            "conditions only apply to a ClusterSecretStore and are ignored on a SecretStore",
        ));
    }
    warnings
}

/// Validates a PushSecret's spec (paths start at `spec`).
#[must_use]
pub fn validate_push_secret(spec: &PushSecretSpec) -> Vec<FieldError> {
    let mut errs = Errors::default();
    push_secret(spec, "spec", &mut errs);
    errs.0
}

/// Validates a ClusterPushSecret's spec, including the embedded PushSecret spec (at
/// `spec.pushSecretSpec`).
#[must_use]
pub fn validate_cluster_push_secret(spec: &ClusterPushSecretSpec) -> Vec<FieldError> {
    let mut errs = Errors::default();
    push_secret(&spec.push_secret_spec, "spec.pushSecretSpec", &mut errs);
    if let Some(name) = &spec.push_secret_name {
        errs.dns_subdomain("spec.pushSecretName", name);
    }
    for (i, selector) in spec.namespace_selectors.iter().enumerate() {
        errs.label_selector(&format!("spec.namespaceSelectors[{i}]"), selector);
    }
    if let Some(refresh) = &spec.refresh_time {
        errs.duration("spec.refreshTime", refresh);
    }
    errs.0
}

fn external_secret(spec: &ExternalSecretSpec, p: &str, errs: &mut Errors) {
    if spec.data.is_empty() && spec.data_from.is_empty() {
        errs.push(p, "either data or dataFrom should be specified");
    }
    if let Some(interval) = &spec.refresh_interval {
        errs.duration(&format!("{p}.refreshInterval"), interval);
    }
    if let Some(name) = spec.secret_store_ref.as_ref().and_then(|r| r.name.as_ref()) {
        errs.dns_subdomain(&format!("{p}.secretStoreRef.name"), name);
    }
    if let Some(windows) = &spec.sync_windows {
        sync_windows(windows, &format!("{p}.syncWindows"), errs);
    }

    // Upstream checks the policies after CRD defaulting, so absent values count as their
    // defaults (Owner / Retain).
    let creation = spec.creation_policy();
    let deletion = spec.deletion_policy();
    let deletion_path = format!("{p}.target.deletionPolicy");
    if deletion == DeletionPolicy::Delete
        && matches!(
            creation,
            CreationPolicy::Merge | CreationPolicy::None | CreationPolicy::CreateOrMerge
        )
    {
        errs.push(
            &deletion_path,
            format!(
                "deletionPolicy=Delete must not be used when the controller doesn't own the \
                 secret (creationPolicy={}). Please set creationPolicy=Owner",
                creation.as_str()
            ),
        );
    }
    if deletion == DeletionPolicy::Merge && creation == CreationPolicy::None {
        errs.push(
            &deletion_path,
            "deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret \
             to merge with",
        );
    }
    if let Some(target) = &spec.target {
        if let Some(name) = &target.name {
            errs.dns_subdomain(&format!("{p}.target.name"), name);
        }
        if let Some(template) = &target.template {
            template_rules(
                template,
                &format!("{p}.target.template"),
                target.manifest.is_none(),
                errs,
            );
        }
    }

    let check_duplicates = deletion == DeletionPolicy::Retain;
    let mut seen = std::collections::HashSet::new();
    for (i, data) in spec.data.iter().enumerate() {
        let path = format!("{p}.data[{i}]");
        errs.secret_key(&format!("{path}.secretKey"), &data.secret_key);
        if check_duplicates && !seen.insert(data.secret_key.as_str()) {
            errs.push(
                &format!("{path}.secretKey"),
                format!("duplicate secretKey found: {}", data.secret_key),
            );
        }
        if let Some(source) = &data.source_ref {
            match (source.store_ref.is_some(), source.generator_ref.is_some()) {
                (false, false) => errs.push(
                    &format!("{path}.sourceRef"),
                    "storeRef or generatorRef must be set when using sourceRef",
                ),
                (true, true) => errs.push(
                    &format!("{path}.sourceRef"),
                    "only one of storeRef or generatorRef may be set",
                ),
                _ => {}
            }
        }
    }

    for (i, data_from) in spec.data_from.iter().enumerate() {
        data_from_rules(data_from, &format!("{p}.dataFrom[{i}]"), errs);
    }
}

fn sync_windows(windows: &SyncWindows, p: &str, errs: &mut Errors) {
    if windows.windows.is_empty() {
        errs.push(&format!("{p}.windows"), "at least one window is required");
    }
    for (i, window) in windows.windows.iter().enumerate() {
        if !valid_schedule(&window.schedule) {
            errs.push(
                &format!("{p}.windows[{i}].schedule"),
                format!(
                    "{:?} is not a 5-field cron expression or a descriptor such as @daily or \
                     @every 1h",
                    window.schedule
                ),
            );
        }
        errs.duration(&format!("{p}.windows[{i}].duration"), &window.duration);
    }
}

/// Upstream's pattern `^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [^\s]+.*|[^\s]+( [^\s]+){4})$`.
fn valid_schedule(schedule: &str) -> bool {
    const DESCRIPTORS: [&str; 7] = [
        "@annually",
        "@yearly",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    if DESCRIPTORS.contains(&schedule) {
        return true;
    }
    if let Some(every) = schedule.strip_prefix("@every ") {
        return every.chars().next().is_some_and(|c| !c.is_whitespace());
    }
    let fields: Vec<&str> = schedule.split(' ').collect();
    fields.len() == 5
        && fields
            .iter()
            .all(|f| !f.is_empty() && !f.chars().any(char::is_whitespace))
}

fn template_rules(
    template: &ExternalSecretTemplate,
    p: &str,
    secret_target: bool,
    errs: &mut Errors,
) {
    let type_ = template.type_.as_deref().unwrap_or("");
    if type_ == SECRET_TYPE_BOOTSTRAP_TOKEN {
        errs.push(
            &format!("{p}.type"),
            format!("templates of type {SECRET_TYPE_BOOTSTRAP_TOKEN} are not allowed"),
        );
    }
    let sa_token = type_ == SECRET_TYPE_SERVICE_ACCOUNT_TOKEN;
    if sa_token
        && template
            .metadata
            .as_ref()
            .is_some_and(|m| m.annotations.contains_key(ANNOTATION_SERVICE_ACCOUNT_NAME))
    {
        errs.push(
            &format!("{p}.metadata.annotations[{ANNOTATION_SERVICE_ACCOUNT_NAME}]"),
            format!(
                "the {ANNOTATION_SERVICE_ACCOUNT_NAME} annotation is not allowed on templates of \
                 type {SECRET_TYPE_SERVICE_ACCOUNT_TOKEN}"
            ),
        );
    }
    for (i, from) in template.template_from.iter().enumerate() {
        let target = from.target.as_deref().unwrap_or("");
        let path = format!("{p}.templateFrom[{i}].target");
        if sa_token && target.eq_ignore_ascii_case("Annotations") {
            errs.push(
                &path,
                format!(
                    "templateFrom target Annotations is not allowed on templates of type \
                     {SECRET_TYPE_SERVICE_ACCOUNT_TOKEN}"
                ),
            );
        }
        let allowed = ["", "Data", "Annotations", "Labels"]
            .iter()
            .any(|a| target.eq_ignore_ascii_case(a));
        if secret_target && !allowed {
            errs.push(
                &path,
                format!(
                    "{target:?} is not allowed for a Secret target: use Data, Annotations or \
                     Labels"
                ),
            );
        }
    }
}

fn data_from_rules(data_from: &ExternalSecretDataFromRemoteRef, p: &str, errs: &mut Errors) {
    let generator = data_from
        .source_ref
        .as_ref()
        .is_some_and(|s| s.generator_ref.is_some());
    let sources = [
        data_from.extract.is_some(),
        data_from.find.is_some(),
        generator,
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        errs.push(
            p,
            "extract, find, or generatorRef cannot be set at the same time",
        );
    }
    if data_from.extract.is_none() && data_from.find.is_none() && data_from.source_ref.is_none() {
        errs.push(
            p,
            "either extract, find, or sourceRef must be set to dataFrom",
        );
    }
    if let Some(source) = &data_from.source_ref {
        match (source.store_ref.is_some(), source.generator_ref.is_some()) {
            (false, false) => errs.push(
                &format!("{p}.sourceRef"),
                "generatorRef or storeRef must be set when using sourceRef in dataFrom",
            ),
            (true, true) => errs.push(
                &format!("{p}.sourceRef"),
                "only one of storeRef or generatorRef may be set",
            ),
            _ => {}
        }
    }
    if let Some(re) = data_from
        .find
        .as_ref()
        .and_then(|f| f.name.as_ref())
        .and_then(|n| n.regexp.as_deref())
    {
        errs.regex(&format!("{p}.find.name.regexp"), re);
    }
    for (j, rewrite) in data_from.rewrite.iter().enumerate() {
        rewrite_rules(rewrite, &format!("{p}.rewrite[{j}]"), errs);
    }
}

fn rewrite_rules(rewrite: &ExternalSecretRewrite, p: &str, errs: &mut Errors) {
    let set = [
        rewrite.regexp.is_some(),
        rewrite.transform.is_some(),
        rewrite.merge.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        errs.push(p, "exactly one of regexp, transform or merge must be set");
    }
    if let Some(regexp) = &rewrite.regexp {
        errs.regex(&format!("{p}.regexp.source"), &regexp.source);
    }
    if let Some(merge) = &rewrite.merge
        && merge.strategy == Some(MergeStrategy::Json)
        && merge.into.as_deref().unwrap_or("").is_empty()
    {
        errs.push(
            &format!("{p}.merge.into"),
            "into is required when strategy is JSON",
        );
    }
}

fn provider(provider: &SecretStoreProvider, cluster: bool, errs: &mut Errors) {
    let p = "spec.provider";
    if let Some(k8s) = &provider.kubernetes {
        if let Some(auth) = &k8s.auth {
            let methods = [
                auth.cert.is_some(),
                auth.token.is_some(),
                auth.service_account.is_some(),
            ];
            if methods.iter().filter(|m| **m).count() != 1 {
                errs.push(
                    &format!("{p}.kubernetes.auth"),
                    "exactly one of cert, token or serviceAccount must be set",
                );
            }
        }
        if let Some(ca) = k8s.server.as_ref().and_then(|s| s.ca_provider.as_ref()) {
            ca_provider(
                ca,
                &format!("{p}.kubernetes.server.caProvider"),
                cluster,
                errs,
            );
        }
    }
    for (key, vault) in [("vault", &provider.vault), ("openBao", &provider.open_bao)] {
        let Some(vault) = vault else { continue };
        if let Some(auth) = &vault.auth {
            let methods = auth.methods();
            if methods.len() > 1 {
                errs.push(
                    &format!("{p}.{key}.auth"),
                    format!(
                        "only one auth method may be set, found {}",
                        methods.join(", ")
                    ),
                );
            }
        }
        if let Some(ca) = &vault.ca_provider {
            ca_provider(ca, &format!("{p}.{key}.caProvider"), cluster, errs);
        }
    }
    if let Some(webhook) = &provider.webhook {
        if let Some(auth) = &webhook.auth
            && auth.ntlm.is_none()
        {
            errs.push(
                &format!("{p}.webhook.auth"),
                "exactly one authorization protocol must be set",
            );
        }
        if let Some(timeout) = &webhook.timeout {
            errs.duration(&format!("{p}.webhook.timeout"), timeout);
        }
        if let Some(ca) = &webhook.ca_provider {
            ca_provider(ca, &format!("{p}.webhook.caProvider"), cluster, errs);
        }
    }
}

fn ca_provider(ca: &CaProvider, p: &str, cluster: bool, errs: &mut Errors) {
    // Upstream rejects a CA namespace on namespaced stores: the CA must come from the store's
    // own namespace.
    if !cluster && ca.namespace.is_some() {
        errs.push(
            &format!("{p}.namespace"),
            "namespace is only allowed on a ClusterSecretStore",
        );
    }
}

fn push_secret(spec: &PushSecretSpec, p: &str, errs: &mut Errors) {
    if let Some(interval) = &spec.refresh_interval {
        errs.duration(&format!("{p}.refreshInterval"), interval);
    }
    for (i, store) in spec.secret_store_refs.iter().enumerate() {
        let path = format!("{p}.secretStoreRefs[{i}]");
        if store.name.is_none() && store.label_selector.is_none() {
            errs.push(&path, "name or labelSelector must be set");
        }
        if let Some(name) = &store.name {
            errs.dns_subdomain(&format!("{path}.name"), name);
        }
        if let Some(selector) = &store.label_selector {
            errs.label_selector(&format!("{path}.labelSelector"), selector);
        }
    }
    let selector = &spec.selector;
    if selector.secret.is_some() == selector.generator_ref.is_some() {
        errs.push(
            &format!("{p}.selector"),
            "exactly one of secret or generatorRef must be set",
        );
    }
    if let Some(secret) = &selector.secret {
        let path = format!("{p}.selector.secret");
        if secret.name.is_none() && secret.selector.is_none() {
            errs.push(&path, "name or selector must be set");
        }
        if let Some(name) = &secret.name {
            errs.dns_subdomain(&format!("{path}.name"), name);
        }
        if let Some(labels) = &secret.selector {
            errs.label_selector(&format!("{path}.selector"), labels);
        }
    }
    for (i, data) in spec.data.iter().enumerate() {
        if data.match_.remote_ref.remote_key.is_empty() {
            errs.push(
                &format!("{p}.data[{i}].match.remoteRef.remoteKey"),
                "must not be empty",
            );
        }
    }
    for (i, data_to) in spec.data_to.iter().enumerate() {
        let path = format!("{p}.dataTo[{i}]");
        let has_target = data_to
            .store_ref
            .as_ref()
            .is_some_and(|s| s.name.is_some() || s.label_selector.is_some());
        if !has_target {
            errs.push(
                &format!("{path}.storeRef"),
                "storeRef must specify either name or labelSelector",
            );
        }
        if data_to.remote_key.is_some() && !data_to.rewrite.is_empty() {
            errs.push(
                &path,
                "remoteKey and rewrite are mutually exclusive: rewrite is only supported in \
                 per-key mode (without remoteKey)",
            );
        }
        if let Some(re) = data_to.match_.as_ref().and_then(|m| m.regexp.as_deref()) {
            errs.regex(&format!("{path}.match.regexp"), re);
        }
        for (j, rewrite) in data_to.rewrite.iter().enumerate() {
            push_rewrite(rewrite, &format!("{path}.rewrite[{j}]"), errs);
        }
    }
}

fn push_rewrite(rewrite: &PushSecretRewrite, p: &str, errs: &mut Errors) {
    if rewrite.regexp.is_some() == rewrite.transform.is_some() {
        errs.push(p, "exactly one of regexp or transform must be set");
    }
    if let Some(regexp) = &rewrite.regexp {
        errs.regex(&format!("{p}.regexp.source"), &regexp.source);
    }
}

/// Collects violations; the helpers check one kind of value each.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    fn duration(&mut self, path: &str, value: &str) {
        if let Err(e) = parse_go_duration(value) {
            self.push(path, e.to_string());
        }
    }

    fn regex(&mut self, path: &str, value: &str) {
        if let Err(e) = regex::Regex::new(value) {
            // The syntax error's Display spans several lines (the pattern, a caret, the
            // reason); its last line is the reason.
            let text = e.to_string();
            let reason = text.lines().last().unwrap_or_default().trim();
            let reason = reason.strip_prefix("error: ").unwrap_or(reason);
            self.push(
                path,
                format!("invalid regular expression {value:?}: {reason}"),
            );
        }
    }

    /// `^[-._a-zA-Z0-9]+$`, at most 253 characters.
    fn secret_key(&mut self, path: &str, key: &str) {
        if key.is_empty() {
            self.push(path, "must not be empty");
        } else if key.len() > 253 {
            self.push(path, "must be at most 253 characters");
        } else if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            self.push(
                path,
                format!("{key:?} must consist of alphanumeric characters, '-', '_' or '.'"),
            );
        }
    }

    /// A DNS-1123 label: at most 63 lowercase alphanumerics or `-`, alphanumeric at both ends.
    fn dns_label(&mut self, path: &str, value: &str) {
        if value.len() > 63 || !is_dns_label(value) {
            self.push(
                path,
                format!(
                    "{value:?} is not a valid DNS-1123 label (at most 63 lowercase alphanumeric \
                     characters or '-', starting and ending with an alphanumeric character)"
                ),
            );
        }
    }

    /// A DNS-1123 subdomain: at most 253 characters, dot-separated labels.
    fn dns_subdomain(&mut self, path: &str, value: &str) {
        if value.len() > 253 || !value.split('.').all(is_dns_label) {
            self.push(
                path,
                format!(
                    "{value:?} is not a valid DNS-1123 subdomain (lowercase alphanumeric \
                     characters, '-' or '.', starting and ending with an alphanumeric character)"
                ),
            );
        }
    }

    fn label_selector(&mut self, path: &str, selector: &LabelSelector) {
        for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
            let req_path = format!("{path}.matchExpressions[{i}]");
            let values = req.values.as_deref().unwrap_or_default();
            match req.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => self.push(
                    &format!("{req_path}.values"),
                    format!("must be non-empty with operator {}", req.operator),
                ),
                "Exists" | "DoesNotExist" if !values.is_empty() => self.push(
                    &format!("{req_path}.values"),
                    format!("must be empty with operator {}", req.operator),
                ),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => self.push(
                    &format!("{req_path}.operator"),
                    format!("{other:?} is not one of In, NotIn, Exists or DoesNotExist"),
                ),
            }
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || c == '-')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn es(spec: serde_json::Value) -> ExternalSecretSpec {
        serde_json::from_value(spec).unwrap()
    }

    fn store(spec: serde_json::Value) -> SecretStoreSpec {
        serde_json::from_value(spec).unwrap()
    }

    fn push(spec: serde_json::Value) -> PushSecretSpec {
        serde_json::from_value(spec).unwrap()
    }

    /// The paths of the violations, for compact assertions.
    fn paths(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.path.as_str()).collect()
    }

    fn one_data() -> serde_json::Value {
        json!([{"secretKey": "password", "remoteRef": {"key": "db"}}])
    }

    fn fake_provider() -> serde_json::Value {
        json!({"fake": {"data": []}})
    }

    #[test]
    fn field_error_displays_path_then_message() {
        let e = FieldError::new("spec.data[0].secretKey", "must not be empty");
        assert_eq!(e.to_string(), "spec.data[0].secretKey: must not be empty");
    }

    #[test]
    fn minimal_external_secret_is_valid() {
        assert_eq!(
            validate_external_secret(&es(json!({"data": one_data()}))),
            []
        );
        let from = json!({"dataFrom": [{"extract": {"key": "db"}}]});
        assert_eq!(validate_external_secret(&es(from)), []);
    }

    #[test]
    fn external_secret_needs_data_or_data_from() {
        let errs = validate_external_secret(&es(json!({"target": {"name": "x"}})));
        assert_eq!(
            errs,
            [FieldError::new(
                "spec",
                "either data or dataFrom should be specified"
            )]
        );
    }

    #[test]
    fn data_from_entry_needs_a_source() {
        let errs = validate_external_secret(&es(json!({"dataFrom": [{"rewrite": [
            {"transform": {"template": "{{ .value }}"}}
        ]}]})));
        assert_eq!(paths(&errs), ["spec.dataFrom[0]"]);
        assert!(
            errs[0]
                .message
                .contains("either extract, find, or sourceRef")
        );
    }

    #[test]
    fn data_from_extract_find_and_generator_are_exclusive() {
        let spec = es(json!({"dataFrom": [
            {"extract": {"key": "a"}, "find": {"path": "p"}},
            {"find": {"path": "p"}, "sourceRef": {"generatorRef": {"kind": "Password", "name": "pw"}}},
            {"extract": {"key": "a"}, "sourceRef": {"storeRef": {"name": "other"}}},
        ]}));
        let errs = validate_external_secret(&spec);
        assert_eq!(paths(&errs), ["spec.dataFrom[0]", "spec.dataFrom[1]"]);
        assert!(
            errs.iter()
                .all(|e| e.message.contains("cannot be set at the same time"))
        );
    }

    #[test]
    fn source_ref_needs_store_or_generator() {
        let spec = es(json!({
            "data": [{"secretKey": "a", "remoteRef": {"key": "a"}, "sourceRef": {}}],
            "dataFrom": [
                {"sourceRef": {}},
                {"sourceRef": {"storeRef": {"name": "s"}, "generatorRef": {"kind": "UUID", "name": "u"}}},
            ],
        }));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.data[0].sourceRef",
                "spec.dataFrom[0].sourceRef",
                "spec.dataFrom[1].sourceRef"
            ]
        );
        assert!(
            errs[1]
                .message
                .contains("generatorRef or storeRef must be set")
        );
        assert!(errs[2].message.contains("only one of"));
    }

    #[test]
    fn delete_policy_needs_an_owned_secret() {
        for creation in ["Merge", "None", "CreateOrMerge"] {
            let spec = es(json!({"data": one_data(), "target": {
                "creationPolicy": creation, "deletionPolicy": "Delete"
            }}));
            let errs = validate_external_secret(&spec);
            assert_eq!(paths(&errs), ["spec.target.deletionPolicy"], "{creation}");
            assert!(errs[0].message.contains("deletionPolicy=Delete"));
        }
        for creation in ["Owner", "Orphan"] {
            let spec = es(json!({"data": one_data(), "target": {
                "creationPolicy": creation, "deletionPolicy": "Delete"
            }}));
            assert_eq!(validate_external_secret(&spec), [], "{creation}");
        }
        // Delete with the default creation policy (Owner) is fine.
        let spec = es(json!({"data": one_data(), "target": {"deletionPolicy": "Delete"}}));
        assert_eq!(validate_external_secret(&spec), []);
    }

    #[test]
    fn merge_deletion_policy_needs_a_secret() {
        let spec = es(json!({"data": one_data(), "target": {
            "creationPolicy": "None", "deletionPolicy": "Merge"
        }}));
        let errs = validate_external_secret(&spec);
        assert_eq!(paths(&errs), ["spec.target.deletionPolicy"]);
        assert!(errs[0].message.contains("deletionPolicy=Merge"));
        let spec = es(json!({"data": one_data(), "target": {
            "creationPolicy": "Merge", "deletionPolicy": "Merge"
        }}));
        assert_eq!(validate_external_secret(&spec), []);
    }

    #[test]
    fn duplicate_secret_keys_are_rejected_only_with_retain() {
        let data = json!([
            {"secretKey": "a", "remoteRef": {"key": "x"}},
            {"secretKey": "b", "remoteRef": {"key": "y"}},
            {"secretKey": "a", "remoteRef": {"key": "z"}},
        ]);
        let errs = validate_external_secret(&es(json!({"data": data})));
        assert_eq!(
            errs,
            [FieldError::new(
                "spec.data[2].secretKey",
                "duplicate secretKey found: a"
            )]
        );
        let explicit = es(json!({"data": data, "target": {"deletionPolicy": "Retain"}}));
        assert_eq!(validate_external_secret(&explicit).len(), 1);
        for policy in ["Delete", "Merge"] {
            let spec = es(json!({"data": data, "target": {"deletionPolicy": policy}}));
            assert_eq!(validate_external_secret(&spec), [], "{policy}");
        }
    }

    #[test]
    fn secret_key_pattern_and_length() {
        let long = "a".repeat(254);
        let spec = es(json!({"data": [
            {"secretKey": "ok-key_1.txt", "remoteRef": {"key": "x"}},
            {"secretKey": "has space", "remoteRef": {"key": "x"}},
            {"secretKey": "", "remoteRef": {"key": "x"}},
            {"secretKey": long, "remoteRef": {"key": "x"}},
            {"secretKey": "slash/no", "remoteRef": {"key": "x"}},
        ]}));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.data[1].secretKey",
                "spec.data[2].secretKey",
                "spec.data[3].secretKey",
                "spec.data[4].secretKey"
            ]
        );
        assert!(errs[2].message.contains("253"));
    }

    #[test]
    fn refresh_interval_must_be_a_go_duration() {
        for ok in ["1h", "0", "0s", "1h30m", "90s"] {
            let spec = es(json!({"data": one_data(), "refreshInterval": ok}));
            assert_eq!(validate_external_secret(&spec), [], "{ok}");
        }
        for bad in ["1 hour", "5", "-1m", ""] {
            let spec = es(json!({"data": one_data(), "refreshInterval": bad}));
            assert_eq!(
                paths(&validate_external_secret(&spec)),
                ["spec.refreshInterval"],
                "{bad}"
            );
        }
    }

    #[test]
    fn bootstrap_token_templates_are_rejected() {
        let spec = es(json!({"data": one_data(), "target": {"template": {
            "type": "bootstrap.kubernetes.io/token"
        }}}));
        let errs = validate_external_secret(&spec);
        assert_eq!(paths(&errs), ["spec.target.template.type"]);
    }

    #[test]
    fn service_account_token_templates_may_not_bind_a_service_account() {
        let spec = es(json!({"data": one_data(), "target": {"template": {
            "type": "kubernetes.io/service-account-token",
            "metadata": {"annotations": {"kubernetes.io/service-account.name": "admin"}},
            "templateFrom": [
                {"target": "annotations", "literal": "a: b"},
                {"target": "Data", "literal": "a: b"},
            ],
        }}}));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.target.template.metadata.annotations[kubernetes.io/service-account.name]",
                "spec.target.template.templateFrom[0].target"
            ]
        );
        // The same type without the annotation or an Annotations target is fine.
        let spec = es(json!({"data": one_data(), "target": {"template": {
            "type": "kubernetes.io/service-account-token",
            "metadata": {"annotations": {"team": "a"}},
            "templateFrom": [{"target": "Labels", "literal": "a: b"}],
        }}}));
        assert_eq!(validate_external_secret(&spec), []);
    }

    #[test]
    fn template_from_targets_are_limited_for_secret_targets() {
        let template = json!({"templateFrom": [
            {"target": "Data", "literal": "x"},
            {"target": "LABELS", "literal": "x"},
            {"target": "annotations", "literal": "x"},
            {"target": "", "literal": "x"},
            {"literal": "x"},
            {"target": "spec.database.config", "literal": "x"},
            {"target": "Type", "literal": "x"},
        ]});
        let spec = es(json!({"data": one_data(), "target": {"template": template}}));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.target.template.templateFrom[5].target",
                "spec.target.template.templateFrom[6].target"
            ]
        );
        // Generic targets take nested paths.
        let spec = es(json!({"data": one_data(), "target": {
            "template": template,
            "manifest": {"apiVersion": "v1", "kind": "ConfigMap"},
        }}));
        assert_eq!(validate_external_secret(&spec), []);
    }

    #[test]
    fn rewrite_needs_exactly_one_operation() {
        let spec = es(json!({"dataFrom": [{"find": {"path": "p"}, "rewrite": [
            {},
            {"regexp": {"source": "a", "target": "b"}, "transform": {"template": "x"}},
            {"merge": {}},
        ]}]}));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            ["spec.dataFrom[0].rewrite[0]", "spec.dataFrom[0].rewrite[1]"]
        );
    }

    #[test]
    fn rewrite_and_find_regexps_must_compile() {
        let spec = es(json!({"dataFrom": [{
            "find": {"name": {"regexp": "^db-(.*"}},
            "rewrite": [
                {"regexp": {"source": "^db-(?P<rest>.*)$", "target": "${rest}"}},
                {"regexp": {"source": "[unclosed", "target": "x"}},
            ],
        }]}));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.dataFrom[0].find.name.regexp",
                "spec.dataFrom[0].rewrite[1].regexp.source"
            ]
        );
        assert!(errs[0].message.starts_with("invalid regular expression"));
        assert!(!errs[0].message.contains('\n'));
    }

    #[test]
    fn json_merge_needs_into() {
        let spec = es(json!({"dataFrom": [{"find": {"path": "p"}, "rewrite": [
            {"merge": {"strategy": "JSON"}},
            {"merge": {"strategy": "JSON", "into": "config.json"}},
            {"merge": {"strategy": "Extract"}},
        ]}]}));
        let errs = validate_external_secret(&spec);
        assert_eq!(paths(&errs), ["spec.dataFrom[0].rewrite[0].merge.into"]);
    }

    #[test]
    fn names_must_be_dns_subdomains() {
        let spec = es(json!({
            "data": one_data(),
            "secretStoreRef": {"name": "Bad_Store"},
            "target": {"name": "-bad"},
        }));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            ["spec.secretStoreRef.name", "spec.target.name"]
        );
        let spec = es(json!({
            "data": one_data(),
            "secretStoreRef": {"name": "vault.prod"},
            "target": {"name": "db-credentials"},
        }));
        assert_eq!(validate_external_secret(&spec), []);
    }

    #[test]
    fn sync_windows_need_a_schedule_and_duration() {
        let spec = es(
            json!({"data": one_data(), "syncWindows": {"kind": "deny", "windows": [
                {"schedule": "0 22 * * 1-5", "duration": "8h"},
                {"schedule": "@daily", "duration": "1h"},
                {"schedule": "@every 6h", "duration": "10m"},
                {"schedule": "0 22 * *", "duration": "8h"},
                {"schedule": "@sometimes", "duration": "eight hours"},
            ]}}),
        );
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.syncWindows.windows[3].schedule",
                "spec.syncWindows.windows[4].schedule",
                "spec.syncWindows.windows[4].duration"
            ]
        );
        let empty = es(json!({"data": one_data(), "syncWindows": {"kind": "allow"}}));
        assert_eq!(
            paths(&validate_external_secret(&empty)),
            ["spec.syncWindows.windows"]
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let spec = es(json!({
            "refreshInterval": "soon",
            "target": {"creationPolicy": "None", "deletionPolicy": "Delete",
                       "template": {"type": "bootstrap.kubernetes.io/token"}},
            "data": [
                {"secretKey": "a b", "remoteRef": {"key": "x"}},
            ],
            "dataFrom": [{}],
        }));
        let errs = validate_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.refreshInterval",
                "spec.target.deletionPolicy",
                "spec.target.template.type",
                "spec.data[0].secretKey",
                "spec.dataFrom[0]"
            ]
        );
    }

    #[test]
    fn cluster_external_secret_checks_its_embedded_spec_and_own_fields() {
        let spec: ClusterExternalSecretSpec = serde_json::from_value(json!({
            "externalSecretSpec": {},
            "externalSecretName": "Not_Valid",
            "namespaces": ["team-a", "Team_B"],
            "namespaceSelectors": [{"matchExpressions": [
                {"key": "env", "operator": "In"},
                {"key": "env", "operator": "Exists", "values": ["x"]},
                {"key": "env", "operator": "Near", "values": ["x"]},
            ]}],
            "namespaceSelector": {"matchLabels": {"a": "b"}},
            "refreshTime": "1 minute",
        }))
        .unwrap();
        let errs = validate_cluster_external_secret(&spec);
        assert_eq!(
            paths(&errs),
            [
                "spec.externalSecretSpec",
                "spec.externalSecretName",
                "spec.namespaceSelectors[0].matchExpressions[0].values",
                "spec.namespaceSelectors[0].matchExpressions[1].values",
                "spec.namespaceSelectors[0].matchExpressions[2].operator",
                "spec.namespaces[1]",
                "spec.refreshTime"
            ]
        );
        let ok: ClusterExternalSecretSpec = serde_json::from_value(json!({
            "externalSecretSpec": {"data": one_data()},
            "namespaceSelectors": [{"matchLabels": {"team": "a"}}],
            "refreshTime": "1m",
        }))
        .unwrap();
        assert_eq!(validate_cluster_external_secret(&ok), []);
    }

    #[test]
    fn store_needs_exactly_one_provider() {
        assert_eq!(
            validate_secret_store(&store(json!({"provider": fake_provider()})), false),
            []
        );
        let none = validate_secret_store(&store(json!({"provider": {}})), false);
        assert_eq!(
            none,
            [FieldError::new(
                "spec.provider",
                "exactly one provider must be set, found none"
            )]
        );
        let two = store(json!({"provider": {
            "fake": {"data": []},
            "akeyless": {"akeylessGWApiURL": "https://akeyless"},
        }}));
        let errs = validate_secret_store(&two, true);
        assert_eq!(
            errs,
            [FieldError::new(
                "spec.provider",
                "exactly one provider must be set, found 2: fake, akeyless"
            )]
        );
        // An unknown provider alone is a valid store; support is decided elsewhere.
        let unknown =
            store(json!({"provider": {"akeyless": {"akeylessGWApiURL": "https://akeyless"}}}));
        assert_eq!(validate_secret_store(&unknown, false), []);
    }

    #[test]
    fn store_refresh_interval_is_seconds_or_a_duration() {
        for ok in [json!(300), json!(0), json!("5m"), json!("0"), json!("")] {
            let spec = store(json!({"provider": fake_provider(), "refreshInterval": ok}));
            assert_eq!(validate_secret_store(&spec, false), [], "{ok}");
        }
        for bad in [json!(-1), json!("-5m"), json!("300"), json!("often")] {
            let spec = store(json!({"provider": fake_provider(), "refreshInterval": bad}));
            assert_eq!(
                paths(&validate_secret_store(&spec, false)),
                ["spec.refreshInterval"],
                "{bad}"
            );
        }
    }

    #[test]
    fn store_retry_interval_is_a_duration() {
        let spec = store(json!({"provider": fake_provider(),
            "retrySettings": {"maxRetries": 3, "retryInterval": "ten seconds"}}));
        assert_eq!(
            paths(&validate_secret_store(&spec, false)),
            ["spec.retrySettings.retryInterval"]
        );
    }

    #[test]
    fn store_condition_regexes_and_namespaces_are_checked() {
        let spec = store(json!({"provider": fake_provider(), "conditions": [
            {"namespaceRegexes": ["^team-.*$", "(unclosed"]},
            {"namespaces": ["ok", "NOT_OK"],
             "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "NotIn"}]}},
        ]}));
        let errs = validate_secret_store(&spec, true);
        assert_eq!(
            paths(&errs),
            [
                "spec.conditions[0].namespaceRegexes[1]",
                "spec.conditions[1].namespaceSelector.matchExpressions[0].values",
                "spec.conditions[1].namespaces[1]"
            ]
        );
    }

    #[test]
    fn conditions_on_a_namespaced_store_are_a_warning_not_an_error() {
        let spec = store(json!({"provider": fake_provider(),
            "conditions": [{"namespaces": ["a"]}]}));
        assert_eq!(validate_secret_store(&spec, false), []);
        assert_eq!(
            paths(&secret_store_warnings(&spec, false)),
            ["spec.conditions"]
        );
        assert_eq!(secret_store_warnings(&spec, true), []);
    }

    #[test]
    fn ca_provider_namespace_needs_a_cluster_store() {
        let spec = store(json!({"provider": {"vault": {
            "server": "https://vault:8200",
            "caProvider": {"type": "Secret", "name": "ca", "namespace": "vault"},
        }}}));
        assert_eq!(
            paths(&validate_secret_store(&spec, false)),
            ["spec.provider.vault.caProvider.namespace"]
        );
        assert_eq!(validate_secret_store(&spec, true), []);
    }

    #[test]
    fn provider_auth_takes_one_method() {
        let vault = store(
            json!({"provider": {"openBao": {"server": "https://bao", "auth": {
                "tokenSecretRef": {"name": "t", "key": "token"},
                "userPass": {"username": "u"},
            }}}}),
        );
        let errs = validate_secret_store(&vault, false);
        assert_eq!(
            errs,
            [FieldError::new(
                "spec.provider.openBao.auth",
                "only one auth method may be set, found tokenSecretRef, userPass"
            )]
        );
        let k8s = store(json!({"provider": {"kubernetes": {"auth": {
            "token": {"bearerToken": {"name": "t", "key": "token"}},
            "serviceAccount": {"name": "sa"},
        }}}}));
        assert_eq!(
            paths(&validate_secret_store(&k8s, false)),
            ["spec.provider.kubernetes.auth"]
        );
        let webhook = store(json!({"provider": {"webhook": {
            "url": "http://x", "auth": {}, "timeout": "5 seconds",
        }}}));
        assert_eq!(
            paths(&validate_secret_store(&webhook, false)),
            [
                "spec.provider.webhook.auth",
                "spec.provider.webhook.timeout"
            ]
        );
    }

    fn push_ok() -> serde_json::Value {
        json!({
            "secretStoreRefs": [{"name": "vault"}],
            "selector": {"secret": {"name": "source"}},
            "data": [{"match": {"secretKey": "a", "remoteRef": {"remoteKey": "path/a"}}}],
        })
    }

    #[test]
    fn minimal_push_secret_is_valid() {
        assert_eq!(validate_push_secret(&push(push_ok())), []);
    }

    #[test]
    fn push_secret_selector_takes_exactly_one_source() {
        let mut both = push_ok();
        both["selector"] = json!({"secret": {"name": "s"},
            "generatorRef": {"kind": "Password", "name": "pw"}});
        assert_eq!(paths(&validate_push_secret(&push(both))), ["spec.selector"]);
        let mut none = push_ok();
        none["selector"] = json!({});
        assert_eq!(paths(&validate_push_secret(&push(none))), ["spec.selector"]);
        let mut empty_secret = push_ok();
        empty_secret["selector"] = json!({"secret": {}});
        assert_eq!(
            paths(&validate_push_secret(&push(empty_secret))),
            ["spec.selector.secret"]
        );
    }

    #[test]
    fn push_secret_store_refs_need_a_name_or_selector() {
        let mut spec = push_ok();
        spec["secretStoreRefs"] = json!([{"kind": "ClusterSecretStore"}, {"name": "Bad Name"}]);
        assert_eq!(
            paths(&validate_push_secret(&push(spec))),
            ["spec.secretStoreRefs[0]", "spec.secretStoreRefs[1].name"]
        );
    }

    #[test]
    fn push_secret_interval_and_remote_keys() {
        let mut spec = push_ok();
        spec["refreshInterval"] = json!("hourly");
        spec["data"] = json!([{"match": {"remoteRef": {"remoteKey": ""}}}]);
        assert_eq!(
            paths(&validate_push_secret(&push(spec))),
            [
                "spec.refreshInterval",
                "spec.data[0].match.remoteRef.remoteKey"
            ]
        );
    }

    #[test]
    fn push_secret_data_to_rules() {
        let mut spec = push_ok();
        spec["dataTo"] = json!([
            {"storeRef": {"name": "s"}, "match": {"regexp": "^DB_"}, "rewrite": [
                {"regexp": {"source": "^DB_", "target": "db/"}},
                {"transform": {"template": "{{ .value | lower }}"}},
            ]},
            {"remoteKey": "bundle", "rewrite": [{"transform": {"template": "x"}}]},
            {"storeRef": {"kind": "SecretStore"}, "match": {"regexp": "(["}},
            {"storeRef": {"labelSelector": {"matchLabels": {"a": "b"}}}, "rewrite": [
                {},
                {"regexp": {"source": "(", "target": ""}, "transform": {"template": "x"}},
            ]},
        ]);
        let errs = validate_push_secret(&push(spec));
        assert_eq!(
            paths(&errs),
            [
                "spec.dataTo[1].storeRef",
                "spec.dataTo[1]",
                "spec.dataTo[2].storeRef",
                "spec.dataTo[2].match.regexp",
                "spec.dataTo[3].rewrite[0]",
                "spec.dataTo[3].rewrite[1]",
                "spec.dataTo[3].rewrite[1].regexp.source"
            ]
        );
        assert!(errs[1].message.contains("mutually exclusive"));
    }

    #[test]
    fn cluster_push_secret_checks_its_embedded_spec_and_own_fields() {
        let mut inner = push_ok();
        inner["refreshInterval"] = json!("x");
        let spec: ClusterPushSecretSpec = serde_json::from_value(json!({
            "pushSecretSpec": inner,
            "pushSecretName": "UPPER",
            "refreshTime": "nope",
            "namespaceSelectors": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}],
        }))
        .unwrap();
        assert_eq!(
            paths(&validate_cluster_push_secret(&spec)),
            [
                "spec.pushSecretSpec.refreshInterval",
                "spec.pushSecretName",
                "spec.refreshTime"
            ]
        );
    }

    #[test]
    fn dns_helpers_follow_rfc_1123() {
        assert!(is_dns_label("a"));
        assert!(is_dns_label("team-a1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(""));
        let mut errs = Errors::default();
        errs.dns_label("x", &"a".repeat(64));
        errs.dns_subdomain("y", "a..b");
        errs.dns_subdomain("z", &"a".repeat(254));
        assert_eq!(paths(&errs.0), ["x", "y", "z"]);
    }
}
