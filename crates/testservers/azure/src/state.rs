//! What the server holds: the vault's objects (every version, live or soft-deleted), the
//! registered identities, the tokens issued, the faults to inject and the request log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha1::Digest;

use crate::Config;

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The three object kinds of a vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/secrets`.
    Secret,
    /// `/keys`.
    Key,
    /// `/certificates`.
    Certificate,
}

impl Kind {
    pub(crate) fn collection(self) -> &'static str {
        match self {
            Self::Secret => "secrets",
            Self::Key => "keys",
            Self::Certificate => "certificates",
        }
    }

    pub(crate) fn deleted_collection(self) -> &'static str {
        match self {
            Self::Secret => "deletedsecrets",
            Self::Key => "deletedkeys",
            Self::Certificate => "deletedcertificates",
        }
    }

    pub(crate) fn not_found_code(self) -> &'static str {
        match self {
            Self::Secret => "SecretNotFound",
            Self::Key => "KeyNotFound",
            Self::Certificate => "CertificateNotFound",
        }
    }

    pub(crate) fn noun(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Key => "key",
            Self::Certificate => "certificate",
        }
    }
}

/// Which listener a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The Key Vault data plane.
    Vault,
    /// The Entra ID login endpoint.
    Login,
    /// The instance metadata service.
    Imds,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Where it came.
    pub listener: Listener,
    /// The HTTP method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The `api-version` query parameter, if any.
    pub api_version: Option<String>,
    /// Whether it carried a token the vault accepted (vault requests only).
    pub authorized: bool,
}

/// A fault to inject: the next `times` requests to `listener` whose method matches (any when
/// empty) and whose path starts with `path_prefix` are answered with `status`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Where.
    pub listener: Listener,
    /// Which method (`""` for any).
    pub method: String,
    /// Which paths.
    pub path_prefix: String,
    /// The status to answer.
    pub status: u16,
    /// `Retry-After` seconds to send.
    pub retry_after: Option<u64>,
    /// How many requests to fail.
    pub times: usize,
}

impl Fault {
    /// Fails the next request to the vault under `path_prefix` with `status`.
    #[must_use]
    pub fn vault(path_prefix: &str, status: u16) -> Self {
        Self {
            listener: Listener::Vault,
            method: String::new(),
            path_prefix: path_prefix.to_owned(),
            status,
            retry_after: None,
            times: 1,
        }
    }

    /// The same fault at the login endpoint.
    #[must_use]
    pub fn login(status: u16) -> Self {
        Self {
            listener: Listener::Login,
            ..Self::vault("/", status)
        }
    }

    /// Sends `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Fails this many requests.
    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    /// Only requests with this method.
    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        method.clone_into(&mut self.method);
        self
    }
}

/// A secret to seed.
#[derive(Debug, Clone, Default)]
pub struct SecretSeed {
    pub(crate) value: String,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) content_type: Option<String>,
    pub(crate) enabled: bool,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
}

impl SecretSeed {
    /// An enabled secret with `value`.
    #[must_use]
    pub fn new(value: &str) -> Self {
        Self {
            value: value.to_owned(),
            enabled: true,
            ..Self::default()
        }
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.insert(k.to_owned(), v.to_owned());
        self
    }

    /// Sets the content type.
    #[must_use]
    pub fn content_type(mut self, ct: &str) -> Self {
        self.content_type = Some(ct.to_owned());
        self
    }

    /// Disables the secret.
    #[must_use]
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Sets `exp` (Unix seconds).
    #[must_use]
    pub fn expires(mut self, exp: i64) -> Self {
        self.exp = Some(exp);
        self
    }

    /// Sets `nbf` (Unix seconds).
    #[must_use]
    pub fn not_before(mut self, nbf: i64) -> Self {
        self.nbf = Some(nbf);
        self
    }
}

/// What a version holds besides the common attributes.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Secret {
        value: String,
        managed: bool,
    },
    /// The public JWK (no private parts).
    Key {
        jwk: Map<String, Value>,
    },
    Certificate {
        der: Vec<u8>,
        content_type: String,
    },
}

/// One version of an object.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) id: String,
    pub(crate) enabled: bool,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) nbf: Option<i64>,
    pub(crate) exp: Option<i64>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Body,
}

