//! Applying `spec.target.template` to the target Secret, in upstream's order and precedence
//! (`ApplyTemplate`): the template's type; the fetched data copied when `mergePolicy: Merge` or
//! when the template renders no data; `templateFrom` entries in order (ConfigMap, Secret,
//! literal), into Data, Annotations or Labels; `template.data`, which wins; then the
//! template's labels and annotations, rendered as templates. Also `rewrite.transform`.
//!
//! Pure: the referenced ConfigMaps and Secrets are read by fetch and passed in.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use eso_api::{
    DecodingStrategy, ExternalSecret, ExternalSecretTemplate, TemplateMergePolicy, TemplateScope,
};
use eso_provider::convert::decode_value;
use eso_provider::rewrite::KeyTransformer;
use eso_template::{ExecOptions, ParseOptions, Template, Value};

/// The contents of the ConfigMaps and Secrets a template refers to, by name (in the
/// ExternalSecret's namespace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateSources {
    /// ConfigMap name -> data.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret name -> data.
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

/// Why a template could not be applied, and whether fixing it needs a change to the
/// ExternalSecret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateFailure {
    /// What failed, naming the template field.
    pub message: String,
    /// Where the fault lies.
    pub cause: TemplateCause,
}

/// Where a template fault lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateCause {
    /// The ExternalSecret's own template text or settings: only a change to it can help.
    Spec,
    /// The data it was rendered on, or a ConfigMap or Secret it reads: fixing those (without
    /// touching the ExternalSecret) can help, so it is retried.
    Data,
}

impl TemplateFailure {
    fn spec(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            cause: TemplateCause::Spec,
        }
    }

    fn data(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            cause: TemplateCause::Data,
        }
    }
}

/// How templates are rendered: the parse cache and the clock and randomness they see.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions<'a> {
    /// Parsed templates to reuse.
    pub cache: Option<&'a TemplateCache>,
    /// The clock (`now`, certificate validity) and random source (`randAlphaNum`, ...).
    pub exec: &'a ExecOptions,
}

/// The parts of the target Secret a template decides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetParts {
    /// The data.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Labels (without upstream's markers).
    pub labels: BTreeMap<String, String>,
    /// Annotations (without the data hash).
    pub annotations: BTreeMap<String, String>,
    /// The type, if the template sets one.
    pub type_: Option<String>,
    /// Finalizers the template adds.
    pub finalizers: Vec<String>,
}

/// Parsed templates, keyed by (field name, text), so a steady-state refresh does not parse
/// again; identical templates of many ExternalSecrets (a ClusterExternalSecret's fan-out)
/// share one entry. Bounded: when full it starts over.
#[derive(Debug, Default)]
pub struct TemplateCache {
    entries: Mutex<HashMap<(String, String), Arc<Template>>>,
    parses: AtomicU64,
}

/// How many parsed templates the cache keeps at most.
const TEMPLATE_CACHE_CAPACITY: usize = 8192;

impl TemplateCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide cache the plan uses.
    #[must_use]
    pub fn global() -> &'static TemplateCache {
        static GLOBAL: std::sync::LazyLock<TemplateCache> =
            std::sync::LazyLock::new(TemplateCache::new);
        &GLOBAL
    }

    /// How many times a template was parsed (cache misses).
    #[must_use]
    pub fn parses(&self) -> u64 {
        self.parses.load(Ordering::Relaxed)
    }

    fn get(&self, name: &str, text: &str) -> Result<Arc<Template>, String> {
        let key = (name.to_owned(), text.to_owned());
        if let Some(t) = self.entries.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return Ok(t);
        }
        self.parses.fetch_add(1, Ordering::Relaxed);
        let parsed = Arc::new(parse(name, text)?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= TEMPLATE_CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(key, parsed.clone());
        }
        Ok(parsed)
    }
}

fn parse(name: &str, text: &str) -> Result<Template, String> {
    Template::parse(name, text, &ParseOptions::default()).map_err(|e| e.to_string())
}

struct Renderer<'a> {
    options: RenderOptions<'a>,
}

