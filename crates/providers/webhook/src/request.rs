//! The templated parts of a webhook call (`url`, `body`, `headers`, `result.jsonPath`) and the
//! data they are rendered with, as upstream's `pkg/common/webhook` builds it: a map of maps,
//! `.remoteRef.{key,property,version}` plus one entry per `secrets[]` name holding that
//! Secret's keys.

use std::collections::BTreeMap;

use eso_provider::{ProviderError, SecretData};
use eso_template::{MissingKey, ParseOptions, Template, Value};

/// Every template of a store, parsed once when the client is built.
#[derive(Debug, Clone)]
pub(crate) struct Templates {
    pub(crate) url: Template,
    pub(crate) body: Option<Template>,
    pub(crate) headers: Vec<(String, Template)>,
    pub(crate) json_path: Option<Template>,
}

fn options() -> ParseOptions {
    // Upstream parses with Go's defaults (`missingkey=default`): a missing key prints
    // `<no value>` rather than failing.
    ParseOptions::default().missing_key(MissingKey::Invalid)
}

fn parse(name: &str, text: &str, field: &str) -> Result<Template, ProviderError> {
    Template::parse(name, text, &options()).map_err(|e| {
        ProviderError::invalid_store(format!("{field} is not a valid template")).with_source(e)
    })
}

