//! Secret Manager v1: routes (`/v1/projects/{p}[/locations/{l}]/secrets...`), the operations on
//! the state, and the JSON of `Secret`, `SecretVersion` and `AccessSecretVersionResponse`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::Method;
use serde_json::{Map, Value, json};

use crate::crc32c;
use crate::filter::{self, Fields};
use crate::http::ApiError;
use crate::method;
use crate::state::{Secret, SecretKey, State, Version, VersionState, rfc3339};

/// The largest payload Secret Manager accepts (64 KiB).
const MAX_PAYLOAD: usize = 65_536;
/// The largest (and default) page size of list calls.
const MAX_PAGE_SIZE: usize = 25_000;

/// The parent of secrets: a project, or a project's location (regional secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parent {
    pub(crate) project: String,
    pub(crate) location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    ListSecrets,
    CreateSecret,
    GetSecret(String),
    UpdateSecret(String),
    DeleteSecret(String),
    AddVersion(String),
    ListVersions(String),
    GetVersion(String, String),
    Access(String, String),
    SetState(String, String, VersionState),
}

/// A routed Secret Manager request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmRequest {
    pub(crate) parent: Parent,
    pub(crate) op: Op,
}

impl SmRequest {
    /// Google's RPC name ([`crate::method`]).
    pub(crate) fn method(&self) -> &'static str {
        match &self.op {
            Op::ListSecrets => method::LIST_SECRETS,
            Op::CreateSecret => method::CREATE_SECRET,
            Op::GetSecret(_) => method::GET_SECRET,
            Op::UpdateSecret(_) => method::UPDATE_SECRET,
            Op::DeleteSecret(_) => method::DELETE_SECRET,
            Op::AddVersion(_) => method::ADD_SECRET_VERSION,
            Op::ListVersions(_) => method::LIST_SECRET_VERSIONS,
            Op::GetVersion(..) => method::GET_SECRET_VERSION,
            Op::Access(..) => method::ACCESS_SECRET_VERSION,
            Op::SetState(_, _, VersionState::Enabled) => method::ENABLE_SECRET_VERSION,
            Op::SetState(_, _, VersionState::Disabled) => method::DISABLE_SECRET_VERSION,
            Op::SetState(_, _, VersionState::Destroyed) => method::DESTROY_SECRET_VERSION,
        }
    }

    /// The IAM permission the call needs, for `PERMISSION_DENIED` messages.
    pub(crate) fn permission(&self) -> &'static str {
        match &self.op {
            Op::ListSecrets => "secretmanager.secrets.list",
            Op::CreateSecret => "secretmanager.secrets.create",
            Op::GetSecret(_) => "secretmanager.secrets.get",
            Op::UpdateSecret(_) => "secretmanager.secrets.update",
            Op::DeleteSecret(_) => "secretmanager.secrets.delete",
            Op::AddVersion(_) => "secretmanager.versions.add",
            Op::ListVersions(_) => "secretmanager.versions.list",
            Op::GetVersion(..) => "secretmanager.versions.get",
            Op::Access(..) => "secretmanager.versions.access",
            Op::SetState(_, _, VersionState::Enabled) => "secretmanager.versions.enable",
            Op::SetState(_, _, VersionState::Disabled) => "secretmanager.versions.disable",
            Op::SetState(_, _, VersionState::Destroyed) => "secretmanager.versions.destroy",
        }
    }

    /// The resource the request addresses, as the caller named it.
    pub(crate) fn resource(&self) -> String {
        let parent = match &self.parent.location {
            Some(l) => format!("projects/{}/locations/{l}", self.parent.project),
            None => format!("projects/{}", self.parent.project),
        };
        match &self.op {
            Op::ListSecrets | Op::CreateSecret => parent,
            Op::GetSecret(s)
            | Op::UpdateSecret(s)
            | Op::DeleteSecret(s)
            | Op::AddVersion(s)
            | Op::ListVersions(s) => format!("{parent}/secrets/{s}"),
            Op::GetVersion(s, v) | Op::Access(s, v) | Op::SetState(s, v, _) => {
                format!("{parent}/secrets/{s}/versions/{v}")
            }
        }
    }
}