impl Renderer<'_> {
    /// Parses (through the cache) and runs a template. A parse error is blamed on `origin`;
    /// an execution error on the data.
    fn render(
        &self,
        name: &str,
        text: &str,
        data: &Value,
        origin: TemplateCause,
    ) -> Result<Vec<u8>, TemplateFailure> {
        let parsed = match self.options.cache {
            Some(cache) => cache.get(name, text),
            None => parse(name, text).map(Arc::new),
        };
        let template = parsed.map_err(|message| TemplateFailure {
            message,
            cause: origin,
        })?;
        template
            .execute_with(data, self.options.exec)
            .map_err(|e| TemplateFailure::data(e.to_string()))
    }

    fn render_text(
        &self,
        name: &str,
        text: &str,
        data: &Value,
        origin: TemplateCause,
    ) -> Result<String, TemplateFailure> {
        let out = self.render(name, text, data, origin)?;
        String::from_utf8(out).map_err(|_| {
            TemplateFailure::data(format!("{name}: the rendered value is not UTF-8 text"))
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Data,
    Annotations,
    Labels,
}

fn parse_target(value: Option<&str>, field: &str) -> Result<Target, TemplateFailure> {
    match value.unwrap_or("Data").to_ascii_lowercase().as_str() {
        "" | "data" => Ok(Target::Data),
        "annotations" => Ok(Target::Annotations),
        "labels" => Ok(Target::Labels),
        other => Err(TemplateFailure::spec(format!(
            "{field}.target: {other:?} is not Data, Annotations or Labels"
        ))),
    }
}

fn write(
    parts: &mut TargetParts,
    target: Target,
    key: String,
    value: Vec<u8>,
    field: &str,
) -> Result<(), TemplateFailure> {
    match target {
        Target::Data => {
            parts.data.insert(key, value);
        }
        Target::Annotations | Target::Labels => {
            let text = String::from_utf8(value).map_err(|_| {
                TemplateFailure::data(format!("{field}: value of {key:?} is not text"))
            })?;
            if target == Target::Labels {
                parts.labels.insert(key, text);
            } else {
                parts.annotations.insert(key, text);
            }
        }
    }
    Ok(())
}

/// Writes a `KeysAndValues` output: YAML holding a map of strings.
fn write_pairs(
    parts: &mut TargetParts,
    target: Target,
    rendered: &[u8],
    decoding: DecodingStrategy,
    field: &str,
) -> Result<(), TemplateFailure> {
    let text = std::str::from_utf8(rendered)
        .map_err(|_| TemplateFailure::data(format!("{field}: the rendered text is not UTF-8")))?;
    let pairs: BTreeMap<String, String> = if text.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            TemplateFailure::data(format!(
                "{field}: the rendered text is not a YAML map of strings: {e}"
            ))
        })?
    };
    for (k, v) in pairs {
        let value = decode_value(decoding, &k, v.into_bytes())
            .map_err(|e| TemplateFailure::data(format!("{field}: {}", e.chain())))?;
        write(parts, target, k, value, field)?;
    }
    Ok(())
}

/// Renders the items of one templateFrom ConfigMap or Secret into the target parts.
struct ItemWriter<'a, 'b> {
    renderer: &'a Renderer<'b>,
    data: &'a Value,
    parts: &'a mut TargetParts,
    target: Target,
    decoding: DecodingStrategy,
}

impl ItemWriter<'_, '_> {
    /// `kind` names the source in upstream's missing-key message (`configmap`, `secret`).
    fn write_all<'c>(
        &mut self,
        field: &str,
        kind: &str,
        source: &eso_api::TemplateRef,
        get: impl Fn(&str) -> Option<&'c [u8]>,
    ) -> Result<(), TemplateFailure> {
        for item in &source.items {
            let raw = get(&item.key).ok_or_else(|| {
                TemplateFailure::data(format!(
                    "error in {kind} {}: missing key {}",
                    source.name, item.key
                ))
            })?;
            let name = format!("{field}[{}]", item.key);
            let text = std::str::from_utf8(raw).map_err(|_| {
                TemplateFailure::data(format!("{name}: the template is not UTF-8 text"))
            })?;
            // The template text lives in the ConfigMap or Secret, not in the ExternalSecret.
            let rendered = self
                .renderer
                .render(&name, text, self.data, TemplateCause::Data)?;
            match item.template_as.unwrap_or_default() {
                TemplateScope::Values => {
                    let value = decode_value(self.decoding, &item.key, rendered)
                        .map_err(|e| TemplateFailure::data(format!("{name}: {}", e.chain())))?;
                    write(self.parts, self.target, item.key.clone(), value, &name)?;
                }
                TemplateScope::KeysAndValues => {
                    write_pairs(self.parts, self.target, &rendered, self.decoding, &name)?;
                }
            }
        }
        Ok(())
    }
}