/// The objects of one kind.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    pub(crate) live: BTreeMap<String, Vec<Version>>,
    /// Soft-deleted objects with their deletion time.
    pub(crate) deleted: BTreeMap<String, (Vec<Version>, i64)>,
}

/// A registered application.
#[derive(Debug, Default)]
pub(crate) struct App {
    pub(crate) secrets: Vec<String>,
    pub(crate) certificates: Vec<Vec<u8>>,
    pub(crate) federated: Vec<(String, String)>,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) principal: String,
    pub(crate) resource: String,
    pub(crate) expires: i64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) tenant: String,
    pub(crate) vault_resource: String,
    pub(crate) vault_url: String,
    pub(crate) login_url: String,
    pub(crate) page_size: usize,
    pub(crate) token_lifetime_secs: u64,
    pub(crate) apps: BTreeMap<String, App>,
    pub(crate) managed_identities: Vec<String>,
    pub(crate) forbidden: BTreeSet<String>,
    pub(crate) tokens: HashMap<String, Issued>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) log: Vec<Recorded>,
    secrets: Collection,
    keys: Collection,
    certificates: Collection,
    counter: u64,
}

impl State {
    pub(crate) fn new(config: &Config, vault_url: String, login_url: String) -> Self {
        Self {
            tenant: config.tenant.clone(),
            vault_resource: config.vault_resource.clone(),
            vault_url,
            login_url,
            page_size: config.page_size,
            token_lifetime_secs: config.token_lifetime_secs,
            apps: BTreeMap::new(),
            managed_identities: Vec::new(),
            forbidden: BTreeSet::new(),
            tokens: HashMap::new(),
            faults: Vec::new(),
            log: Vec::new(),
            secrets: Collection::default(),
            keys: Collection::default(),
            certificates: Collection::default(),
            counter: 0,
        }
    }

    pub(crate) fn app(&mut self, client_id: &str) -> &mut App {
        self.apps.entry(client_id.to_owned()).or_default()
    }

    pub(crate) fn collection(&self, kind: Kind) -> &Collection {
        match kind {
            Kind::Secret => &self.secrets,
            Kind::Key => &self.keys,
            Kind::Certificate => &self.certificates,
        }
    }

    pub(crate) fn collection_mut(&mut self, kind: Kind) -> &mut Collection {
        match kind {
            Kind::Secret => &mut self.secrets,
            Kind::Key => &mut self.keys,
            Kind::Certificate => &mut self.certificates,
        }
    }

