//! `Password`: a random password (upstream's `types_password.go`).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{int_schema, require_defaulted};

/// Upstream's default password length.
pub const DEFAULT_PASSWORD_LENGTH: i64 = 24;
/// The output key when `secretKeys` is empty.
pub const DEFAULT_PASSWORD_KEY: &str = "password";
/// The symbols used when `symbolCharacters` is unset or empty (sethvargo/go-password's set).
pub const DEFAULT_SYMBOL_CHARACTERS: &str = "~!@#$%^&*()_+`-={}|[]\\:\"<>?,./";

/// The desired password: length, character classes and output keys.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Password",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "Password generates a random password based on the configuration parameters in spec. You can specify the length, characterset and other attributes."
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = password_required)]
pub struct PasswordSpec {
    /// Length of the password to be generated. Defaults to 24.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_schema", extend("default" = 24))]
    pub length: Option<i64>,
    /// The number of digits in the password. If omitted it defaults to 25% of the length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_schema")]
    pub digits: Option<i64>,
    /// The number of symbol characters in the password. If omitted it defaults to 25% of the
    /// length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_schema")]
    pub symbols: Option<i64>,
    /// The symbol characters to draw from. Default ``~!@#$%^&*()_+`-={}|[]\:"<>?,./``.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_characters: Option<String>,
    /// Disables uppercase letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub no_upper: Option<bool>,
    /// Allows characters to repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub allow_repeat: Option<bool>,
    /// The keys that get a password each (a different one per key). Defaults to `password`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_keys: Vec<String>,
    /// How the password is encoded: `raw` (default), `base64`, `base64url`, `base32` or `hex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "raw"))]
    pub encoding: Option<PasswordEncoding>,
}

/// Upstream's CRD lists `length`, `noUpper` and `allowRepeat` as required with defaults: the
/// API server fills them in, and a manifest may leave them out.
fn password_required(schema: &mut schemars::Schema) {
    require_defaulted(schema, &["allowRepeat", "length", "noUpper"]);
}

impl PasswordSpec {
    /// `length` with upstream's default (24) applied; zero or less also means 24, as upstream.
    #[must_use]
    pub fn length(&self) -> i64 {
        self.length
            .filter(|l| *l > 0)
            .unwrap_or(DEFAULT_PASSWORD_LENGTH)
    }

    /// `digits`, defaulting to a quarter of the length (rounded down), as upstream.
    #[must_use]
    pub fn digits(&self) -> i64 {
        self.digits.unwrap_or(self.length() / 4)
    }

    /// `symbols`, defaulting to a quarter of the length (rounded down), as upstream.
    #[must_use]
    pub fn symbols(&self) -> i64 {
        self.symbols.unwrap_or(self.length() / 4)
    }

    /// `symbolCharacters`, or the default set when unset or empty (go-password's rule).
    #[must_use]
    pub fn symbol_characters(&self) -> &str {
        self.symbol_characters
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SYMBOL_CHARACTERS)
    }

    /// `noUpper` with its default (false).
    #[must_use]
    pub fn no_upper(&self) -> bool {
        self.no_upper.unwrap_or(false)
    }

    /// `allowRepeat` with its default (false).
    #[must_use]
    pub fn allow_repeat(&self) -> bool {
        self.allow_repeat.unwrap_or(false)
    }

    /// The output keys: `secretKeys`, or `password` when empty.
    #[must_use]
    pub fn secret_keys(&self) -> Vec<&str> {
        if self.secret_keys.is_empty() {
            vec![DEFAULT_PASSWORD_KEY]
        } else {
            self.secret_keys.iter().map(String::as_str).collect()
        }
    }

    /// `encoding` with its default (`raw`).
    #[must_use]
    pub fn encoding(&self) -> PasswordEncoding {
        self.encoding.unwrap_or_default()
    }
}

/// How a generated password is encoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum PasswordEncoding {
    /// Standard base64, padded.
    Base64,
    /// URL-safe base64, padded (Go's `base64.URLEncoding`).
    Base64url,
    /// Standard base32, padded.
    Base32,
    /// Lowercase hexadecimal.
    Hex,
    /// No encoding.
    #[default]
    Raw,
}
