//! The server handle, its state, request dispatch, and the seeding and inspection API tests
//! use.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use hyper::{Method, Response};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::method;
use eso_testserver_kit::{Body, Fault, Faults, Req, full, json_response, percent_decode, serve};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The method name ([`crate::method`]).
    pub method: String,
    /// The decoded path and query.
    pub target: String,
    /// The answer's status.
    pub status: u16,
}

#[derive(Debug)]
struct Vault {
    name: String,
    created_at: String,
    /// Items by ID, as Connect answers them (without `files`, which are kept apart).
    items: BTreeMap<String, Value>,
    /// (item ID) -> files: (file ID, name, content).
    files: BTreeMap<String, Vec<(String, String, Vec<u8>)>>,
}

#[derive(Debug, Default)]
struct State {
    vaults: BTreeMap<String, Vault>,
    /// Token -> the vault IDs it may use (`None`: every vault).
    tokens: BTreeMap<String, Option<BTreeSet<String>>>,
    calls: Vec<CallRecord>,
    counter: u64,
}

impl State {
    /// A new 26-character lowercase ID, as 1Password's.
    fn id(&mut self) -> String {
        self.counter += 1;
        let mut n =
            u128::from(self.counter).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..26)
            .map(|_| {
                let c = alphabet[(n % 36) as usize];
                n = n / 36 + 0x2545_f491_4f6c_dd1d;
                char::from(c)
            })
            .collect()
    }

    fn vault_by_name(&self, name: &str) -> Option<String> {
        self.vaults
            .iter()
            .find(|(_, v)| v.name == name)
            .map(|(id, _)| id.clone())
    }
}

struct Shared {
    state: Mutex<State>,
    faults: Mutex<Faults>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A local 1Password Connect server on `127.0.0.1` (HTTP). Dropping it stops it.
pub struct OnePasswordTestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for OnePasswordTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnePasswordTestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for OnePasswordTestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// An item to seed, built with [`OnePasswordTestServer::item`].
#[must_use]
pub struct ItemSeed<'a> {
    server: &'a OnePasswordTestServer,
    vault: String,
    title: String,
    category: String,
    tags: Vec<String>,
    sections: Vec<Value>,
    fields: Vec<Value>,
    files: Vec<(String, Vec<u8>)>,
}

impl ItemSeed<'_> {
    /// The item's category (default `LOGIN`).
    pub fn category(mut self, category: &str) -> Self {
        self.category = category.to_owned();
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_owned());
        self
    }

    /// Adds a field (type `CONCEALED` for a label `password`, else `STRING`).
    pub fn field(mut self, label: &str, value: &str) -> Self {
        let kind = if label == "password" {
            "CONCEALED"
        } else {
            "STRING"
        };
        let mut f = json!({"id": format!("f{}", self.fields.len()), "type": kind, "label": label, "value": value});
        if label == "password" {
            f["purpose"] = json!("PASSWORD");
        } else if label == "username" {
            f["purpose"] = json!("USERNAME");
        }
        self.fields.push(f);
        self
    }

    /// Adds a field inside a section (created on first use).
    pub fn section_field(mut self, section: &str, label: &str, value: &str) -> Self {
        let section_id = format!("s-{section}");
        if !self.sections.iter().any(|s| s["id"] == section_id.as_str()) {
            self.sections
                .push(json!({"id": section_id, "label": section}));
        }
        self.fields.push(json!({
            "id": format!("f{}", self.fields.len()),
            "type": "STRING",
            "label": label,
            "value": value,
            "section": {"id": section_id, "label": section},
        }));
        self
    }

    /// Attaches a file.
    pub fn file(mut self, name: &str, content: &[u8]) -> Self {
        self.files.push((name.to_owned(), content.to_vec()));
        self
    }

    /// Creates the item; returns its ID.
    ///
    /// # Panics
    /// When the vault does not exist (tests only).
    #[allow(clippy::panic)]
    pub fn create(self) -> String {
        let mut st = self.server.shared.state();
        let Some(vault_id) = st.vault_by_name(&self.vault).or_else(|| {
            st.vaults
                .contains_key(&self.vault)
                .then(|| self.vault.clone())
        }) else {
            panic!("no vault {:?}", self.vault)
        };
        let id = st.id();
        let files: Vec<(String, String, Vec<u8>)> = self
            .files
            .into_iter()
            .map(|(name, content)| (st.id(), name, content))
            .collect();
        let at = now();
        let mut item = json!({
            "id": id,
            "title": self.title,
            "vault": {"id": vault_id},
            "category": self.category,
            "tags": self.tags,
            "version": 1,
            "favorite": false,
            "trashed": false,
            "createdAt": at,
            "updatedAt": at,
            "lastEditedBy": "SEEDSEEDSEEDSEEDSEEDSEEDSE",
            "fields": self.fields,
        });
        if !self.sections.is_empty() {
            item["sections"] = Value::Array(self.sections);
        }
        if let Some(v) = st.vaults.get_mut(&vault_id) {
            v.items.insert(id.clone(), item);
            if !files.is_empty() {
                v.files.insert(id.clone(), files);
            }
        }
        id
    }
}