/// Applies the template to the fetched data: the data keys, labels, annotations, type and
/// finalizers this ExternalSecret writes (what the target already holds is the plan's
/// business).
pub fn apply_template(
    template: &ExternalSecretTemplate,
    fetched: &BTreeMap<String, Vec<u8>>,
    sources: &TemplateSources,
    options: RenderOptions<'_>,
) -> Result<TargetParts, TemplateFailure> {
    let renderer = Renderer { options };
    let data = Value::from_bytes_map(fetched);
    let mut parts = TargetParts {
        type_: template.type_.clone(),
        ..TargetParts::default()
    };
    if template.merge_policy() == TemplateMergePolicy::Merge
        || (template.data.is_empty() && template.template_from.is_empty())
    {
        parts
            .data
            .extend(fetched.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for (i, from) in template.template_from.iter().enumerate() {
        let field = format!("spec.target.template.templateFrom[{i}]");
        let target = parse_target(from.target.as_deref(), &field)?;
        let decoding = from.values_decoding_strategy.unwrap_or_default();
        let mut items = ItemWriter {
            renderer: &renderer,
            data: &data,
            parts: &mut parts,
            target,
            decoding,
        };
        if let Some(cm) = &from.config_map {
            let cm_field = format!("{field}.configMap");
            let contents = sources.config_maps.get(&cm.name).ok_or_else(|| {
                TemplateFailure::data(format!("{cm_field}: ConfigMap {:?} not found", cm.name))
            })?;
            items.write_all(&cm_field, "configmap", cm, |k| {
                contents.get(k).map(String::as_bytes)
            })?;
        }
        if let Some(secret) = &from.secret {
            let s_field = format!("{field}.secret");
            let contents = sources.secrets.get(&secret.name).ok_or_else(|| {
                TemplateFailure::data(format!("{s_field}: Secret {:?} not found", secret.name))
            })?;
            items.write_all(&s_field, "secret", secret, |k| {
                contents.get(k).map(Vec::as_slice)
            })?;
        }
        if let Some(literal) = &from.literal {
            let name = format!("{field}.literal");
            let rendered = renderer.render(&name, literal, &data, TemplateCause::Spec)?;
            write_pairs(&mut parts, target, &rendered, decoding, &name)?;
        }
    }
    for (key, text) in &template.data {
        let name = format!("spec.target.template.data[{key}]");
        parts.data.insert(
            key.clone(),
            renderer.render(&name, text, &data, TemplateCause::Spec)?,
        );
    }
    if let Some(meta) = &template.metadata {
        for (key, text) in &meta.labels {
            let name = format!("spec.target.template.metadata.labels[{key}]");
            parts.labels.insert(
                key.clone(),
                renderer.render_text(&name, text, &data, TemplateCause::Spec)?,
            );
        }
        for (key, text) in &meta.annotations {
            let name = format!("spec.target.template.metadata.annotations[{key}]");
            parts.annotations.insert(
                key.clone(),
                renderer.render_text(&name, text, &data, TemplateCause::Spec)?,
            );
        }
        parts.finalizers = meta.finalizers.clone();
    }
    Ok(parts)
}

/// The target parts without a template: the fetched data, and the ExternalSecret's own labels
/// and annotations.
#[must_use]
pub fn without_template(es: &ExternalSecret, fetched: &BTreeMap<String, Vec<u8>>) -> TargetParts {
    TargetParts {
        data: fetched.clone(),
        labels: es.metadata.labels.clone().unwrap_or_default(),
        annotations: es.metadata.annotations.clone().unwrap_or_default(),
        type_: None,
        finalizers: Vec::new(),
    }
}

/// `rewrite.transform` through the Go template engine, with the key as `.value`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoTemplates;

impl KeyTransformer for GoTemplates {
    fn transform(&self, template: &str, key: &str) -> Result<String, String> {
        let data = Value::from_string_map(BTreeMap::from([("value", key.as_bytes())]));
        let exec = ExecOptions::default();
        let renderer = Renderer {
            options: RenderOptions {
                cache: None,
                exec: &exec,
            },
        };
        renderer
            .render_text("rewrite.transform", template, &data, TemplateCause::Spec)
            .map_err(|e| e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bytes;
    use eso_api::{ExternalSecretTemplateMetadata, TemplateFrom, TemplateRef, TemplateRefItem};

    const EXEC: ExecOptions = ExecOptions {
        seed: None,
        now: None,
    };

    fn opts() -> RenderOptions<'static> {
        RenderOptions {
            cache: None,
            exec: &EXEC,
        }
    }

    fn tmpl(data: &[(&str, &str)]) -> ExternalSecretTemplate {
        ExternalSecretTemplate {
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn template_data_replaces_fetched_data_by_default() {
        let t = tmpl(&[("dsn", "postgres://{{ .user }}:{{ .password }}@db")]);
        let out = apply_template(
            &t,
            &bytes(&[("user", "app"), ("password", "pw")]),
            &TemplateSources::default(),
            opts(),
        )
        .unwrap();
        assert_eq!(out.data, bytes(&[("dsn", "postgres://app:pw@db")]));
    }

    #[test]
    fn merge_policy_keeps_fetched_data_under_the_template() {
        let mut t = tmpl(&[("user", "{{ .user | upper }}")]);
        t.merge_policy = Some(TemplateMergePolicy::Merge);
        let out = apply_template(
            &t,
            &bytes(&[("user", "app"), ("password", "pw")]),
            &TemplateSources::default(),
            opts(),
        )
        .unwrap();
        assert_eq!(out.data, bytes(&[("password", "pw"), ("user", "APP")]));
    }

    #[test]
    fn a_metadata_only_template_keeps_the_data() {
        let t = ExternalSecretTemplate {
            type_: Some("kubernetes.io/basic-auth".into()),
            metadata: Some(ExternalSecretTemplateMetadata {
                labels: [("owner".to_owned(), "{{ .user }}".to_owned())].into(),
                annotations: [("a".to_owned(), "static".to_owned())].into(),
                finalizers: vec!["example.com/keep".into()],
            }),
            ..Default::default()
        };
        let out = apply_template(
            &t,
            &bytes(&[("user", "app")]),
            &TemplateSources::default(),
            opts(),
        )
        .unwrap();
        assert_eq!(out.data, bytes(&[("user", "app")]));
        assert_eq!(out.labels["owner"], "app");
        assert_eq!(out.annotations["a"], "static");
        assert_eq!(out.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(out.finalizers, ["example.com/keep"]);
    }

    fn from_cm(name: &str, key: &str, scope: TemplateScope, target: Option<&str>) -> TemplateFrom {
        TemplateFrom {
            config_map: Some(TemplateRef {
                name: name.into(),
                items: vec![TemplateRefItem {
                    key: key.into(),
                    template_as: Some(scope),
                }],
            }),
            target: target.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn template_from_config_maps_secrets_and_literals_in_order_with_data_winning() {
        let mut sources = TemplateSources::default();
        sources.config_maps.insert(
            "tpl".into(),
            [
                ("config.yaml".to_owned(), "user: {{ .user }}".to_owned()),
                ("pairs".to_owned(), "a: '1'\nb: '{{ .user }}'".to_owned()),
            ]
            .into(),
        );
        sources.secrets.insert(
            "stpl".into(),
            [("s".to_owned(), b"secret-{{ .user }}".to_vec())].into(),
        );
        let mut t = tmpl(&[("b", "from-data")]);
        t.template_from = vec![
            from_cm("tpl", "config.yaml", TemplateScope::Values, None),
            from_cm("tpl", "pairs", TemplateScope::KeysAndValues, Some("data")),
            TemplateFrom {
                secret: Some(TemplateRef {
                    name: "stpl".into(),
                    items: vec![TemplateRefItem {
                        key: "s".into(),
                        template_as: None,
                    }],
                }),
                ..Default::default()
            },
            TemplateFrom {
                literal: Some("lit: '{{ .user }}'".into()),
                target: Some("Annotations".into()),
                ..Default::default()
            },
            TemplateFrom {
                literal: Some("team: core".into()),
                target: Some("labels".into()),
                ..Default::default()
            },
        ];
        let out = apply_template(&t, &bytes(&[("user", "app")]), &sources, opts()).unwrap();
        assert_eq!(
            out.data,
            bytes(&[
                ("a", "1"),
                ("b", "from-data"),
                ("config.yaml", "user: app"),
                ("s", "secret-app")
            ])
        );
        assert_eq!(out.annotations["lit"], "app");
        assert_eq!(out.labels["team"], "core");
    }

    #[test]
    fn values_decoding_strategy_applies_to_rendered_values() {
        let mut t = tmpl(&[]);
        t.template_from = vec![TemplateFrom {
            literal: Some("bin: '{{ .v | b64enc }}'".into()),
            values_decoding_strategy: Some(DecodingStrategy::Base64),
            ..Default::default()
        }];
        let out = apply_template(
            &t,
            &bytes(&[("v", "raw")]),
            &TemplateSources::default(),
            opts(),
        )
        .unwrap();
        assert_eq!(out.data, bytes(&[("bin", "raw")]));
    }

    #[test]
    fn errors_name_the_field_and_say_whether_the_spec_is_at_fault() {
        let t = tmpl(&[("x", "{{ .missing }}")]);
        let err = apply_template(
            &t,
            &bytes(&[("user", "app")]),
            &TemplateSources::default(),
            opts(),
        )
        .unwrap_err();
        assert!(
            err.message.contains("spec.target.template.data[x]") && err.message.contains("missing"),
            "{err}"
        );
        // The next provider data may hold the key.
        assert_eq!(err.cause, TemplateCause::Data);
        let t = tmpl(&[("x", "{{ if }}")]);
        let err =
            apply_template(&t, &BTreeMap::new(), &TemplateSources::default(), opts()).unwrap_err();
        assert!(
            err.message.contains("spec.target.template.data[x]:1:"),
            "{err}"
        );
        assert_eq!(err.cause, TemplateCause::Spec);
        let mut t = tmpl(&[]);
        t.template_from = vec![from_cm("nope", "k", TemplateScope::Values, None)];
        let err =
            apply_template(&t, &BTreeMap::new(), &TemplateSources::default(), opts()).unwrap_err();
        assert!(
            err.message.contains("ConfigMap \"nope\" not found"),
            "{err}"
        );
        assert_eq!(err.cause, TemplateCause::Data);
        let mut sources = TemplateSources::default();
        sources.config_maps.insert("tpl".into(), BTreeMap::new());
        t.template_from = vec![from_cm("tpl", "k", TemplateScope::Values, None)];
        assert_eq!(
            apply_template(&t, &BTreeMap::new(), &sources, opts()).unwrap_err(),
            TemplateFailure::data("error in configmap tpl: missing key k")
        );
        // A ConfigMap's template that does not parse is fixed in the ConfigMap.
        sources.config_maps.insert(
            "tpl".into(),
            BTreeMap::from([("k".into(), "{{ if }}".into())]),
        );
        assert_eq!(
            apply_template(&t, &BTreeMap::new(), &sources, opts())
                .unwrap_err()
                .cause,
            TemplateCause::Data
        );
        t.template_from = vec![TemplateFrom {
            literal: Some("a: b".into()),
            target: Some("Spec".into()),
            ..Default::default()
        }];
        let err = apply_template(&t, &BTreeMap::new(), &sources, opts()).unwrap_err();
        assert!(
            err.message.contains("not Data, Annotations or Labels"),
            "{err}"
        );
        assert_eq!(err.cause, TemplateCause::Spec);
    }

    #[test]
    fn transform_renders_keys() {
        assert_eq!(
            GoTemplates
                .transform("{{ .value | upper }}", "db-pass")
                .unwrap(),
            "DB-PASS"
        );
        assert!(GoTemplates.transform("{{ .nope }}", "k").is_err());
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::testing::bytes;

    #[test]
    fn a_steady_state_render_does_not_parse_again() {
        let cache = TemplateCache::new();
        let mut t = ExternalSecretTemplate::default();
        t.data.insert("dsn".into(), "{{ .user }}@db".into());
        t.data.insert("static".into(), "x".into());
        let exec = ExecOptions::default();
        for _ in 0..3 {
            let out = apply_template(
                &t,
                &bytes(&[("user", "app")]),
                &TemplateSources::default(),
                RenderOptions {
                    cache: Some(&cache),
                    exec: &exec,
                },
            )
            .unwrap();
            assert_eq!(out.data["dsn"], b"app@db");
        }
        assert_eq!(cache.parses(), 2);
    }
}