/// Routes `segments` (the path after `/v1/`, percent-decoded). `None` when the path is not a
/// Secret Manager path.
pub(crate) fn route(method: &Method, segments: &[String]) -> Option<Result<SmRequest, ApiError>> {
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (parent, rest) = match seg.as_slice() {
        ["projects", p, "locations", l, rest @ ..] if !rest.is_empty() => (
            Parent {
                project: (*p).to_owned(),
                location: Some((*l).to_owned()),
            },
            rest,
        ),
        ["projects", p, rest @ ..] => (
            Parent {
                project: (*p).to_owned(),
                location: None,
            },
            rest,
        ),
        _ => return None,
    };
    let bad = || Some(Err(ApiError::not_found("Requested entity was not found.")));
    let op = match (method, rest) {
        (&Method::GET, ["secrets"]) => Op::ListSecrets,
        (&Method::POST, ["secrets"]) => Op::CreateSecret,
        (_, ["secrets", last]) => {
            if let Some(s) = last.strip_suffix(":addVersion") {
                if method != Method::POST {
                    return bad();
                }
                Op::AddVersion(s.to_owned())
            } else {
                let s = (*last).to_owned();
                match *method {
                    Method::GET => Op::GetSecret(s),
                    Method::PATCH => Op::UpdateSecret(s),
                    Method::DELETE => Op::DeleteSecret(s),
                    _ => return bad(),
                }
            }
        }
        (&Method::GET, ["secrets", s, "versions"]) => Op::ListVersions((*s).to_owned()),
        (_, ["secrets", s, "versions", last]) => {
            let s = (*s).to_owned();
            match last.split_once(':') {
                None if method == Method::GET => Op::GetVersion(s, (*last).to_owned()),
                Some((v, "access")) if method == Method::GET => Op::Access(s, v.to_owned()),
                Some((v, verb)) if method == Method::POST => {
                    let state = match verb {
                        "disable" => VersionState::Disabled,
                        "enable" => VersionState::Enabled,
                        "destroy" => VersionState::Destroyed,
                        _ => return bad(),
                    };
                    Op::SetState(s, v.to_owned(), state)
                }
                _ => return bad(),
            }
        }
        _ => return bad(),
    };
    Some(Ok(SmRequest { parent, op }))
}

fn etag(n: u64) -> String {
    format!("\"{n:016x}\"")
}

fn secret_json(key: &SecretKey, s: &Secret) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), key.name().into());
    if let Some(r) = &s.replication {
        m.insert("replication".into(), r.clone());
    }
    m.insert("createTime".into(), rfc3339(s.create_time).into());
    if !s.labels.is_empty() {
        m.insert("labels".into(), json!(s.labels));
    }
    if !s.topics.is_empty() {
        let topics: Vec<Value> = s.topics.iter().map(|t| json!({"name": t})).collect();
        m.insert("topics".into(), topics.into());
    }
    m.insert("etag".into(), etag(s.etag).into());
    if !s.version_aliases.is_empty() {
        let aliases: Map<String, Value> = s
            .version_aliases
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string().into()))
            .collect();
        m.insert("versionAliases".into(), aliases.into());
    }
    if !s.annotations.is_empty() {
        m.insert("annotations".into(), json!(s.annotations));
    }
    Value::Object(m)
}

fn replication_status(replication: Option<&Value>) -> Option<Value> {
    let r = replication?;
    if r.get("automatic").is_some() {
        return Some(json!({"automatic": {}}));
    }
    let replicas: Vec<Value> = r
        .pointer("/userManaged/replicas")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .map(|x| json!({"location": x.get("location").cloned().unwrap_or(Value::Null)}))
                .collect()
        })
        .unwrap_or_default();
    Some(json!({"userManaged": {"replicas": replicas}}))
}

fn version_json(key: &SecretKey, s: &Secret, v: &Version) -> Value {
    let mut m = Map::new();
    m.insert(
        "name".into(),
        format!("{}/versions/{}", key.name(), v.number).into(),
    );
    m.insert("createTime".into(), rfc3339(v.create_time).into());
    if let Some(t) = v.destroy_time {
        m.insert("destroyTime".into(), rfc3339(t).into());
    }
    m.insert("state".into(), v.state.as_str().into());
    if let Some(r) = replication_status(s.replication.as_ref()) {
        m.insert("replicationStatus".into(), r);
    }
    m.insert("etag".into(), etag(v.etag).into());
    m.insert("clientSpecifiedPayloadChecksum".into(), true.into());
    Value::Object(m)
}