impl OnePasswordTestServer {
    /// Starts a server on a free port of `127.0.0.1`.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            faults: Mutex::new(Faults::default()),
        });
        let handler_shared = shared.clone();
        let (addr, accept) = serve(move |req| handle(&handler_shared, &req)).await?;
        Ok(Self {
            shared,
            addr,
            accept,
        })
    }

    /// The Connect host URL (`http://127.0.0.1:PORT`), what a store's `connectHost` names.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a vault; returns its ID.
    pub fn vault(&self, name: &str) -> String {
        let mut st = self.shared.state();
        let id = st.id();
        st.vaults.insert(
            id.clone(),
            Vault {
                name: name.to_owned(),
                created_at: now(),
                items: BTreeMap::new(),
                files: BTreeMap::new(),
            },
        );
        id
    }

    /// Starts describing an item titled `title` in the vault named (or with ID) `vault`.
    pub fn item(&self, vault: &str, title: &str) -> ItemSeed<'_> {
        ItemSeed {
            server: self,
            vault: vault.to_owned(),
            title: title.to_owned(),
            category: "LOGIN".to_owned(),
            tags: Vec::new(),
            sections: Vec::new(),
            fields: Vec::new(),
            files: Vec::new(),
        }
    }

    /// A token that may use every vault.
    pub fn token(&self) -> String {
        self.scoped_token(&[])
    }

    /// A token that may use only the named vaults (every vault when empty).
    pub fn scoped_token(&self, vaults: &[&str]) -> String {
        let mut st = self.shared.state();
        let n = st.id();
        let allowed = (!vaults.is_empty()).then(|| {
            vaults
                .iter()
                .filter_map(|v| st.vault_by_name(v))
                .collect::<BTreeSet<_>>()
        });
        let token = format!("eyJhbGciOiJFUzI1NiJ9.{n}.connect");
        st.tokens.insert(token.clone(), allowed);
        token
    }

    /// Revokes every token.
    pub fn revoke_tokens(&self) {
        self.shared.state().tokens.clear();
    }

    /// The items of a vault (by name), as stored: `(title, item JSON)`.
    #[must_use]
    pub fn items(&self, vault: &str) -> Vec<(String, Value)> {
        let st = self.shared.state();
        let Some(id) = st.vault_by_name(vault) else {
            return Vec::new();
        };
        st.vaults[&id]
            .items
            .values()
            .map(|i| {
                (
                    i["title"].as_str().unwrap_or_default().to_owned(),
                    i.clone(),
                )
            })
            .collect()
    }

    /// The item titled `title` in the vault named `vault`, as stored.
    #[must_use]
    pub fn find_item(&self, vault: &str, title: &str) -> Option<Value> {
        self.items(vault)
            .into_iter()
            .find(|(t, _)| t == title)
            .map(|(_, i)| i)
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults().push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// How many requests of `method` were made.
    #[must_use]
    pub fn count(&self, method: &str) -> usize {
        self.shared
            .state()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Every request so far.
    #[must_use]
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.state().calls.clone()
    }
}

/// A failed request, answered in Connect's error shape `{"status", "message"}`.
#[derive(Debug)]
struct ApiError {
    status: u16,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn response(self) -> Response<Body> {
        let mut r = json_response(
            self.status,
            &json!({"status": self.status, "message": self.message}),
        );
        if let Some(secs) = self.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        r
    }
}

