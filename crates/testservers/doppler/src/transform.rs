//! Doppler's name transformers and download formats, as Doppler documents them (the server
//! applies them; clients only name them).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

fn capitalize(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn upper_camel(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(capitalize)
        .collect()
}

/// A secret name (`UPPER_SNAKE`) under a transformer; `None` for an unknown transformer.
pub(crate) fn transform(name: &str, transformer: &str) -> Option<String> {
    Some(match transformer {
        // API_KEY -> ApiKey
        "upper-camel" => upper_camel(name),
        // API_KEY -> apiKey
        "camel" => {
            let upper = upper_camel(name);
            let mut chars = upper.chars();
            match chars.next() {
                Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        }
        // API_KEY -> api_key
        "lower-snake" => name.to_ascii_lowercase(),
        // API_KEY -> TF_VAR_api_key
        "tf-var" => format!("TF_VAR_{}", name.to_ascii_lowercase()),
        // SMTP__USER_NAME -> Smtp:UserName
        "dotnet" => name
            .split("__")
            .map(upper_camel)
            .collect::<Vec<_>>()
            .join(":"),
        // SMTP__USER_NAME -> Smtp__UserName
        "dotnet-env" => name
            .split("__")
            .map(upper_camel)
            .collect::<Vec<_>>()
            .join("__"),
        // API_KEY -> api-key
        "lower-kebab" => name.to_ascii_lowercase().replace('_', "-"),
        _ => return None,
    })
}

fn escape(value: &str, quote: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\\' if quote => out.push_str("\\\\"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// The body of a download in `format` (`None` for an unknown format) and its content type.
pub(crate) fn render(
    secrets: &BTreeMap<String, String>,
    format: &str,
) -> Option<(String, &'static str)> {
    let lines = |f: &dyn Fn(&str, &str) -> String| {
        secrets
            .iter()
            .map(|(k, v)| f(k, v))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    Some(match format {
        "json" => (
            Value::Object(
                secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<_, _>>(),
            )
            .to_string(),
            "application/json; charset=utf-8",
        ),
        "dotnet-json" => {
            let mut root = Map::new();
            for (k, v) in secrets {
                let key = transform(k, "dotnet").unwrap_or_else(|| k.clone());
                root.insert(key, Value::String(v.clone()));
            }
            (
                Value::Object(root).to_string(),
                "application/json; charset=utf-8",
            )
        }
        "env" => (
            lines(&|k, v| format!("{k}=\"{}\"", escape(v, true))),
            "text/plain; charset=utf-8",
        ),
        "env-no-quotes" | "docker" => (
            lines(&|k, v| format!("{k}={}", escape(v, false))),
            "text/plain; charset=utf-8",
        ),
        "yaml" => (
            lines(&|k, v| format!("{k}: {}", Value::String(v.to_owned()))),
            "text/plain; charset=utf-8",
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformers_follow_dopplers_examples() {
        let t = |n: &str, x: &str| transform(n, x).unwrap();
        assert_eq!(t("API_KEY", "upper-camel"), "ApiKey");
        assert_eq!(t("API_KEY", "camel"), "apiKey");
        assert_eq!(t("API_KEY", "lower-snake"), "api_key");
        assert_eq!(t("API_KEY", "tf-var"), "TF_VAR_api_key");
        assert_eq!(t("API_KEY", "lower-kebab"), "api-key");
        assert_eq!(t("SMTP__USER_NAME", "dotnet"), "Smtp:UserName");
        assert_eq!(t("SMTP__USER_NAME", "dotnet-env"), "Smtp__UserName");
        assert!(transform("A", "shouting").is_none());
    }

    #[test]
    fn formats_quote_and_escape() {
        let s: BTreeMap<String, String> = [
            ("A".to_owned(), "x\"y".to_owned()),
            ("B".to_owned(), "1\n2".to_owned()),
        ]
        .into();
        assert_eq!(render(&s, "env").unwrap().0, "A=\"x\\\"y\"\nB=\"1\\n2\"\n");
        assert_eq!(render(&s, "docker").unwrap().0, "A=x\"y\nB=1\\n2\n");
        assert_eq!(
            render(&s, "yaml").unwrap().0,
            "A: \"x\\\"y\"\nB: \"1\\n2\"\n"
        );
        assert_eq!(render(&s, "json").unwrap().0, r#"{"A":"x\"y","B":"1\n2"}"#);
        assert!(render(&s, "toml").is_none());
    }
}