fn string_map(v: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::invalid_argument(format!(
                    "Invalid value at '{field}[{k}]': expected a string."
                ))),
            })
            .collect(),
        Some(_) => Err(ApiError::invalid_argument(format!(
            "Invalid value at '{field}': expected a map."
        ))),
    }
}

fn label_part_ok(s: &str, key: bool) -> bool {
    let mut chars = s.chars();
    if key {
        match chars.next() {
            Some(c) if c.is_lowercase() => {}
            _ => return false,
        }
    }
    s.chars().count() <= 63
        && chars.all(|c| c.is_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > 64 {
        return Err(ApiError::invalid_argument(
            "A secret can have at most 64 labels.",
        ));
    }
    for (k, v) in labels {
        if !label_part_ok(k, true) {
            return Err(ApiError::invalid_argument(format!(
                "Label key '{k}' violates format constraints: it must start with a lowercase letter and contain only lowercase letters, digits, underscores and dashes, at most 63 characters."
            )));
        }
        if !label_part_ok(v, false) {
            return Err(ApiError::invalid_argument(format!(
                "Label value '{v}' violates format constraints: only lowercase letters, digits, underscores and dashes, at most 63 characters."
            )));
        }
    }
    Ok(())
}

fn topics(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::invalid_argument("Topic name is required."))
            })
            .collect(),
        Some(_) => Err(ApiError::invalid_argument(
            "Invalid value at 'secret.topics': expected a list.",
        )),
    }
}

fn aliases(v: Option<&Value>, s: Option<&Secret>) -> Result<BTreeMap<String, u64>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let Some(m) = v.as_object() else {
        return Err(ApiError::invalid_argument(
            "Invalid value at 'secret.version_aliases': expected a map.",
        ));
    };
    for (alias, n) in m {
        let n = match n {
            Value::String(t) => t.parse::<u64>().ok(),
            Value::Number(x) => x.as_u64(),
            _ => None,
        }
        .ok_or_else(|| ApiError::invalid_argument(format!("Invalid version for alias {alias}.")))?;
        if alias.is_empty()
            || alias.chars().all(|c| c.is_ascii_digit())
            || alias == "latest"
            || !alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ApiError::invalid_argument(format!(
                "Version alias '{alias}' is not valid."
            )));
        }
        if !s.is_some_and(|s| n >= 1 && (n as usize) <= s.versions.len()) {
            return Err(ApiError::invalid_argument(format!(
                "Version alias '{alias}' refers to version {n}, which does not exist."
            )));
        }
        out.insert(alias.clone(), n);
    }
    Ok(out)
}

fn check_replication(r: &Value) -> Result<(), ApiError> {
    if r.get("automatic").is_some_and(Value::is_object) {
        return Ok(());
    }
    if let Some(replicas) = r.pointer("/userManaged/replicas").and_then(Value::as_array)
        && !replicas.is_empty()
        && replicas.iter().all(|x| {
            x.get("location")
                .and_then(Value::as_str)
                .is_some_and(|l| !l.is_empty())
        })
    {
        return Ok(());
    }
    Err(ApiError::invalid_argument(
        "Secret.replication must set automatic, or user_managed with at least one replica location.",
    ))
}

const SECRET_FIELDS: &[&str] = &[
    "name",
    "replication",
    "createTime",
    "labels",
    "topics",
    "expireTime",
    "ttl",
    "etag",
    "rotation",
    "versionAliases",
    "annotations",
    "versionDestroyTtl",
    "customerManagedEncryption",
    "tags",
];

fn check_fields(body: &Value, known: &[&str]) -> Result<(), ApiError> {
    if let Some(m) = body.as_object()
        && let Some(unknown) = m.keys().find(|k| !known.contains(&k.as_str()))
    {
        return Err(ApiError::invalid_argument(format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        )));
    }
    Ok(())
}