enum Answer {
    Json(u16, Value),
    Bytes(Vec<u8>),
    Empty,
}

/// The route: method name and the decoded path segments after `/v1/vaults`.
fn route(req: &Req) -> (&'static str, Vec<String>) {
    let path = req.path.trim_end_matches('/');
    if path == "/heartbeat" {
        return (method::HEARTBEAT, Vec::new());
    }
    if path == "/health" {
        return (method::HEALTH, Vec::new());
    }
    let Some(rest) = path.strip_prefix("/v1/vaults") else {
        return (method::UNKNOWN, Vec::new());
    };
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let m = &req.method;
    let name = match (
        segs.len(),
        segs.get(1).map(String::as_str),
        segs.get(3).map(String::as_str),
    ) {
        (0, _, _) if m == Method::GET => method::LIST_VAULTS,
        (1, _, _) if m == Method::GET => method::GET_VAULT,
        (2, Some("items"), _) if m == Method::GET => method::LIST_ITEMS,
        (2, Some("items"), _) if m == Method::POST => method::CREATE_ITEM,
        (3, Some("items"), _) if m == Method::GET => method::GET_ITEM,
        (3, Some("items"), _) if m == Method::PUT => method::UPDATE_ITEM,
        (3, Some("items"), _) if m == Method::DELETE => method::DELETE_ITEM,
        (4, Some("items"), Some("files")) if m == Method::GET => method::LIST_FILES,
        (5, Some("items"), Some("files")) if m == Method::GET => method::GET_FILE,
        (6, Some("items"), Some("files")) if m == Method::GET && segs[5] == "content" => {
            method::GET_FILE_CONTENT
        }
        _ => method::UNKNOWN,
    };
    (name, segs)
}

fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    let (name, segs) = route(req);
    let target = format!(
        "{}?{}",
        percent_decode(&req.path, false),
        req.query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let answer = match shared.faults().take(name, |r| target.contains(r)) {
        Some(fault) => Err(ApiError {
            status: fault.status_code(),
            message: fault.message_text().map_or_else(
                || match fault.status_code() {
                    401 => "Invalid token signature".to_owned(),
                    403 => "Authorization: token does not have access to this vault".to_owned(),
                    429 => "Too many requests".to_owned(),
                    s => format!("Injected fault {s}"),
                },
                str::to_owned,
            ),
            retry_after: fault.retry_after_secs(),
        }),
        None => dispatch(&mut shared.state(), req, name, &segs),
    };
    let response = match answer {
        Ok(Answer::Json(code, v)) => json_response(code, &v),
        Ok(Answer::Bytes(b)) => full(200, Bytes::from(b), "application/octet-stream"),
        Ok(Answer::Empty) => full(204, Bytes::new(), "application/json"),
        Err(e) => e.response(),
    };
    shared.state().calls.push(CallRecord {
        method: name.to_owned(),
        target,
        status: response.status().as_u16(),
    });
    response
}

/// `attr eq "value"`, the filter Connect's clients send.
fn parse_filter(filter: &str, allowed: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::new(400, format!("Invalid filter query: {filter}"));
    let rest = filter
        .trim()
        .strip_prefix(allowed)
        .ok_or_else(invalid)?
        .trim_start();
    let rest = rest.strip_prefix("eq").ok_or_else(invalid)?.trim();
    let value = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(invalid)?;
    Ok(value.to_owned())
}

fn vault_json(id: &str, v: &Vault) -> Value {
    json!({
        "id": id,
        "name": v.name,
        "attributeVersion": 1,
        "contentVersion": v.items.len() + 1,
        "items": v.items.len(),
        "type": "USER_CREATED",
        "createdAt": v.created_at,
        "updatedAt": v.created_at,
    })
}

fn summary(item: &Value) -> Value {
    let mut s = item.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("fields");
        o.remove("sections");
        o.remove("files");
    }
    s
}