    /// A fresh 32-hex-digit identifier (versions, tokens).
    pub(crate) fn fresh_id(&mut self) -> String {
        self.counter += 1;
        let mut h = sha2::Sha256::new();
        h.update(self.counter.to_be_bytes());
        h.update(self.vault_url.as_bytes());
        h.update(now().to_be_bytes());
        let d = h.finalize();
        d[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The first fault that matches, consumed.
    pub(crate) fn take_fault(
        &mut self,
        listener: Listener,
        method: &str,
        path: &str,
    ) -> Option<Fault> {
        let i = self.faults.iter().position(|f| {
            f.listener == listener
                && (f.method.is_empty() || f.method == method)
                && path.starts_with(&f.path_prefix)
                && f.times > 0
        })?;
        let fault = self.faults[i].clone();
        self.faults[i].times -= 1;
        if self.faults[i].times == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }

    pub(crate) fn issue(&mut self, principal: &str, resource: &str) -> (String, u64) {
        let token = format!("eso-test-{}", self.fresh_id());
        let life = self.token_lifetime_secs;
        self.tokens.insert(
            token.clone(),
            Issued {
                principal: principal.to_owned(),
                resource: resource.to_owned(),
                expires: now() + i64::try_from(life).unwrap_or(i64::MAX / 2),
            },
        );
        (token, life)
    }

    /// Adds a version to a live object (creating it), returning the version id.
    pub(crate) fn push_version(&mut self, kind: Kind, name: &str, mut v: Version) -> String {
        let id = self.fresh_id();
        v.id.clone_from(&id);
        self.collection_mut(kind)
            .live
            .entry(name.to_owned())
            .or_default()
            .push(v);
        id
    }

    pub(crate) fn latest(&self, kind: Kind, name: &str) -> Option<&Version> {
        self.collection(kind).live.get(name).and_then(|v| v.last())
    }

    pub(crate) fn latest_secret_value(&self, name: &str) -> Option<String> {
        match &self.latest(Kind::Secret, name)?.body {
            Body::Secret { value, .. } => Some(value.clone()),
            _ => None,
        }
    }

    pub(crate) fn latest_key_jwk(&self, name: &str) -> Option<Value> {
        match &self.latest(Kind::Key, name)?.body {
            Body::Key { jwk } => Some(Value::Object(jwk.clone())),
            _ => None,
        }
    }

    pub(crate) fn latest_certificate_der(&self, name: &str) -> Option<Vec<u8>> {
        match &self.latest(Kind::Certificate, name)?.body {
            Body::Certificate { der, .. } => Some(der.clone()),
            _ => None,
        }
    }

    pub(crate) fn seed_secret(&mut self, name: &str, seed: crate::SecretSeed) -> String {
        let t = now();
        self.push_version(
            Kind::Secret,
            name,
            Version {
                id: String::new(),
                enabled: seed.enabled,
                created: t,
                updated: t,
                nbf: seed.nbf,
                exp: seed.exp,
                tags: seed.tags,
                content_type: seed.content_type,
                body: Body::Secret {
                    value: seed.value,
                    managed: false,
                },
            },
        )
    }

    pub(crate) fn seed_key(
        &mut self,
        name: &str,
        jwk: &Value,
        tags: BTreeMap<String, String>,
    ) -> String {
        let t = now();
        let public = public_jwk(jwk);
        self.push_version(
            Kind::Key,
            name,
            Version {
                id: String::new(),
                enabled: true,
                created: t,
                updated: t,
                nbf: None,
                exp: None,
                tags,
                content_type: None,
                body: Body::Key { jwk: public },
            },
        )
    }

    /// Stores a certificate and, as the service does, a managed secret of the same name that
    /// holds the imported bundle (`secret_value`, base64 PKCS#12 or PEM text).
    pub(crate) fn seed_certificate(
        &mut self,
        name: &str,
        der: Vec<u8>,
        tags: BTreeMap<String, String>,
        imported: Option<(String, String)>,
    ) -> String {
        let t = now();
        let (secret_value, content_type) =
            imported.unwrap_or_else(|| (STANDARD.encode(&der), "application/pkix-cert".to_owned()));
        let version = self.push_version(
            Kind::Certificate,
            name,
            Version {
                id: String::new(),
                enabled: true,
                created: t,
                updated: t,
                nbf: None,
                exp: None,
                tags: tags.clone(),
                content_type: None,
                body: Body::Certificate {
                    der,
                    content_type: content_type.clone(),
                },
            },
        );
        // The backing secret carries the certificate's version id, as in the service.
        let backing = Version {
            id: version.clone(),
            enabled: true,
            created: t,
            updated: t,
            nbf: None,
            exp: None,
            tags,
            content_type: Some(content_type),
            body: Body::Secret {
                value: secret_value,
                managed: true,
            },
        };
        self.collection_mut(Kind::Secret)
            .live
            .entry(name.to_owned())
            .or_default()
            .push(backing);
        version
    }

    fn attributes(&self, v: &Version, kind: Kind) -> Value {
        let mut a = json!({
            "enabled": v.enabled,
            "created": v.created,
            "updated": v.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        });
        if let Some(nbf) = v.nbf {
            a["nbf"] = json!(nbf);
        }
        if let Some(exp) = v.exp {
            a["exp"] = json!(exp);
        }
        if kind == Kind::Key {
            a["exportable"] = json!(false);
        }
        a
    }

    fn object_url(&self, kind: Kind, name: &str) -> String {
        format!("{}/{}/{name}", self.vault_url, kind.collection())
    }

    /// The full bundle of one version, as GET returns it.
    pub(crate) fn bundle(&self, kind: Kind, name: &str, v: &Version) -> Value {
        let id = format!("{}/{}", self.object_url(kind, name), v.id);
        let mut out = Map::new();
        match &v.body {
            Body::Secret { value, managed } => {
                out.insert("value".into(), json!(value));
                out.insert("id".into(), json!(id));
                if *managed {
                    out.insert("managed".into(), json!(true));
                    out.insert(
                        "kid".into(),
                        json!(format!("{}/{}", self.object_url(Kind::Key, name), v.id)),
                    );
                }
            }
            Body::Key { jwk } => {
                let mut k = Map::new();
                k.insert("kid".into(), json!(id));
                for (f, val) in jwk {
                    k.insert(f.clone(), val.clone());
                }
                out.insert("key".into(), Value::Object(k));
            }
            Body::Certificate { der, content_type } => {
                let base = self.object_url(kind, name);
                out.insert("id".into(), json!(id));
                out.insert(
                    "kid".into(),
                    json!(format!("{}/{}", self.object_url(Kind::Key, name), v.id)),
                );
                out.insert(
                    "sid".into(),
                    json!(format!("{}/{}", self.object_url(Kind::Secret, name), v.id)),
                );
                out.insert(
                    "x5t".into(),
                    json!(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der))),
                );
                out.insert("cer".into(), json!(STANDARD.encode(der)));
                out.insert(
                    "policy".into(),
                    json!({
                        "id": format!("{base}/policy"),
                        "key_props": {"exportable": true, "kty": "RSA", "key_size": 2048, "reuse_key": false},
                        "secret_props": {"contentType": content_type},
                        "issuer": {"name": "Unknown"},
                        "attributes": {"enabled": true, "created": v.created, "updated": v.updated},
                    }),
                );
            }
        }
        if let Some(ct) = &v.content_type {
            out.insert("contentType".into(), json!(ct));
        }
        out.insert("attributes".into(), self.attributes(v, kind));
        if !v.tags.is_empty() {
            out.insert("tags".into(), json!(v.tags));
        }
        Value::Object(out)
    }