fn valid_secret_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn page(
    query: &BTreeMap<String, String>,
    total: usize,
    default_size: usize,
) -> Result<(usize, usize), ApiError> {
    let size = match query.get("pageSize").filter(|s| !s.is_empty()) {
        None => default_size,
        Some(s) => match s.parse::<usize>() {
            Ok(0) => default_size,
            Ok(n) if n <= MAX_PAGE_SIZE => n,
            _ => {
                return Err(ApiError::invalid_argument(format!(
                    "page_size must be between 0 and {MAX_PAGE_SIZE}."
                )));
            }
        },
    };
    let start = match query.get("pageToken").filter(|s| !s.is_empty()) {
        None => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .filter(|n| *n <= total)
            .ok_or_else(|| ApiError::invalid_argument("Invalid page token."))?,
    };
    Ok((start, size))
}

fn page_json(field: &str, items: Vec<Value>, start: usize, size: usize) -> Value {
    let total = items.len();
    let end = (start + size).min(total);
    let mut m = Map::new();
    let page: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
    if !page.is_empty() {
        m.insert(field.into(), page.into());
    }
    if end < total {
        m.insert(
            "nextPageToken".into(),
            URL_SAFE_NO_PAD.encode(format!("offset:{end}")).into(),
        );
    }
    m.insert("totalSize".into(), total.into());
    Value::Object(m)
}

fn resolve_version(
    key: &SecretKey,
    s: &Secret,
    version: &str,
    for_access: bool,
) -> Result<usize, ApiError> {
    let missing = || {
        ApiError::not_found(format!(
            "Secret Version [{}/versions/{version}] not found.",
            key.name()
        ))
    };
    if version == "latest" {
        return if s.versions.is_empty() {
            Err(if for_access {
                ApiError::not_found(format!(
                    "Secret [{}] not found or has no versions.",
                    key.name()
                ))
            } else {
                missing()
            })
        } else {
            Ok(s.versions.len() - 1)
        };
    }
    if version.chars().all(|c| c.is_ascii_digit()) {
        let n: u64 = version
            .parse()
            .map_err(|_| ApiError::invalid_argument(format!("Invalid version {version}.")))?;
        if n == 0 {
            return Err(ApiError::invalid_argument(
                "Version 0 is not a valid version.",
            ));
        }
        return s
            .versions
            .iter()
            .position(|v| v.number == n)
            .ok_or_else(missing);
    }
    if !version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid_argument(format!(
            "Invalid version name {version:?}."
        )));
    }
    let n = *s.version_aliases.get(version).ok_or_else(missing)?;
    s.versions
        .iter()
        .position(|v| v.number == n)
        .ok_or_else(missing)
}

fn state_error(name: &str, state: VersionState) -> ApiError {
    ApiError::failed_precondition(format!(
        "Secret Version [{name}] is in {} state.",
        state.as_str()
    ))
}