fn full_item(
    vault_id: &str,
    item: &Value,
    files: Option<&Vec<(String, String, Vec<u8>)>>,
) -> Value {
    let mut out = item.clone();
    if let Some(files) = files.filter(|f| !f.is_empty()) {
        let id = item["id"].as_str().unwrap_or_default();
        out["files"] = Value::Array(
            files
                .iter()
                .map(|(fid, name, content)| {
                    json!({
                        "id": fid,
                        "name": name,
                        "size": content.len(),
                        "content_path": format!("/v1/vaults/{vault_id}/items/{id}/files/{fid}/content"),
                    })
                })
                .collect(),
        );
    }
    out
}

const CATEGORIES: &[&str] = &[
    "LOGIN",
    "PASSWORD",
    "API_CREDENTIAL",
    "SERVER",
    "DATABASE",
    "CREDIT_CARD",
    "MEMBERSHIP",
    "PASSPORT",
    "SOFTWARE_LICENSE",
    "OUTDOOR_LICENSE",
    "SECURE_NOTE",
    "WIRELESS_ROUTER",
    "BANK_ACCOUNT",
    "DRIVER_LICENSE",
    "IDENTITY",
    "REWARD_PROGRAM",
    "DOCUMENT",
    "EMAIL_ACCOUNT",
    "SOCIAL_SECURITY_NUMBER",
    "MEDICAL_RECORD",
    "SSH_KEY",
    "CUSTOM",
];

/// Checks and completes an item a client sent: category, field IDs and types, timestamps.
fn accept_item(st: &mut State, body: &Value, vault_id: &str) -> Result<Value, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::new(
            400,
            "Invalid item: the body is not a JSON object",
        ));
    };
    let category = obj
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !CATEGORIES.contains(&category) {
        return Err(ApiError::new(
            400,
            format!("Invalid item category: {category:?}"),
        ));
    }
    if let Some(v) = obj
        .get("vault")
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        && !v.is_empty()
        && v != vault_id
    {
        return Err(ApiError::new(
            400,
            "Invalid item: vault ID of the item does not match the vault in the path",
        ));
    }
    let mut item: Map<String, Value> = obj.clone();
    item.remove("files");
    item.insert("vault".into(), json!({"id": vault_id}));
    let mut fields = Vec::new();
    for f in obj
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut f = f.clone();
        if f.get("id")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            f["id"] = json!(st.id());
        }
        if f.get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            f["type"] = json!("STRING");
        }
        fields.push(f);
    }
    item.insert("fields".into(), Value::Array(fields));
    if !item.contains_key("tags") || item["tags"].is_null() {
        item.insert("tags".into(), json!([]));
    }
    Ok(Value::Object(item))
}

