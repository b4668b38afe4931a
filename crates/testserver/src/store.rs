//! In-memory storage with one global, monotonically increasing resourceVersion, the write
//! pipeline every verb goes through, the watch event log, and the garbage collector.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::managed::{self, Scope, Write};
use crate::resources::{self, Builtin, ResKey, ResourceType};
use crate::status::{self, ApiError};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One entry of the watch event log.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    pub(crate) rv: u64,
    pub(crate) res: ResKey,
    pub(crate) ns: String,
    pub(crate) kind: EventKind,
    pub(crate) obj: Arc<Value>,
    pub(crate) old: Option<Arc<Value>>,
}

type ObjKey = (String, String);

/// An object with its type.
type Typed = (Arc<ResourceType>, Arc<Value>);

/// Who writes, and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOpts {
    pub(crate) manager: String,
    pub(crate) dry_run: bool,
}

/// The options of a delete request.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOpts {
    pub(crate) propagation: Option<String>,
    pub(crate) orphan_dependents: Option<bool>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) dry_run: bool,
}

/// The kinds of patch the server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Json,
    Merge,
    Strategic,
}

/// A page of a list.
pub(crate) struct Page {
    pub(crate) items: Vec<Arc<Value>>,
    pub(crate) rv: u64,
    pub(crate) continue_token: Option<String>,
    pub(crate) remaining: Option<usize>,
}

/// The whole state of the server.
pub(crate) struct Store {
    rv: u64,
    types: BTreeMap<ResKey, Arc<ResourceType>>,
    objects: HashMap<ResKey, BTreeMap<ObjKey, Arc<Value>>>,
    uids: HashMap<String, (ResKey, ObjKey)>,
    log: VecDeque<LogEntry>,
    /// A watch may resume from this resourceVersion or a later one.
    compacted: u64,
    max_log: usize,
    notify: tokio::sync::watch::Sender<u64>,
    gc_pending: bool,
}

static UID_COUNTER: AtomicU64 = AtomicU64::new(1);

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(UID_COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The ConfigMap the root CA publisher puts into every namespace.
const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

/// The CA certificate published in [`ROOT_CA_CONFIG_MAP`] (the in-process server serves plain
/// HTTP, so this CA signs nothing; it only makes the ConfigMap look as on a cluster).
const ROOT_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUQ+F2wUpdzqvo5jdwM1huiXtxVM4wCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVZXNvLXRlc3QtYXBpc2VydmVyLWNhMCAXDTI2MTIwNjAyMDAw
NVoYDzIxMjYxMTEyMDIwMDA1WjAgMR4wHAYDVQQDDBVlc28tdGVzdC1hcGlzZXJ2
ZXItY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT108ImF4S+9109SW2PUg9q
zqrsmRdbIQxSa1WxFOB/0Hw8ge5QkV8hbOrUaXl+xc3jBaKoWyIrtOVhcEJt7sPK
o1MwUTAdBgNVHQ4EFgQU1+jm4fnf6XjYP5EnMworjov6sZMwHwYDVR0jBBgwFoAU
1+jm4fnf6XjYP5EnMworjov6sZMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiEA66zsBtss2uw3CFmzdKQP1p0Zm0jo4XiGqU3nadGNyJICIFFUWIxT
NIdX0wgLM8cNK/9kNP1miyLBVXIOFeHJD6hu
-----END CERTIFICATE-----
";

/// A random RFC 4122 version 4 UUID.
pub(crate) fn new_uid() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// A short random lowercase suffix, as for `generateName`.
pub(crate) fn random_suffix(len: usize) -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = random_u64();
    (0..len)
        .map(|_| {
            let c = CHARS[(n % CHARS.len() as u64) as usize] as char;
            n /= CHARS.len() as u64;
            c
        })
        .collect()
}

/// The current time as a Kubernetes `Time` (seconds precision, UTC).
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Standard base64 with padding, as Kubernetes encodes `[]byte` in JSON.
pub(crate) fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("made an object just above")
    };
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    let Value::Object(m) = m else {
        unreachable!("made an object just above")
    };
    m
}

pub(crate) fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(key)).and_then(Value::as_str)
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(obj: &mut Value, f: &[String]) {
    let m = meta_mut(obj);
    if f.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(f));
    }
}

fn without(obj: &Value, top: &[&str]) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        for t in top {
            m.remove(*t);
        }
    }
    v
}