    /// A list item: the object's id without a version (or with one, for version lists).
    pub(crate) fn item(&self, kind: Kind, name: &str, v: &Version, with_version: bool) -> Value {
        let base = self.object_url(kind, name);
        let mut out = Map::new();
        let id = if with_version {
            format!("{base}/{}", v.id)
        } else {
            base
        };
        match (&v.body, kind) {
            (_, Kind::Key) => {
                out.insert("kid".into(), json!(id));
            }
            (Body::Certificate { der, .. }, _) => {
                out.insert("id".into(), json!(id));
                out.insert(
                    "x5t".into(),
                    json!(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der))),
                );
            }
            (Body::Secret { managed, .. }, _) => {
                out.insert("id".into(), json!(id));
                if *managed {
                    out.insert("managed".into(), json!(true));
                }
            }
            _ => {
                out.insert("id".into(), json!(id));
            }
        }
        if let Some(ct) = &v.content_type {
            out.insert("contentType".into(), json!(ct));
        }
        out.insert("attributes".into(), self.attributes(v, kind));
        if !v.tags.is_empty() {
            out.insert("tags".into(), json!(v.tags));
        }
        Value::Object(out)
    }

    /// A deleted bundle: the latest version plus the deletion fields.
    pub(crate) fn deleted_bundle(
        &self,
        kind: Kind,
        name: &str,
        v: &Version,
        deleted: i64,
    ) -> Value {
        let mut b = self.bundle(kind, name, v);
        if let Value::Object(m) = &mut b {
            m.remove("value");
            m.insert(
                "recoveryId".into(),
                json!(format!(
                    "{}/{}/{name}",
                    self.vault_url,
                    kind.deleted_collection()
                )),
            );
            m.insert("deletedDate".into(), json!(deleted));
            m.insert("scheduledPurgeDate".into(), json!(deleted + 90 * 86_400));
        }
        b
    }
}

/// The public part of a JWK: the service never returns private key material.
pub(crate) fn public_jwk(jwk: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("RSA");
    out.insert("kty".into(), json!(kty));
    let ops = jwk.get("key_ops").cloned().unwrap_or_else(|| {
        if kty.starts_with("EC") {
            json!(["sign", "verify"])
        } else {
            json!([
                "encrypt",
                "decrypt",
                "sign",
                "verify",
                "wrapKey",
                "unwrapKey"
            ])
        }
    });
    out.insert("key_ops".into(), ops);
    for f in ["n", "e", "crv", "x", "y"] {
        if let Some(v) = jwk.get(f) {
            out.insert(f.into(), v.clone());
        }
    }
    out
}