/// Runs a routed request against the state.
pub(crate) fn execute(
    st: &mut State,
    req: &SmRequest,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> Result<Value, ApiError> {
    let project = st.project_number(&req.parent.project);
    let location = req.parent.location.clone();
    let key_of = |id: &str| SecretKey {
        project,
        location: location.clone(),
        id: id.to_owned(),
    };
    let not_found =
        |key: &SecretKey| ApiError::not_found(format!("Secret [{}] not found.", key.name()));
    match &req.op {
        Op::ListSecrets => {
            let expr = filter::parse(query.get("filter").map_or("", String::as_str))
                .map_err(|e| ApiError::invalid_argument(format!("Invalid filter: {e}")))?;
            let mut items = Vec::new();
            for (key, s) in &st.secrets {
                if key.project != project || key.location != location {
                    continue;
                }
                if let Some(e) = &expr {
                    let fields = Fields {
                        short_name: &key.id,
                        full_name: key.name(),
                        labels: Some(&s.labels),
                        create_time: Some(s.create_time),
                        automatic_replication: Some(
                            s.replication
                                .as_ref()
                                .is_some_and(|r| r.get("automatic").is_some()),
                        ),
                        state: None,
                    };
                    if !filter::matches(e, &fields)
                        .map_err(|e| ApiError::invalid_argument(format!("Invalid filter: {e}")))?
                    {
                        continue;
                    }
                }
                items.push(secret_json(key, s));
            }
            let (start, size) = page(query, items.len(), st.default_page_size)?;
            Ok(page_json("secrets", items, start, size))
        }
        Op::CreateSecret => {
            let id = query
                .get("secretId")
                .map(String::as_str)
                .unwrap_or_default();
            if !valid_secret_id(id) {
                return Err(ApiError::invalid_argument(format!(
                    "Secret ID [{id}] is invalid: it must be 1 to 255 letters, digits, underscores or dashes."
                )));
            }
            check_fields(body, SECRET_FIELDS)?;
            let key = key_of(id);
            if st.secrets.contains_key(&key) {
                return Err(ApiError::already_exists(format!(
                    "Secret [{}] already exists.",
                    key.name()
                )));
            }
            let replication = body.get("replication").filter(|r| !r.is_null()).cloned();
            match (&location, &replication) {
                (None, None) => {
                    return Err(ApiError::invalid_argument(
                        "Secret.replication is required for a global secret.",
                    ));
                }
                (None, Some(r)) => check_replication(r)?,
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid_argument(
                        "Replication cannot be set on a regional secret.",
                    ));
                }
                (Some(_), None) => {}
            }
            let labels = string_map(body.get("labels"), "secret.labels")?;
            check_labels(&labels)?;
            let annotations = string_map(body.get("annotations"), "secret.annotations")?;
            let topics = topics(body.get("topics"))?;
            let version_aliases = aliases(body.get("versionAliases"), None)?;
            let create_time = st.now();
            let etag = st.next();
            let secret = Secret {
                labels,
                annotations,
                topics,
                version_aliases,
                replication,
                create_time,
                etag,
                versions: Vec::new(),
            };
            let out = secret_json(&key, &secret);
            st.secrets.insert(key, secret);
            Ok(out)
        }
        Op::GetSecret(id) => {
            let key = key_of(id);
            let s = st.secrets.get(&key).ok_or_else(|| not_found(&key))?;
            Ok(secret_json(&key, s))
        }
        Op::UpdateSecret(id) => {
            let key = key_of(id);
            check_fields(body, SECRET_FIELDS)?;
            let mask: Vec<String> = query
                .get("updateMask")
                .map(|m| {
                    m.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if mask.is_empty() {
                return Err(ApiError::invalid_argument("update_mask is required."));
            }
            let next = st.next();
            let s = st.secrets.get_mut(&key).ok_or_else(|| not_found(&key))?;
            if let Some(tag) = body
                .get("etag")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                && tag != etag(s.etag)
            {
                return Err(ApiError::aborted(
                    "The etag provided in the request does not match the current etag of the resource.",
                ));
            }
            let mut updated = s.clone();
            for path in &mask {
                match path.as_str() {
                    "labels" => {
                        updated.labels = string_map(body.get("labels"), "secret.labels")?;
                        check_labels(&updated.labels)?;
                    }
                    "annotations" => {
                        updated.annotations =
                            string_map(body.get("annotations"), "secret.annotations")?;
                    }
                    "topics" => updated.topics = topics(body.get("topics"))?,
                    "version_aliases" | "versionAliases" => {
                        updated.version_aliases = aliases(body.get("versionAliases"), Some(s))?;
                    }
                    other => {
                        return Err(ApiError::invalid_argument(format!(
                            "Invalid update_mask: field {other} cannot be updated."
                        )));
                    }
                }
            }
            updated.etag = next;
            *s = updated;
            Ok(secret_json(&key, s))
        }
        Op::DeleteSecret(id) => {
            let key = key_of(id);
            let s = st.secrets.get(&key).ok_or_else(|| not_found(&key))?;
            if let Some(tag) = query.get("etag").filter(|t| !t.is_empty())
                && *tag != etag(s.etag)
            {
                return Err(ApiError::aborted(
                    "The etag provided in the request does not match the current etag of the resource.",
                ));
            }
            st.secrets.remove(&key);
            Ok(json!({}))
        }
        Op::AddVersion(id) => {
            let key = key_of(id);
            check_fields(body, &["payload"])?;
            let payload = body.get("payload");
            let data = match payload.and_then(|p| p.get("data")) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(b64)) => STANDARD
                    .decode(b64)
                    .or_else(|_| URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')))
                    .map_err(|_| {
                        ApiError::invalid_argument(
                            "Invalid value at 'payload.data' (TYPE_BYTES): not valid base64.",
                        )
                    })?,
                Some(_) => {
                    return Err(ApiError::invalid_argument(
                        "Invalid value at 'payload.data' (TYPE_BYTES).",
                    ));
                }
            };
            if data.len() > MAX_PAYLOAD {
                return Err(ApiError::invalid_argument(format!(
                    "Secret Payload cannot be larger than {MAX_PAYLOAD} bytes."
                )));
            }
            if let Some(sum) = payload.and_then(|p| p.get("dataCrc32c")) {
                let given = match sum {
                    Value::String(t) => t.parse::<u64>().ok(),
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                };
                if given != Some(u64::from(crc32c::checksum(&data))) {
                    return Err(ApiError::invalid_argument(
                        "Checksum mismatch: the data_crc32c does not match the payload data.",
                    ));
                }
            }
            let create_time = st.now();
            let etag_n = st.next();
            let secret_etag = st.next();
            let s = st.secrets.get_mut(&key).ok_or_else(|| not_found(&key))?;
            let v = Version {
                number: s.versions.len() as u64 + 1,
                state: VersionState::Enabled,
                data,
                create_time,
                destroy_time: None,
                etag: etag_n,
            };
            let out = version_json(&key, s, &v);
            s.versions.push(v);
            s.etag = secret_etag;
            Ok(out)
        }
        Op::ListVersions(id) => {
            let key = key_of(id);
            let expr = filter::parse(query.get("filter").map_or("", String::as_str))
                .map_err(|e| ApiError::invalid_argument(format!("Invalid filter: {e}")))?;
            let s = st.secrets.get(&key).ok_or_else(|| not_found(&key))?;
            let mut items = Vec::new();
            for v in s.versions.iter().rev() {
                if let Some(e) = &expr {
                    let number = v.number.to_string();
                    let fields = Fields {
                        short_name: &number,
                        full_name: format!("{}/versions/{}", key.name(), v.number),
                        labels: None,
                        state: Some(v.state.as_str()),
                        create_time: Some(v.create_time),
                        automatic_replication: None,
                    };
                    if !filter::matches(e, &fields)
                        .map_err(|e| ApiError::invalid_argument(format!("Invalid filter: {e}")))?
                    {
                        continue;
                    }
                }
                items.push(version_json(&key, s, v));
            }
            let (start, size) = page(query, items.len(), st.default_page_size)?;
            Ok(page_json("versions", items, start, size))
        }
        Op::GetVersion(id, version) => {
            let key = key_of(id);
            let s = st.secrets.get(&key).ok_or_else(|| not_found(&key))?;
            let idx = resolve_version(&key, s, version, false)?;
            Ok(version_json(&key, s, &s.versions[idx]))
        }
        Op::Access(id, version) => {
            let key = key_of(id);
            let s = st.secrets.get(&key).ok_or_else(|| {
                ApiError::not_found(format!(
                    "Secret [{}] not found or has no versions.",
                    key.name()
                ))
            })?;
            let idx = resolve_version(&key, s, version, true)?;
            let v = &s.versions[idx];
            let name = format!("{}/versions/{}", key.name(), v.number);
            if v.state != VersionState::Enabled {
                return Err(state_error(&name, v.state));
            }
            Ok(json!({
                "name": name,
                "payload": {
                    "data": STANDARD.encode(&v.data),
                    "dataCrc32c": crc32c::checksum(&v.data).to_string(),
                },
            }))
        }
        Op::SetState(id, version, target) => {
            let key = key_of(id);
            let now = st.now();
            let next = st.next();
            let s = st.secrets.get_mut(&key).ok_or_else(|| not_found(&key))?;
            let idx = resolve_version(&key, s, version, false)?;
            let name = format!("{}/versions/{}", key.name(), s.versions[idx].number);
            if let Some(tag) = body
                .get("etag")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                && tag != etag(s.versions[idx].etag)
            {
                return Err(ApiError::aborted(
                    "The etag provided in the request does not match the current etag of the resource.",
                ));
            }
            let v = &mut s.versions[idx];
            if v.state == VersionState::Destroyed {
                return Err(state_error(&name, v.state));
            }
            v.state = *target;
            v.etag = next;
            if *target == VersionState::Destroyed {
                v.data.clear();
                v.destroy_time = Some(now);
            }
            let snapshot = v.clone();
            Ok(version_json(&key, s, &snapshot))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(str::to_owned).collect()
    }

    fn run(st: &mut State, m: Method, path: &str, q: &str, body: Value) -> Result<Value, ApiError> {
        let req = route(&m, &segs(path)).unwrap()?;
        execute(st, &req, &crate::http::parse_pairs(q), &body)
    }

    #[test]
    fn routes_every_method() {
        let r = |m: Method, p: &str| route(&m, &segs(p)).unwrap().unwrap().method();
        assert_eq!(r(Method::GET, "projects/p/secrets"), "ListSecrets");
        assert_eq!(r(Method::POST, "projects/p/secrets"), "CreateSecret");
        assert_eq!(r(Method::GET, "projects/p/secrets/s"), "GetSecret");
        assert_eq!(r(Method::PATCH, "projects/p/secrets/s"), "UpdateSecret");
        assert_eq!(r(Method::DELETE, "projects/p/secrets/s"), "DeleteSecret");
        assert_eq!(
            r(Method::POST, "projects/p/secrets/s:addVersion"),
            "AddSecretVersion"
        );
        assert_eq!(
            r(Method::GET, "projects/p/secrets/s/versions"),
            "ListSecretVersions"
        );
        assert_eq!(
            r(Method::GET, "projects/p/secrets/s/versions/1"),
            "GetSecretVersion"
        );
        assert_eq!(
            r(
                Method::GET,
                "projects/p/locations/l/secrets/s/versions/latest:access"
            ),
            "AccessSecretVersion"
        );
        assert_eq!(
            r(Method::POST, "projects/p/secrets/s/versions/1:disable"),
            "DisableSecretVersion"
        );
        // AccessSecretVersion is a GET; a POST is not routed (the bug other fakes have).
        assert!(
            route(
                &Method::POST,
                &segs("projects/p/secrets/s/versions/1:access")
            )
            .unwrap()
            .is_err()
        );
        assert!(route(&Method::GET, &segs("other/x")).is_none());
    }

    #[test]
    fn versions_latest_aliases_and_states() {
        let mut st = State::default();
        run(
            &mut st,
            Method::POST,
            "projects/p/secrets",
            "secretId=s",
            json!({"replication": {"automatic": {}}}),
        )
        .unwrap();
        for d in ["one", "two"] {
            run(
                &mut st,
                Method::POST,
                "projects/p/secrets/s:addVersion",
                "",
                json!({"payload": {"data": STANDARD.encode(d)}}),
            )
            .unwrap();
        }
        let access = |st: &mut State, v: &str| {
            run(
                st,
                Method::GET,
                &format!("projects/p/secrets/s/versions/{v}:access"),
                "",
                Value::Null,
            )
            .map(|r| {
                String::from_utf8(
                    STANDARD
                        .decode(r["payload"]["data"].as_str().unwrap())
                        .unwrap(),
                )
                .unwrap()
            })
        };
        assert_eq!(access(&mut st, "latest").unwrap(), "two");
        assert_eq!(access(&mut st, "1").unwrap(), "one");
        run(
            &mut st,
            Method::PATCH,
            "projects/p/secrets/s",
            "updateMask=versionAliases",
            json!({"versionAliases": {"prod": "1"}}),
        )
        .unwrap();
        assert_eq!(access(&mut st, "prod").unwrap(), "one");
        run(
            &mut st,
            Method::POST,
            "projects/p/secrets/s/versions/2:disable",
            "",
            json!({}),
        )
        .unwrap();
        let err = access(&mut st, "latest").unwrap_err();
        assert!(
            matches!(&err, ApiError::Google { code: 400, status: "FAILED_PRECONDITION", message, .. } if message.contains("DISABLED state")),
            "{err:?}"
        );
        assert!(matches!(
            access(&mut st, "9"),
            Err(ApiError::Google { code: 404, .. })
        ));
        let listed = run(
            &mut st,
            Method::GET,
            "projects/p/secrets/s/versions",
            "filter=state:ENABLED",
            Value::Null,
        )
        .unwrap();
        assert_eq!(listed["versions"].as_array().unwrap().len(), 1);
        assert!(
            listed["versions"][0]["name"]
                .as_str()
                .unwrap()
                .ends_with("/versions/1")
        );
    }

    #[test]
    fn lists_page_and_filter() {
        let mut st = State::default();
        for (id, env) in [("a", "prod"), ("b", "dev"), ("c", "prod")] {
            run(
                &mut st,
                Method::POST,
                "projects/p/secrets",
                &format!("secretId={id}"),
                json!({"replication": {"automatic": {}}, "labels": {"env": env}}),
            )
            .unwrap();
        }
        let first = run(
            &mut st,
            Method::GET,
            "projects/p/secrets",
            "pageSize=2",
            Value::Null,
        )
        .unwrap();
        assert_eq!(first["secrets"].as_array().unwrap().len(), 2);
        assert_eq!(first["totalSize"], 3);
        let token = first["nextPageToken"].as_str().unwrap();
        let second = run(
            &mut st,
            Method::GET,
            "projects/p/secrets",
            &format!("pageSize=2&pageToken={token}"),
            Value::Null,
        )
        .unwrap();
        assert_eq!(second["secrets"].as_array().unwrap().len(), 1);
        assert!(second.get("nextPageToken").is_none());
        let prod = run(
            &mut st,
            Method::GET,
            "projects/p/secrets",
            "filter=labels.env%3Dprod",
            Value::Null,
        )
        .unwrap();
        let names: Vec<&str> = prod["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(
            names[0].starts_with("projects/1") && names[0].ends_with("/secrets/a"),
            "{names:?}"
        );
        assert!(
            run(
                &mut st,
                Method::GET,
                "projects/p/secrets",
                "filter=colour%3Dred",
                Value::Null
            )
            .is_err()
        );
    }

    #[test]
    fn create_rules() {
        let mut st = State::default();
        let create = |st: &mut State, path: &str, id: &str, body: Value| {
            run(st, Method::POST, path, &format!("secretId={id}"), body)
        };
        assert!(
            create(&mut st, "projects/p/secrets", "s", json!({})).is_err(),
            "global needs replication"
        );
        assert!(
            create(
                &mut st,
                "projects/p/locations/l/secrets",
                "s",
                json!({"replication": {"automatic": {}}})
            )
            .is_err()
        );
        assert!(create(&mut st, "projects/p/locations/l/secrets", "s", json!({})).is_ok());
        assert!(
            create(
                &mut st,
                "projects/p/secrets",
                "bad id",
                json!({"replication": {"automatic": {}}})
            )
            .is_err()
        );
        assert!(
            create(
                &mut st,
                "projects/p/secrets",
                "s",
                json!({"replication": {"automatic": {}}, "labels": {"Env": "x"}})
            )
            .is_err()
        );
        assert!(
            create(
                &mut st,
                "projects/p/secrets",
                "s",
                json!({"replication": {"automatic": {}}, "bogus": 1})
            )
            .is_err()
        );
        assert!(
            create(
                &mut st,
                "projects/p/secrets",
                "s",
                json!({"replication": {"automatic": {}}})
            )
            .is_ok()
        );
        assert!(matches!(
            create(
                &mut st,
                "projects/p/secrets",
                "s",
                json!({"replication": {"automatic": {}}})
            ),
            Err(ApiError::Google { code: 409, .. })
        ));
    }

    #[test]
    fn add_version_checks_crc32c() {
        let mut st = State::default();
        run(
            &mut st,
            Method::POST,
            "projects/p/secrets",
            "secretId=s",
            json!({"replication": {"automatic": {}}}),
        )
        .unwrap();
        let ok = crc32c::checksum(b"x").to_string();
        assert!(
            run(
                &mut st,
                Method::POST,
                "projects/p/secrets/s:addVersion",
                "",
                json!({"payload": {"data": STANDARD.encode("x"), "dataCrc32c": ok}})
            )
            .is_ok()
        );
        assert!(
            run(
                &mut st,
                Method::POST,
                "projects/p/secrets/s:addVersion",
                "",
                json!({"payload": {"data": STANDARD.encode("x"), "dataCrc32c": "1"}})
            )
            .is_err()
        );
    }
}