/// Compares two versions of an object ignoring what every write changes anyway.
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        let m = meta_mut(&mut v);
        m.remove("resourceVersion");
        if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
            for e in mf {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

impl Store {
    pub(crate) fn new(max_log: usize, notify: tokio::sync::watch::Sender<u64>) -> Self {
        let mut s = Self {
            rv: 1,
            types: BTreeMap::new(),
            objects: HashMap::new(),
            uids: HashMap::new(),
            log: VecDeque::new(),
            compacted: 1,
            max_log,
            notify,
            gc_pending: false,
        };
        for rt in resources::builtins() {
            s.types.insert(rt.key(), Arc::new(rt));
        }
        let Some(ns_type) = s.types.get(&(String::new(), "namespaces".into())).cloned() else {
            return s;
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let opts = WriteOpts {
                manager: "kube-apiserver".into(),
                dry_run: false,
            };
            // Cannot fail: a fresh store and a valid namespace.
            let _ = s.create(&ns_type, "v1", None, obj, &opts);
        }
        s
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(crate) fn compacted(&self) -> u64 {
        self.compacted
    }

    pub(crate) fn log(&self) -> &VecDeque<LogEntry> {
        &self.log
    }

    /// Forgets every logged event, so that watches from any earlier version get 410 Gone.
    pub(crate) fn compact(&mut self) {
        self.log.clear();
        self.compacted = self.rv;
    }

    pub(crate) fn take_gc_pending(&mut self) -> bool {
        std::mem::take(&mut self.gc_pending)
    }

    pub(crate) fn types(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    pub(crate) fn find_type(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), plural.to_string()))
            .filter(|rt| rt.versions.iter().any(|v| v == version))
            .cloned()
    }

    pub(crate) fn group_served(&self, group: &str, version: &str) -> bool {
        self.types
            .values()
            .any(|rt| rt.group == group && rt.versions.iter().any(|v| v == version))
    }

    /// The object as seen at `version` (no conversion: only `apiVersion` changes, like a CRD's
    /// `None` conversion strategy).
    pub(crate) fn at_version(rt: &ResourceType, version: &str, obj: &Value) -> Value {
        let mut v = obj.clone();
        if rt.versions.first().is_some_and(|s| s != version) {
            v["apiVersion"] = json!(rt.api_version(version));
        }
        v
    }

    pub(crate) fn get(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.objects
            .get(&rt.key())
            .and_then(|m| m.get(&(ns.unwrap_or_default().to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    pub(crate) fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        matches: &dyn Fn(&Value) -> bool,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Page, ApiError> {
        let (snapshot_rv, after) = match continue_token.filter(|c| !c.is_empty()) {
            Some(c) => {
                let (rv, key) = c
                    .split_once(':')
                    .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
                let rv = rv
                    .parse::<u64>()
                    .map_err(|_| ApiError::bad_request("invalid continue token"))?;
                let (kns, kname) = key.split_once('/').unwrap_or(("", key));
                (rv, Some((kns.to_string(), kname.to_string())))
            }
            None => (self.rv, None),
        };
        let empty = BTreeMap::new();
        let all = self.objects.get(&rt.key()).unwrap_or(&empty);
        let iter: Box<dyn Iterator<Item = (&ObjKey, &Arc<Value>)>> = match (&after, ns) {
            (Some(k), _) => Box::new(all.range((
                std::ops::Bound::Excluded(k.clone()),
                std::ops::Bound::Unbounded,
            ))),
            (None, Some(n)) => Box::new(all.range((n.to_string(), String::new())..)),
            (None, None) => Box::new(all.iter()),
        };
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0usize;
        for (k, v) in iter {
            if let Some(n) = ns
                && k.0 != n
            {
                if k.0.as_str() > n {
                    break;
                }
                continue;
            }
            if !matches(v) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            last_key = Some(k.clone());
            items.push(v.clone());
        }
        let continue_token = (remaining > 0)
            .then(|| last_key.map(|(kns, kname)| format!("{snapshot_rv}:{kns}/{kname}")))
            .flatten();
        Ok(Page {
            items,
            rv: snapshot_rv,
            remaining: continue_token.as_ref().map(|_| remaining),
            continue_token,
        })
    }

    fn check_namespace(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let Some(ns) = ns.filter(|_| rt.namespaced) else {
            return Ok(());
        };
        let nst = (String::new(), "namespaces".to_string());
        match self
            .objects
            .get(&nst)
            .and_then(|m| m.get(&(String::new(), ns.to_string())))
        {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if meta(n).is_some_and(|m| m.contains_key("deletionTimestamp")) => {
                Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        status::qualified(&rt.group, &rt.plural)
                    ),
                ))
            }
            Some(_) => Ok(()),
        }
    }

    /// Everything a write does before it is stored: identity, system metadata, type-specific
    /// defaults and validation, the status/main split, generation and field ownership.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        old: Option<&Value>,
        mut new: Value,
        scope: Scope,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let storage = rt
            .versions
            .first()
            .cloned()
            .unwrap_or_else(|| version.to_string());
        let name = meta_str(&new, "name").unwrap_or_default().to_string();
        new["apiVersion"] = json!(rt.api_version(&storage));
        new["kind"] = json!(rt.kind);
        if let Some(old) = old {
            match scope {
                Scope::Status => {
                    let status = new.get("status").cloned();
                    new = old.clone();
                    match status {
                        Some(s) => new["status"] = s,
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                Scope::Main => match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                },
                Scope::All => {}
            }
            let m = meta_mut(&mut new);
            for key in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "name",
            ] {
                match meta(old).and_then(|o| o.get(key)) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            if let Some(mf) = meta(old).and_then(|o| o.get("managedFields")) {
                if manager.is_some() {
                    m.insert("managedFields".into(), mf.clone());
                }
            } else if manager.is_some() {
                m.remove("managedFields");
            }
        } else {
            if rt.status_subresource
                && rt.builtin == Builtin::Custom
                && let Some(m) = new.as_object_mut()
            {
                m.remove("status");
            }
            let gen_name = meta_str(&new, "generateName").map(String::from);
            let m = meta_mut(&mut new);
            if name.is_empty() {
                match gen_name {
                    Some(g) => {
                        m.insert("name".into(), json!(format!("{g}{}", random_suffix(5))));
                    }
                    None => {
                        return Err(ApiError::invalid(
                            &rt.group,
                            &rt.kind,
                            "",
                            &[(
                                "metadata.name",
                                "FieldValueRequired",
                                "Required value: name or generateName is required".into(),
                            )],
                        ));
                    }
                }
            }
            m.insert("uid".into(), json!(new_uid()));
            m.insert("creationTimestamp".into(), json!(now()));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("resourceVersion");
            if manager.is_some() {
                m.remove("managedFields");
            }
            if rt.generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
            match ns.filter(|_| rt.namespaced) {
                Some(n) => m.insert("namespace".into(), json!(n)),
                None => m.remove("namespace"),
            };
        }
        let name = meta_str(&new, "name").unwrap_or_default().to_string();
        self.normalize(rt, &storage, old, &mut new, &name)?;
        if let Some(old) = old
            && rt.generation
        {
            let skip: &[&str] = if rt.status_subresource {
                &["metadata", "status"]
            } else {
                &["metadata"]
            };
            if without(old, skip) != without(&new, skip) {
                let g = meta(old)
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta_mut(&mut new).insert("generation".into(), json!(g + 1));
            }
        }
        if let Some(manager) = manager {
            let scope = if !rt.status_subresource {
                Scope::All
            } else {
                scope
            };
            let w = Write {
                manager,
                scope,
                schema: rt.schema(&storage),
                api_version: &rt.api_version(version),
                now: &now(),
            };
            managed::track_update(old, &mut new, &w);
        }
        Ok(new)
    }

    /// Type-specific defaulting and validation.
    fn normalize(
        &self,
        rt: &ResourceType,
        storage: &str,
        old: Option<&Value>,
        new: &mut Value,
        name: &str,
    ) -> Result<(), ApiError> {
        check_controller_references(rt, new, name)?;
        match rt.builtin {
            Builtin::Secret => {
                if let Some(Value::Object(sd)) =
                    new.as_object_mut().and_then(|m| m.remove("stringData"))
                {
                    let data = new
                        .as_object_mut()
                        .map(|m| m.entry("data").or_insert_with(|| json!({})));
                    if let Some(Value::Object(data)) = data {
                        for (k, v) in sd {
                            data.insert(k, json!(b64(v.as_str().unwrap_or_default().as_bytes())));
                        }
                    }
                }
                if new.get("type").is_none_or(Value::is_null) {
                    new["type"] = json!("Opaque");
                }
                if let Some(old) = old
                    && old.get("type") != new.get("type")
                {
                    return Err(ApiError::invalid(
                        "",
                        "Secret",
                        name,
                        &[(
                            "type",
                            "FieldValueInvalid",
                            format!(
                                "Invalid value: {}: field is immutable",
                                new.get("type").cloned().unwrap_or(Value::Null)
                            ),
                        )],
                    ));
                }
                check_immutable(rt, old, new, name, &["data"])?;
            }
            Builtin::ConfigMap => check_immutable(rt, old, new, name, &["data", "binaryData"])?,
            Builtin::Namespace => {
                let terminating = meta(new).is_some_and(|m| m.contains_key("deletionTimestamp"));
                let labels = meta_mut(new).entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
                if new.pointer("/spec/finalizers").is_none() && old.is_none() {
                    new["spec"] = json!({"finalizers": ["kubernetes"]});
                }
                new["status"] =
                    json!({"phase": if terminating { "Terminating" } else { "Active" }});
            }
            Builtin::Crd => {
                let parsed = resources::from_crd(new)?;
                let conditions: Vec<Value> = ["NamesAccepted", "Established"]
                    .iter()
                    .map(|t| json!({"type": t, "status": "True", "reason": if *t == "Established" { "InitialNamesAccepted" } else { "NoConflicts" }, "message": "", "lastTransitionTime": now()}))
                    .collect();
                let names = new.pointer("/spec/names").cloned().unwrap_or(Value::Null);
                let mut accepted = names;
                if accepted.get("singular").is_none() {
                    accepted["singular"] = json!(parsed.singular);
                }
                if accepted.get("listKind").is_none() {
                    accepted["listKind"] = json!(parsed.list_kind);
                }
                new["status"] = json!({
                    "conditions": conditions,
                    "acceptedNames": accepted,
                    "storedVersions": [parsed.versions.first()],
                });
            }
            Builtin::Custom => {
                if let Some(schema) = rt.schema(storage) {
                    resources::prune(schema, new, true);
                    resources::apply_defaults(schema, new);
                }
            }
            Builtin::ServiceAccount | Builtin::Event | Builtin::Lease => {}
        }
        Ok(())
    }

    fn commit(&mut self, rt: &ResourceType, old: Option<Arc<Value>>, mut new: Value) -> Arc<Value> {
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let ns = meta_str(&new, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&new, "name").unwrap_or_default().to_string();
        if let Some(uid) = meta_str(&new, "uid") {
            self.uids
                .insert(uid.to_string(), (rt.key(), (ns.clone(), name.clone())));
        }
        // A garbage-collection pass scans every object, so it runs only when this write can
        // give it work: a deletion in progress, or an owner that is gone, going, or asks for
        // orphaning / foreground deletion. (A pass per write with owner references made every
        // write cost O(objects).)
        if meta(&new).is_some_and(|m| m.contains_key("deletionTimestamp"))
            || self.owners_need_collection(&new)
        {
            self.gc_pending = true;
        }
        let obj = Arc::new(new);
        self.objects
            .entry(rt.key())
            .or_default()
            .insert((ns.clone(), name), obj.clone());
        let kind = if old.is_some() {
            EventKind::Modified
        } else {
            EventKind::Added
        };
        self.push_log(LogEntry {
            rv: self.rv,
            res: rt.key(),
            ns,
            kind,
            obj: obj.clone(),
            old,
        });
        if rt.builtin == Builtin::Crd
            && let Ok(t) = resources::from_crd(&obj)
        {
            self.types.insert(t.key(), Arc::new(t));
        }
        obj
    }

    fn push_log(&mut self, entry: LogEntry) {
        self.log.push_back(entry);
        while self.log.len() > self.max_log {
            if let Some(e) = self.log.pop_front() {
                self.compacted = e.rv;
            }
        }
        self.notify.send_replace(self.rv);
    }

    /// Removes an object for good (its finalizers are done).
    fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let old = self
            .objects
            .get_mut(&rt.key())?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let mut last = (*old).clone();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        if let Some(uid) = meta_str(&last, "uid") {
            self.uids.remove(uid);
        }
        self.gc_pending = true;
        let obj = Arc::new(last);
        self.push_log(LogEntry {
            rv: self.rv,
            res: rt.key(),
            ns: ns.to_string(),
            kind: EventKind::Deleted,
            obj: obj.clone(),
            old: Some(old),
        });
        if rt.builtin == Builtin::Crd
            && let Ok(t) = resources::from_crd(&obj)
        {
            // Deleting a CRD deletes its custom resources.
            let key = t.key();
            let names: Vec<ObjKey> = self
                .objects
                .get(&key)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ons, oname) in names {
                self.remove(&t, &ons, &oname);
            }
            self.types.remove(&key);
        }
        Some(obj)
    }

    /// Stores a prepared object, or removes it when it is deleting and has no finalizers left.
    fn store(
        &mut self,
        rt: &ResourceType,
        old: Option<Arc<Value>>,
        new: Value,
        dry_run: bool,
    ) -> Arc<Value> {
        if let Some(o) = &old
            && same_content(o, &new)
        {
            return o.clone();
        }
        if dry_run {
            return Arc::new(new);
        }
        let deleting = meta(&new).is_some_and(|m| m.contains_key("deletionTimestamp"));
        let namespace_pending = rt.builtin == Builtin::Namespace
            && new
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        if deleting && finalizers(&new).is_empty() && !namespace_pending {
            let ns = meta_str(&new, "namespace").unwrap_or_default().to_string();
            let name = meta_str(&new, "name").unwrap_or_default().to_string();
            return self.remove(rt, &ns, &name).unwrap_or_else(|| Arc::new(new));
        }
        let created_namespace = (rt.builtin == Builtin::Namespace && old.is_none())
            .then(|| meta_str(&new, "name").unwrap_or_default().to_string());
        let stored = self.commit(rt, old, new);
        if let Some(namespace) = created_namespace {
            self.publish_namespace_defaults(&namespace);
        }
        stored
    }

    /// What kube-controller-manager puts into every new namespace: the root CA publisher's
    /// `kube-root-ca.crt` ConfigMap and the service-account controller's `default`
    /// ServiceAccount. Tests see the same namespace contents as on a real cluster.
    fn publish_namespace_defaults(&mut self, namespace: &str) {
        let opts = WriteOpts {
            manager: "kube-controller-manager".into(),
            dry_run: false,
        };
        let defaults = [
            (
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": ROOT_CA_CONFIG_MAP, "namespace": namespace},
                       "data": {"ca.crt": ROOT_CA_PEM}}),
            ),
            (
                "serviceaccounts",
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "default", "namespace": namespace}}),
            ),
        ];
        for (plural, obj) in defaults {
            let Some(rt) = self.types.get(&(String::new(), plural.to_owned())).cloned() else {
                continue;
            };
            // Cannot fail for a namespace that was just created; an object someone created
            // first (a race a real cluster has too) is kept.
            let _ = self.create(&rt, "v1", Some(namespace), obj, &opts);
        }
    }

    pub(crate) fn create(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        if let (Some(want), Some(got)) =
            (ns.filter(|_| rt.namespaced), meta_str(&body, "namespace"))
            && want != got
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let scope = if rt.status_subresource {
            Scope::Main
        } else {
            Scope::All
        };
        let new = self.prepare(rt, version, ns, None, body, scope, Some(&opts.manager))?;
        let name = meta_str(&new, "name").unwrap_or_default().to_string();
        self.check_namespace(rt, ns, &name)?;
        if self.get(rt, ns, &name).is_ok() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        Ok(self.store(rt, None, new, opts.dry_run))
    }

    fn scope_for(rt: &ResourceType, status: bool) -> Scope {
        match (rt.status_subresource, status) {
            (false, _) => Scope::All,
            (true, false) => Scope::Main,
            (true, true) => Scope::Status,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        body: Value,
        status: bool,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        if meta_str(&body, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&body, "name").unwrap_or_default()
            )));
        }
        let old = self.get(rt, ns, name)?;
        let rv = meta_str(&body, "resourceVersion").unwrap_or_default();
        if rv.is_empty() {
            if rt.builtin == Builtin::Custom {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    &[(
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0: must be specified for an update".into(),
                    )],
                ));
            }
        } else if Some(rv) != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(&rt.group, &rt.plural, name));
        }
        let new = self.prepare(
            rt,
            version,
            ns,
            Some(&old),
            body,
            Self::scope_for(rt, status),
            Some(&opts.manager),
        )?;
        Ok(self.store(rt, Some(old), new, opts.dry_run))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        status: bool,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let old = self.get(rt, ns, name)?;
        let mut doc = Self::at_version(rt, version, &old);
        match kind {
            PatchKind::Json => crate::patch::json_patch(&mut doc, patch)?,
            PatchKind::Merge => crate::patch::merge_patch(&mut doc, patch),
            PatchKind::Strategic => crate::patch::strategic_merge(&mut doc, patch),
        }
        let want_rv = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if let Some(rv) = want_rv
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::stale(&rt.group, &rt.plural, name));
        }
        let new = self.prepare(
            rt,
            version,
            ns,
            Some(&old),
            doc,
            Self::scope_for(rt, status),
            Some(&opts.manager),
        )?;
        Ok(self.store(rt, Some(old), new, opts.dry_run))
    }

    /// Server-side apply (creates the object when it does not exist).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        config: &Value,
        force: bool,
        status: bool,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        if config.get("apiVersion").is_none() || config.get("kind").is_none() {
            return Err(ApiError::bad_request(
                "invalid object type: apiVersion and kind must be set in an apply configuration",
            ));
        }
        if config.get("kind").and_then(Value::as_str) != Some(rt.kind.as_str()) {
            return Err(ApiError::bad_request(format!(
                "the kind of the applied object ({}) does not match {}",
                config["kind"], rt.kind
            )));
        }
        if meta_str(config, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let old = self.get(rt, ns, name).ok();
        if let (Some(o), Some(rv)) = (&old, meta_str(config, "resourceVersion"))
            && Some(rv) != meta_str(o, "resourceVersion")
        {
            return Err(ApiError::stale(&rt.group, &rt.plural, name));
        }
        if old.is_none() && status {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        }
        let scope = Self::scope_for(rt, status);
        let storage = rt.versions.first().cloned().unwrap_or_default();
        let shell = match &old {
            Some(o) => (**o).clone(),
            None => {
                self.check_namespace(rt, ns, name)?;
                json!({"apiVersion": rt.api_version(&storage), "kind": rt.kind, "metadata": {"name": name}})
            }
        };
        let mut config = config.clone();
        if rt.builtin == Builtin::Secret {
            // stringData is write-only: apply it as the data it becomes.
            self.normalize(rt, &storage, None, &mut config, name).ok();
        }
        let w = Write {
            manager: &opts.manager,
            scope,
            schema: rt.schema(&storage),
            api_version: &rt.api_version(version),
            now: &now(),
        };
        let merged = managed::apply(&shell, &config, force, &w).map_err(|conflicts| {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                .collect();
            let text: Vec<String> = conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field)).collect();
            let mut e = ApiError::conflict(&rt.group, &rt.plural, name, &format!("Apply failed with {} conflict{}: {}", conflicts.len(), if conflicts.len() == 1 { "" } else { "s" }, text.join(", ")));
            if let Some(d) = e.details.as_mut() {
                d["causes"] = Value::Array(causes);
            }
            e
        })?;
        let new = self.prepare(rt, version, ns, old.as_deref(), merged, scope, None)?;
        if old.is_none() && self.get(rt, ns, name).is_ok() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, name));
        }
        Ok(self.store(rt, old, new, opts.dry_run))
    }

    /// Deletes an object: at once when nothing holds it, otherwise by setting
    /// `deletionTimestamp` and leaving it to its finalizers. Returns the HTTP code and body.
    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<(u16, Value), ApiError> {
        let old = self.get(rt, ns, name)?;
        if let Some(uid) = &opts.uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        let policy = opts
            .propagation
            .clone()
            .unwrap_or_else(|| match opts.orphan_dependents {
                Some(true) => "Orphan".into(),
                _ => "Background".into(),
            });
        let mut fins = finalizers(&old);
        let add = match policy.as_str() {
            "Foreground" => Some("foregroundDeletion"),
            "Orphan" => Some("orphan"),
            "Background" => None,
            other => {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    &[(
                        "propagationPolicy",
                        "FieldValueNotSupported",
                        format!("Unsupported value: \"{other}\""),
                    )],
                ));
            }
        };
        let already = meta(&old).is_some_and(|m| m.contains_key("deletionTimestamp"));
        if let Some(f) = add
            && !fins.iter().any(|x| x == f)
            && (!already || !fins.is_empty())
        {
            fins.push(f.to_string());
        }
        let code = if policy == "Foreground" || opts.orphan_dependents == Some(false) {
            202
        } else {
            200
        };
        if !fins.is_empty() || rt.builtin == Builtin::Namespace {
            let mut new = (*old).clone();
            set_finalizers(&mut new, &fins);
            let m = meta_mut(&mut new);
            if !already {
                m.insert("deletionTimestamp".into(), json!(now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                if rt.generation {
                    let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                    m.insert("generation".into(), json!(g + 1));
                }
            }
            if rt.builtin == Builtin::Namespace {
                new["status"] = json!({"phase": "Terminating"});
            }
            let stored = self.store(rt, Some(old), new, opts.dry_run);
            self.gc_pending = true;
            return Ok((code, Self::at_version(rt, version, &stored)));
        }
        let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        let gone = if opts.dry_run {
            Some(old.clone())
        } else {
            self.remove(rt, ns.unwrap_or_default(), name)
        };
        let body = match gone {
            Some(o) if rt.returns_deleted_object() => Self::at_version(rt, version, &o),
            _ => status::success(&rt.group, &rt.plural, name, &uid),
        };
        Ok((200, body))
    }

    /// Whether an owner of `obj` is missing, being deleted, or carries a finalizer the
    /// collector acts on.
    fn owners_need_collection(&self, obj: &Value) -> bool {
        let Some(refs) = meta(obj)
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
        else {
            return false;
        };
        refs.iter().any(|r| {
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or_default();
            match self.lookup_uid(uid) {
                None => true,
                Some((_, owner)) => {
                    meta(&owner).is_some_and(|m| m.contains_key("deletionTimestamp"))
                        || finalizers(&owner)
                            .iter()
                            .any(|f| f == "orphan" || f == "foregroundDeletion")
                }
            }
        })
    }

    fn lookup_uid(&self, uid: &str) -> Option<(Arc<ResourceType>, Arc<Value>)> {
        let (rk, ok) = self.uids.get(uid)?;
        let rt = self.types.get(rk)?.clone();
        let obj = self.objects.get(rk)?.get(ok)?.clone();
        Some((rt, obj))
    }

    fn rewrite(&mut self, rt: &ResourceType, obj: &Value, f: impl FnOnce(&mut Value)) {
        let mut new = obj.clone();
        f(&mut new);
        let old = Arc::new(obj.clone());
        self.store(rt, Some(old), new, false);
    }

    /// One pass of what kube-controller-manager's garbage collector and namespace controller
    /// do. Returns whether anything changed (so the caller runs another pass).
    pub(crate) fn collect_garbage(&mut self) -> bool {
        enum Action {
            Delete(Arc<ResourceType>, String, String),
            DropOwner(Arc<ResourceType>, Arc<Value>, String),
            DropFinalizer(Arc<ResourceType>, Arc<Value>, &'static str),
            FinishNamespace(Arc<ResourceType>, Arc<Value>),
        }
        let mut actions = Vec::new();
        let mut referenced: HashMap<String, bool> = HashMap::new();
        let mut ns_content: HashMap<String, Vec<Typed>> = HashMap::new();
        let terminating: Vec<(String, Arc<Value>)> = self
            .objects
            .get(&(String::new(), "namespaces".to_string()))
            .map(|m| {
                m.iter()
                    .filter(|(_, o)| meta(o).is_some_and(|m| m.contains_key("deletionTimestamp")))
                    .map(|((_, n), o)| (n.clone(), o.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (rk, objs) in &self.objects {
            let Some(rt) = self.types.get(rk) else {
                continue;
            };
            for ((ns, name), obj) in objs {
                if !ns.is_empty() && terminating.iter().any(|(n, _)| n == ns) {
                    ns_content
                        .entry(ns.clone())
                        .or_default()
                        .push((rt.clone(), obj.clone()));
                }
                let Some(refs) = meta(obj)
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array)
                else {
                    continue;
                };
                if refs.is_empty() {
                    continue;
                }
                let mut any_alive = false;
                let mut delete = false;
                for r in refs {
                    let uid = r.get("uid").and_then(Value::as_str).unwrap_or_default();
                    match self.lookup_uid(uid) {
                        None => {}
                        Some((_, owner)) => {
                            let fins = finalizers(&owner);
                            if fins.iter().any(|f| f == "orphan") {
                                actions.push(Action::DropOwner(
                                    rt.clone(),
                                    obj.clone(),
                                    uid.to_string(),
                                ));
                                any_alive = true;
                                continue;
                            }
                            referenced.insert(uid.to_string(), true);
                            if fins.iter().any(|f| f == "foregroundDeletion") {
                                delete = true;
                            } else {
                                any_alive = true;
                            }
                        }
                    }
                }
                let deleting = meta(obj).is_some_and(|m| m.contains_key("deletionTimestamp"));
                if (!any_alive || delete) && !deleting {
                    actions.push(Action::Delete(rt.clone(), ns.clone(), name.clone()));
                }
            }
        }
        for (rk, objs) in &self.objects {
            let Some(rt) = self.types.get(rk) else {
                continue;
            };
            for obj in objs.values() {
                let fins = finalizers(obj);
                let uid = meta_str(obj, "uid").unwrap_or_default();
                if fins.iter().any(|f| f == "foregroundDeletion") && !referenced.contains_key(uid) {
                    actions.push(Action::DropFinalizer(
                        rt.clone(),
                        obj.clone(),
                        "foregroundDeletion",
                    ));
                }
                if fins.iter().any(|f| f == "orphan")
                    && !actions
                        .iter()
                        .any(|a| matches!(a, Action::DropOwner(_, _, u) if u == uid))
                {
                    actions.push(Action::DropFinalizer(rt.clone(), obj.clone(), "orphan"));
                }
            }
        }
        let ns_type = self
            .types
            .get(&(String::new(), "namespaces".to_string()))
            .cloned();
        for (name, nsobj) in &terminating {
            match ns_content.get(name) {
                Some(content) => {
                    for (rt, obj) in content {
                        if !meta(obj).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                            actions.push(Action::Delete(
                                rt.clone(),
                                name.clone(),
                                meta_str(obj, "name").unwrap_or_default().to_string(),
                            ));
                        }
                    }
                }
                None => {
                    if let Some(t) = &ns_type
                        && nsobj
                            .pointer("/spec/finalizers")
                            .and_then(Value::as_array)
                            .is_some_and(|a| !a.is_empty())
                    {
                        actions.push(Action::FinishNamespace(t.clone(), nsobj.clone()));
                    }
                }
            }
        }
        let changed = !actions.is_empty();
        for a in actions {
            match a {
                Action::Delete(rt, ns, name) => {
                    let v = rt.versions.first().cloned().unwrap_or_default();
                    let ns = (!ns.is_empty()).then_some(ns);
                    let _ = self.delete(&rt, &v, ns.as_deref(), &name, &DeleteOpts::default());
                }
                Action::DropOwner(rt, obj, uid) => {
                    let current = self.current(&rt, &obj);
                    if let Some(cur) = current {
                        self.rewrite(&rt, &cur, |o| {
                            let m = meta_mut(o);
                            if let Some(Value::Array(refs)) = m.get_mut("ownerReferences") {
                                refs.retain(|r| {
                                    r.get("uid").and_then(Value::as_str) != Some(uid.as_str())
                                });
                                if refs.is_empty() {
                                    m.remove("ownerReferences");
                                }
                            }
                        });
                    }
                }
                Action::DropFinalizer(rt, obj, fin) => {
                    if let Some(cur) = self.current(&rt, &obj) {
                        self.rewrite(&rt, &cur, |o| {
                            let f: Vec<String> =
                                finalizers(o).into_iter().filter(|x| x != fin).collect();
                            set_finalizers(o, &f);
                        });
                    }
                }
                Action::FinishNamespace(rt, obj) => {
                    if let Some(cur) = self.current(&rt, &obj) {
                        self.rewrite(&rt, &cur, |o| o["spec"]["finalizers"] = json!([]));
                    }
                }
            }
        }
        changed
    }

    fn current(&self, rt: &ResourceType, obj: &Value) -> Option<Arc<Value>> {
        let ns = meta_str(obj, "namespace");
        self.get(rt, ns, meta_str(obj, "name").unwrap_or_default())
            .ok()
    }
}

/// The API server's object-meta validation: at most one owner reference is the controller.
fn check_controller_references(rt: &ResourceType, new: &Value, name: &str) -> Result<(), ApiError> {
    let controllers: Vec<&str> = new
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| r.get("name").and_then(Value::as_str).unwrap_or_default())
        .collect();
    if controllers.len() < 2 {
        return Ok(());
    }
    Err(ApiError::invalid(
        &rt.group,
        &rt.kind,
        name,
        &[(
            "metadata.ownerReferences",
            "FieldValueInvalid",
            format!(
                "Invalid value: []v1.OwnerReference{{...}}: Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        )],
    ))
}

fn check_immutable(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &Value,
    name: &str,
    fields: &[&str],
) -> Result<(), ApiError> {
    let Some(old) = old else { return Ok(()) };
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let msg = "Forbidden: field is immutable when `immutable` is set".to_string();
    let mut causes: Vec<(&str, &str, String)> = Vec::new();
    for f in fields {
        if old.get(*f) != new.get(*f) {
            causes.push((f, "FieldValueForbidden", msg.clone()));
        }
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        causes.push(("immutable", "FieldValueForbidden", msg.clone()));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.group, &rt.kind, name, &causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn uids_look_like_uuids_and_differ() {
        let (a, b) = (new_uid(), new_uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