impl Templates {
    /// Parses the store's templates. `field` is the spec path used in messages.
    pub(crate) fn parse(
        spec: &eso_api::provider::WebhookProvider,
        field: &str,
    ) -> Result<Self, ProviderError> {
        let url = parse("url", &spec.url, &format!("{field}.url"))?;
        let body = match spec.body.as_deref().filter(|b| !b.is_empty()) {
            Some(b) => Some(parse("body", b, &format!("{field}.body"))?),
            None => None,
        };
        let headers = spec
            .headers
            .iter()
            .map(|(name, value)| {
                parse(name, value, &format!("{field}.headers[{name:?}]")).map(|t| (name.clone(), t))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let json_path = match spec
            .result
            .as_ref()
            .and_then(|r| r.json_path.as_deref())
            .filter(|p| !p.is_empty())
        {
            Some(p) => Some(parse("jsonPath", p, &format!("{field}.result.jsonPath"))?),
            None => None,
        };
        Ok(Self {
            url,
            body,
            headers,
            json_path,
        })
    }
}

/// Renders one template to text. `what` names the template in messages.
pub(crate) fn render(
    template: &Template,
    data: &Value,
    what: &str,
) -> Result<String, ProviderError> {
    template.execute_to_string(data).map_err(|e| {
        ProviderError::invalid_request(format!("cannot render the webhook's {what}")).with_source(e)
    })
}

/// Renders to bytes (a body may carry binary secret values).
pub(crate) fn render_bytes(
    template: &Template,
    data: &Value,
    what: &str,
) -> Result<Vec<u8>, ProviderError> {
    template.execute(data).map_err(|e| {
        ProviderError::invalid_request(format!("cannot render the webhook's {what}")).with_source(e)
    })
}

/// The data templates see: `map[string]map[string]string` in upstream's Go.
#[derive(Debug, Clone, Default)]
pub(crate) struct TemplateData {
    entries: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl TemplateData {
    /// Data for a read: `.remoteRef.key`, `.remoteRef.property`, `.remoteRef.version` (query
    /// escaped when `url_encode`, as upstream does for the URL) and the store's Secrets.
    pub(crate) fn for_read(
        key: &str,
        property: Option<&str>,
        version: Option<&str>,
        url_encode: bool,
        secrets: &BTreeMap<String, SecretData>,
    ) -> Self {
        let esc = |s: &str| {
            if url_encode {
                query_escape(s)
            } else {
                s.to_owned()
            }
        };
        let remote: BTreeMap<String, Vec<u8>> = [
            ("key", esc(key)),
            ("property", esc(property.unwrap_or(""))),
            ("version", esc(version.unwrap_or(""))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_bytes()))
        .collect();
        let mut data = Self::default();
        data.entries.insert("remoteRef".to_owned(), remote);
        data.add_secrets(secrets);
        data
    }

    /// Data for a push, as upstream's `PushWebhookData`: `.remoteRef.remoteKey` (query
    /// escaped) and the value under the pushed Secret key (or under the remote key when the
    /// whole Secret is pushed), plus the store's Secrets.
    pub(crate) fn for_push(
        remote_key: &str,
        secret_key: Option<&str>,
        value: &[u8],
        secrets: &BTreeMap<String, SecretData>,
    ) -> Self {
        let mut remote = BTreeMap::new();
        remote.insert(
            "remoteKey".to_owned(),
            query_escape(remote_key).into_bytes(),
        );
        let value_key = secret_key.filter(|k| !k.is_empty()).unwrap_or(remote_key);
        remote.insert(value_key.to_owned(), value.to_vec());
        let mut data = Self::default();
        data.entries.insert("remoteRef".to_owned(), remote);
        data.add_secrets(secrets);
        data
    }

    fn add_secrets(&mut self, secrets: &BTreeMap<String, SecretData>) {
        // Upstream merges a Secret's keys into an existing entry of the same name.
        for (name, data) in secrets {
            let entry = self.entries.entry(name.clone()).or_default();
            for (k, v) in data {
                entry.insert(k.clone(), v.clone());
            }
        }
    }

    /// The template value.
    pub(crate) fn value(&self) -> Value {
        Value::dict(
            self.entries
                .iter()
                .map(|(name, map)| (name.clone(), Value::from_bytes_map(map)))
                .collect(),
        )
    }
}

/// Go's `url.QueryEscape`: everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded, spaces
/// become `+`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::provider::{WebhookProvider as Spec, WebhookResult};

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("a b/c?d=é"), "a+b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(query_escape("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn url_data_is_escaped_and_body_data_is_not() {
        let secrets: BTreeMap<String, SecretData> = [(
            "auth".to_owned(),
            [("token".to_owned(), b"t0k".to_vec())].into(),
        )]
        .into();
        let spec = Spec {
            url: "http://h/{{ .remoteRef.key }}?v={{ .remoteRef.version }}".into(),
            body: Some(r#"{"k":"{{ .remoteRef.key }}","t":"{{ .auth.token }}"}"#.into()),
            headers: [(
                "Authorization".to_owned(),
                "Bearer {{ .auth.token }}".to_owned(),
            )]
            .into(),
            result: Some(WebhookResult {
                json_path: Some("$.{{ .remoteRef.property }}".into()),
            }),
            ..Spec::default()
        };
        let t = Templates::parse(&spec, "spec.provider.webhook").unwrap();
        let url_data = TemplateData::for_read("a b/c", None, Some("2"), true, &secrets).value();
        assert_eq!(
            render(&t.url, &url_data, "url").unwrap(),
            "http://h/a+b%2Fc?v=2"
        );
        let data = TemplateData::for_read("a b/c", Some("value"), None, false, &secrets).value();
        assert_eq!(
            render(t.body.as_ref().unwrap(), &data, "body").unwrap(),
            r#"{"k":"a b/c","t":"t0k"}"#
        );
        assert_eq!(
            render(&t.headers[0].1, &data, "header").unwrap(),
            "Bearer t0k"
        );
        assert_eq!(
            render(t.json_path.as_ref().unwrap(), &data, "jsonPath").unwrap(),
            "$.value"
        );
    }

    #[test]
    fn push_data_names_the_value_by_secret_key() {
        let data = TemplateData::for_push("app/db", Some("password"), b"s3cret", &BTreeMap::new());
        let t = Template::parse(
            "b",
            "{{ .remoteRef.remoteKey }}={{ .remoteRef.password }}",
            &options(),
        )
        .unwrap();
        assert_eq!(
            render(&t, &data.value(), "body").unwrap(),
            "app%2Fdb=s3cret"
        );
        let whole = TemplateData::for_push("k", None, b"{}", &BTreeMap::new());
        let t = Template::parse("b", "{{ .remoteRef.k }}", &options()).unwrap();
        assert_eq!(render(&t, &whole.value(), "body").unwrap(), "{}");
    }

    #[test]
    fn invalid_templates_are_store_errors() {
        let spec = Spec {
            url: "http://h/{{ .remoteRef.key ".into(),
            ..Spec::default()
        };
        let err = Templates::parse(&spec, "spec.provider.webhook").unwrap_err();
        assert_eq!(err.kind(), eso_provider::ErrorKind::InvalidStore);
        assert!(err.message().contains("spec.provider.webhook.url"), "{err}");
    }
}