fn dispatch(st: &mut State, req: &Req, name: &str, segs: &[String]) -> Result<Answer, ApiError> {
    match name {
        method::HEARTBEAT => return Ok(Answer::Bytes(b".".to_vec())),
        method::HEALTH => {
            return Ok(Answer::Json(
                200,
                json!({"name": "1Password Connect API", "version": "1.7.3", "dependencies": [{"service": "sqlite", "status": "ACTIVE"}]}),
            ));
        }
        method::UNKNOWN => return Err(ApiError::new(404, "Invalid request path")),
        _ => {}
    }
    let token = req
        .bearer()
        .ok_or_else(|| ApiError::new(401, "Invalid bearer token"))?;
    let allowed = st
        .tokens
        .get(token)
        .cloned()
        .ok_or_else(|| ApiError::new(401, "Invalid token signature"))?;
    let may = |vault: &str| allowed.as_ref().is_none_or(|a| a.contains(vault));
    if name == method::LIST_VAULTS {
        let filter = match req.query.get("filter") {
            Some(f) => Some(parse_filter(f, "name")?),
            None => None,
        };
        let list: Vec<Value> = st
            .vaults
            .iter()
            .filter(|(id, v)| may(id) && filter.as_deref().is_none_or(|n| v.name == n))
            .map(|(id, v)| vault_json(id, v))
            .collect();
        return Ok(Answer::Json(200, Value::Array(list)));
    }
    let vault_id = segs[0].clone();
    if !st.vaults.contains_key(&vault_id) {
        return Err(ApiError::new(
            404,
            "Invalid Vault UUID or vault does not exist",
        ));
    }
    if !may(&vault_id) {
        return Err(ApiError::new(
            403,
            format!("Authorization: token does not have access to vault {vault_id}"),
        ));
    }
    if name == method::GET_VAULT {
        return Ok(Answer::Json(
            200,
            vault_json(&vault_id, &st.vaults[&vault_id]),
        ));
    }
    if name == method::LIST_ITEMS {
        let filter = req.query.get("filter");
        let (attr, value) = match filter {
            None => (None, String::new()),
            Some(f) if f.trim_start().starts_with("tag") => (Some("tag"), parse_filter(f, "tag")?),
            Some(f) => (Some("title"), parse_filter(f, "title")?),
        };
        let list: Vec<Value> = st.vaults[&vault_id]
            .items
            .values()
            .filter(|i| match attr {
                None => true,
                Some("tag") => i["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == value.as_str())),
                _ => i["title"] == value.as_str(),
            })
            .map(summary)
            .collect();
        return Ok(Answer::Json(200, Value::Array(list)));
    }
    if name == method::CREATE_ITEM {
        let body = req
            .json()
            .ok_or_else(|| ApiError::new(400, "Invalid request body"))?;
        let mut item = accept_item(st, &body, &vault_id)?;
        let id = st.id();
        let at = now();
        item["id"] = json!(id);
        item["version"] = json!(1);
        item["createdAt"] = json!(at);
        item["updatedAt"] = json!(at);
        item["lastEditedBy"] = json!("CONNECTCONNECTCONNECTCONNE");
        if let Some(v) = st.vaults.get_mut(&vault_id) {
            v.items.insert(id, item.clone());
        }
        return Ok(Answer::Json(200, item));
    }
    let item_id = segs[2].clone();
    let Some(stored) = st.vaults[&vault_id].items.get(&item_id).cloned() else {
        return Err(ApiError::new(404, format!("item {item_id} not found")));
    };
    let files = st.vaults[&vault_id].files.get(&item_id).cloned();
    match name {
        method::GET_ITEM => Ok(Answer::Json(
            200,
            full_item(&vault_id, &stored, files.as_ref()),
        )),
        method::UPDATE_ITEM => {
            let body = req
                .json()
                .ok_or_else(|| ApiError::new(400, "Invalid request body"))?;
            if body
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id != item_id)
            {
                return Err(ApiError::new(
                    400,
                    "Invalid item: item ID in the body does not match the item in the path",
                ));
            }
            let mut item = accept_item(st, &body, &vault_id)?;
            item["id"] = json!(item_id);
            item["version"] = json!(stored["version"].as_u64().unwrap_or(1) + 1);
            item["createdAt"] = stored["createdAt"].clone();
            item["updatedAt"] = json!(now());
            item["lastEditedBy"] = json!("CONNECTCONNECTCONNECTCONNE");
            if let Some(v) = st.vaults.get_mut(&vault_id) {
                v.items.insert(item_id, item.clone());
            }
            Ok(Answer::Json(
                200,
                full_item(&vault_id, &item, files.as_ref()),
            ))
        }
        method::DELETE_ITEM => {
            if let Some(v) = st.vaults.get_mut(&vault_id) {
                v.items.remove(&item_id);
                v.files.remove(&item_id);
            }
            Ok(Answer::Empty)
        }
        _ => {
            let files = files.unwrap_or_default();
            let as_json = |(fid, fname, content): &(String, String, Vec<u8>)| {
                json!({
                    "id": fid,
                    "name": fname,
                    "size": content.len(),
                    "content_path": format!("/v1/vaults/{vault_id}/items/{item_id}/files/{fid}/content"),
                })
            };
            if name == method::LIST_FILES {
                return Ok(Answer::Json(
                    200,
                    Value::Array(files.iter().map(as_json).collect()),
                ));
            }
            let file_id = &segs[4];
            let file = files
                .iter()
                .find(|(fid, _, _)| fid == file_id)
                .ok_or_else(|| ApiError::new(404, format!("file {file_id} not found")))?;
            if name == method::GET_FILE {
                return Ok(Answer::Json(200, as_json(file)));
            }
            Ok(Answer::Bytes(file.2.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_ids_look_like_connects() {
        assert_eq!(
            parse_filter(r#"title eq "db creds""#, "title").unwrap(),
            "db creds"
        );
        assert!(parse_filter("title ne \"x\"", "title").is_err());
        let mut st = State::default();
        let (a, b) = (st.id(), st.id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 26);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
