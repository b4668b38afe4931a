//! Request routing: discovery, the resource verbs, watch streams, and fault injection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::ServerConfig;
use crate::faults::{FaultAction, Faults, reason_for};
use crate::resources::{Builtin, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{self, DeleteOpts, EventKind, PatchKind, Store, WriteOpts};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// State shared by every connection of one server.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) config: ServerConfig,
    pub(crate) events: tokio::sync::watch::Receiver<u64>,
    pub(crate) gc: tokio::sync::Notify,
    pub(crate) addr: Mutex<String>,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn full(code: u16, body: Bytes, content_type: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    full(code, Bytes::from(v.to_string()), "application/json")
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_json())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A resource path, parsed.
struct ResourcePath {
    group: String,
    version: String,
    plural: String,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Version,
    Health,
    ApiVersions,
    ApiGroups,
    GroupVersion(String, String),
    Resource(ResourcePath),
    OpenApiRoot,
    OpenApiGroup(String, String),
    OpenApi,
    Unknown,
}

fn route(path: &str, store: &Store) -> Route {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest): (&str, &str, &[&str]) = match s.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz", ..] => return Route::Health,
        ["openapi", "v3"] => return Route::OpenApiRoot,
        ["openapi", "v3", "api", v] => return Route::OpenApiGroup(String::new(), (*v).to_string()),
        ["openapi", "v3", "apis", g, v] => {
            return Route::OpenApiGroup((*g).to_string(), (*v).to_string());
        }
        ["openapi", ..] => return Route::OpenApi,
        ["api"] => return Route::ApiVersions,
        ["apis"] => return Route::ApiGroups,
        ["api", v] => return Route::GroupVersion(String::new(), (*v).to_string()),
        ["apis", g, v] => return Route::GroupVersion((*g).to_string(), (*v).to_string()),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::Unknown,
    };
    let namespaced_plural = |p: &str| {
        store
            .find_type(group, version, p)
            .is_some_and(|t| t.namespaced)
    };
    let (ns, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced_plural(plural) => {
            (Some(*ns), &rest[2..][..1 + tail.len()])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, sub] => (*p, Some(*n), Some(*sub)),
        _ => return Route::Unknown,
    };
    Route::Resource(ResourcePath {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        ns: ns.map(String::from),
        name: name.map(String::from),
        sub: sub.map(String::from),
    })
}

fn verb_of(method: &Method, rp: &ResourcePath, query: &HashMap<String, String>) -> &'static str {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method.as_str(), rp.name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// Serves one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let query = parse_query(parts.uri.query());
    let path = parts.uri.path().to_string();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, accept, user_agent) = (
        header("content-type"),
        header("accept"),
        header("user-agent"),
    );

    let route = route(&path, &shared.store());
    let (verb, resource) = match &route {
        Route::Resource(rp) => (
            verb_of(&parts.method, rp, &query),
            match &rp.sub {
                Some(s) => format!("{}/{s}", rp.plural),
                None => rp.plural.clone(),
            },
        ),
        _ => ("get", String::new()),
    };
    let (latency, action) = {
        let mut f = shared.faults();
        (f.latency, f.take(verb, &resource))
    };
    if let Some(l) = latency {
        tokio::time::sleep(l).await;
    }
    match action {
        Some(FaultAction::Status(code)) => {
            let e = ApiError::new(
                code,
                reason_for(code),
                format!("injected fault: {verb} {resource}"),
            );
            let mut r = error_response(&e);
            if code == 429
                && let Ok(v) = "1".parse()
            {
                r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
        Some(FaultAction::Hang) => std::future::pending::<()>().await,
        Some(FaultAction::CloseConnection) => {
            return Err(std::io::Error::other("injected fault: connection closed"));
        }
        None => {}
    }

    let resp = match route {
        Route::Version => json_response(200, &version_info()),
        Route::Health => full(200, Bytes::from_static(b"ok"), "text/plain"),
        Route::OpenApi => error_response(&ApiError::new(
            404,
            "NotFound",
            "eso-test-apiserver serves only a minimal OpenAPI v3",
        )),
        Route::OpenApiRoot => json_response(200, &openapi_root(&shared.store())),
        Route::OpenApiGroup(g, v) => match openapi_group(&shared.store(), &g, &v) {
            Some(doc) => json_response(200, &doc),
            None => error_response(&ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )),
        },
        Route::ApiVersions => {
            let addr = shared
                .addr
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]}),
            )
        }
        Route::ApiGroups => json_response(200, &api_groups(&shared.store())),
        Route::GroupVersion(g, v) => match resource_list(&shared.store(), &g, &v) {
            Some(l) => json_response(200, &l),
            None => error_response(&ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )),
        },
        Route::Unknown => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
        Route::Resource(rp) => {
            let ctx = Ctx {
                query,
                content_type,
                accept,
                user_agent,
                verb,
            };
            match serve_resource(&shared, &parts.method, &rp, &ctx, &body).await {
                Ok(r) => r,
                Err(e) => error_response(&e),
            }
        }
    };
    if verb != "get" && verb != "list" && verb != "watch" {
        shared.gc.notify_one();
    }
    Ok(resp)
}

fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-eso-test", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
    })
}

fn group_versions(store: &Store) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for rt in store.types() {
        if rt.group.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| *g == rt.group) {
            Some((_, vs)) => {
                for v in &rt.versions {
                    if !vs.contains(v) {
                        vs.push(v.clone());
                    }
                }
            }
            None => out.push((rt.group.clone(), rt.versions.clone())),
        }
    }
    out
}

fn api_groups(store: &Store) -> Value {
    let groups: Vec<Value> = group_versions(store)
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The OpenAPI v3 index: one document per group-version.
fn openapi_root(store: &Store) -> Value {
    let mut paths = serde_json::Map::new();
    let hash = store.resource_version();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": format!("/openapi/v3/api/v1?hash={hash}")}),
    );
    for (g, vs) in group_versions(store) {
        for v in vs {
            paths.insert(
                format!("apis/{g}/{v}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/{v}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// A group-version document with no schemas, only the PATCH operations and their
/// `fieldValidation` parameter: enough for kubectl to leave validation to the server (which
/// does not validate values; see the crate docs) instead of downloading OpenAPI v2.
fn openapi_group(store: &Store, group: &str, version: &str) -> Option<Value> {
    if !store.group_served(group, version) {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    for rt in store
        .types()
        .filter(|rt| rt.group == group && rt.versions.iter().any(|v| v == version))
    {
        let path = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{prefix}/{}/{{name}}", rt.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": rt.kind});
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        ]);
        let op = json!({"operationId": format!("patch{}", rt.kind), "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": {"200": {"description": "OK"}}});
        paths.insert(path, json!({"patch": op, "put": {"x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": {"200": {"description": "OK"}}}}));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "components": {"schemas": {}}}),
    )
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_list(store: &Store, group: &str, version: &str) -> Option<Value> {
    if !store.group_served(group, version) {
        return None;
    }
    let mut resources = Vec::new();
    for rt in store
        .types()
        .filter(|rt| rt.group == group && rt.versions.iter().any(|v| v == version))
    {
        let mut r = json!({
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
            "verbs": VERBS, "storageVersionHash": "",
        });
        if !rt.short_names.is_empty() {
            r["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            r["categories"] = json!(rt.categories);
        }
        resources.push(r);
        let sub = |name: &str, verbs: &[&str], kind: &str| json!({"name": format!("{}/{name}", rt.plural), "singularName": "", "namespaced": rt.namespaced, "kind": kind, "verbs": verbs});
        if rt.status_subresource {
            resources.push(sub("status", &["get", "patch", "update"], &rt.kind));
        }
        match rt.builtin {
            Builtin::Namespace => resources.push(sub("finalize", &["update"], &rt.kind)),
            Builtin::ServiceAccount => resources.push(sub("token", &["create"], "TokenRequest")),
            _ => {}
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

struct Ctx {
    query: HashMap<String, String>,
    content_type: String,
    accept: String,
    user_agent: String,
    verb: &'static str,
}

impl Ctx {
    fn q(&self, k: &str) -> Option<&str> {
        self.query
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn write_opts(&self) -> WriteOpts {
        let manager = self.q("fieldManager").map(String::from).unwrap_or_else(|| {
            let ua = self.user_agent.split('/').next().unwrap_or_default();
            if ua.is_empty() {
                "unknown".into()
            } else {
                ua.to_string()
            }
        });
        WriteOpts {
            manager,
            dry_run: self.q("dryRun") == Some("All"),
        }
    }

    fn table(&self) -> bool {
        self.accept.contains("as=Table")
    }
}

fn parse_body(ct: &str, body: &[u8]) -> Result<Value, ApiError> {
    if ct.contains("protobuf") {
        return crate::protobuf::decode(body);
    }
    if ct.contains("cbor") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("eso-test-apiserver only accepts JSON (and YAML for apply), not {ct}"),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(e) if ct.contains("yaml") => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request(format!("invalid body: {e}")))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))
        }
        Err(e) => Err(ApiError::bad_request(format!("invalid JSON body: {e}"))),
    }
}

async fn serve_resource(
    shared: &Arc<Shared>,
    method: &Method,
    rp: &ResourcePath,
    ctx: &Ctx,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    if rp.group == "authentication.k8s.io" && rp.plural == "tokenreviews" && *method == Method::POST
    {
        return token_review(&ctx.content_type, body);
    }
    let Some(rt) = shared.store().find_type(&rp.group, &rp.version, &rp.plural) else {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    if rt.namespaced && rp.name.is_some() && rp.ns.is_none() {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let ns = rp.ns.as_deref().filter(|_| rt.namespaced);
    let status = match rp.sub.as_deref() {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some("finalize") if rt.builtin == Builtin::Namespace && *method == Method::PUT => {
            return update(shared, &rt, rp, ns, ctx, body, false);
        }
        Some("token") if rt.builtin == Builtin::ServiceAccount && *method == Method::POST => {
            return token(shared, &rt, rp, ns, &ctx.content_type, body);
        }
        Some(s) => {
            return Err(ApiError::not_implemented(format!(
                "the {} subresource {s} for {}",
                rp.plural, method
            )));
        }
    };
    let v = rp.version.as_str();
    match (ctx.verb, rp.name.as_deref()) {
        ("get", Some(name)) => {
            let obj = shared.store().get(&rt, ns, name)?;
            let obj = Store::at_version(&rt, v, &obj);
            if ctx.table() {
                return Ok(json_response(200, &table(&rt, &[obj], None)));
            }
            Ok(json_response(200, &obj))
        }
        ("list", None) => list(shared, &rt, rp, ns, ctx),
        ("watch", _) => watch(shared, rt.clone(), rp, ns, ctx),
        ("create", None) => {
            let body = parse_body(&ctx.content_type, body)?;
            let obj = shared.store().create(&rt, v, ns, body, &ctx.write_opts())?;
            Ok(json_response(201, &Store::at_version(&rt, v, &obj)))
        }
        ("update", Some(_)) => update(shared, &rt, rp, ns, ctx, body, status),
        ("patch", Some(name)) => {
            let patch = parse_body(&ctx.content_type, body)?;
            let opts = ctx.write_opts();
            let ct = ctx
                .content_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim();
            let obj = match ct {
                "application/apply-patch+yaml" => {
                    if ctx.q("fieldManager").is_none() {
                        return Err(ApiError::invalid(
                            "meta.k8s.io",
                            "PatchOptions",
                            "",
                            &[(
                                "fieldManager",
                                "FieldValueRequired",
                                "Required value: is required for apply patch".into(),
                            )],
                        ));
                    }
                    let force = ctx.q("force") == Some("true");
                    let created = shared.store().get(&rt, ns, name).is_err();
                    let obj = shared
                        .store()
                        .apply(&rt, v, ns, name, &patch, force, status, &opts)?;
                    return Ok(json_response(
                        if created { 201 } else { 200 },
                        &Store::at_version(&rt, v, &obj),
                    ));
                }
                "application/json-patch+json" => PatchKind::Json,
                "application/merge-patch+json" => PatchKind::Merge,
                "application/strategic-merge-patch+json" if rt.builtin != Builtin::Custom => {
                    PatchKind::Strategic
                }
                other => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                        ),
                    ));
                }
            };
            let obj = shared
                .store()
                .patch(&rt, v, ns, name, obj, &patch, status, &opts)?;
            Ok(json_response(200, &Store::at_version(&rt, v, &obj)))
        }
        ("delete", Some(name)) => {
            let opts = delete_opts(ctx, body)?;
            let (code, body) = shared.store().delete(&rt, v, ns, name, &opts)?;
            Ok(json_response(code, &body))
        }
        ("deletecollection", None) => {
            let opts = delete_opts(ctx, body)?;
            let label = LabelSelector::parse(ctx.q("labelSelector").unwrap_or_default())?;
            let field = FieldSelector::parse(&rt, ctx.q("fieldSelector").unwrap_or_default())?;
            let mut store = shared.store();
            let page = store.list(
                &rt,
                ns,
                &|o| label.matches(o) && field.matches(o),
                None,
                None,
            )?;
            let mut items = Vec::new();
            for o in page.items {
                let ons = store::meta_str(&o, "namespace").map(String::from);
                let oname = store::meta_str(&o, "name").unwrap_or_default().to_string();
                if let Ok((_, b)) = store.delete(&rt, v, ons.as_deref(), &oname, &opts) {
                    items.push(if b.get("kind") == Some(&json!("Status")) {
                        Store::at_version(&rt, v, &o)
                    } else {
                        b
                    });
                }
            }
            let rv = store.resource_version();
            Ok(json_response(
                200,
                &json!({"kind": rt.list_kind, "apiVersion": rt.api_version(v), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_supported(&format!(
            "{method} {}",
            rp.plural
        ))),
    }
}

fn update(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    rp: &ResourcePath,
    ns: Option<&str>,
    ctx: &Ctx,
    body: &[u8],
    status: bool,
) -> Result<Response<Body>, ApiError> {
    let name = rp.name.as_deref().unwrap_or_default();
    let body = parse_body(&ctx.content_type, body)?;
    let obj = shared
        .store()
        .update(rt, &rp.version, ns, name, body, status, &ctx.write_opts())?;
    Ok(json_response(
        200,
        &Store::at_version(rt, &rp.version, &obj),
    ))
}

fn delete_opts(ctx: &Ctx, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        parse_body("application/json", body)?
    };
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    Ok(DeleteOpts {
        propagation: s(b.get("propagationPolicy"))
            .or_else(|| ctx.q("propagationPolicy").map(String::from)),
        orphan_dependents: b
            .get("orphanDependents")
            .and_then(Value::as_bool)
            .or_else(|| ctx.q("orphanDependents").map(|v| v == "true")),
        uid: s(b.pointer("/preconditions/uid")),
        resource_version: s(b.pointer("/preconditions/resourceVersion")),
        dry_run: ctx.q("dryRun") == Some("All")
            || b.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All")),
    })
}

/// A TokenReview against this server's own audience: a token is authenticated when it is one
/// of the TokenRequest tokens this server mints (an unsigned JWT), unexpired, with the API
/// server's audience `https://kubernetes.default.svc` among its audiences.
fn token_review(ct: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let review = parse_body(ct, body)?;
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let claims = token
        .split('.')
        .nth(1)
        .and_then(b64url_decode)
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok());
    let now = jiff::Timestamp::now().as_second();
    let authenticated = claims.as_ref().is_some_and(|c| {
        c["iss"] == "https://kubernetes.default.svc"
            && c["exp"].as_i64().is_some_and(|exp| exp > now)
            && c["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "https://kubernetes.default.svc"))
    });
    let mut status = json!({"authenticated": authenticated});
    if authenticated && let Some(c) = &claims {
        status["user"] = json!({"username": c["sub"]});
        status["audiences"] = json!(["https://kubernetes.default.svc"]);
    }
    Ok(json_response(
        201,
        &json!({
            "kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": review.get("spec").cloned().unwrap_or_else(|| json!({})),
            "status": status,
        }),
    ))
}

fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(((bits >> count) & 0xff) as u8);
        }
    }
    Some(out)
}

fn b64url(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// `serviceaccounts/token`: an unsigned JWT with the usual service-account claims.
fn token(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    rp: &ResourcePath,
    ns: Option<&str>,
    ct: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let name = rp.name.as_deref().unwrap_or_default();
    let sa = shared.store().get(rt, ns, name)?;
    let req = if body.is_empty() {
        json!({})
    } else {
        parse_body(ct, body)?
    };
    let ttl = req
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let audiences = req
        .pointer("/spec/audiences")
        .cloned()
        .unwrap_or_else(|| json!(["https://kubernetes.default.svc"]));
    let now = jiff::Timestamp::now().as_second();
    let ns = ns.unwrap_or_default();
    let claims = json!({
        "iss": "https://kubernetes.default.svc", "sub": format!("system:serviceaccount:{ns}:{name}"), "aud": audiences,
        "iat": now, "nbf": now, "exp": now + ttl,
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": store::meta_str(&sa, "uid")}},
    });
    let jwt = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    );
    let exp = jiff::Timestamp::from_second(now + ttl)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    Ok(json_response(
        201,
        &json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": {"audiences": audiences, "expirationSeconds": ttl},
            "status": {"token": jwt, "expirationTimestamp": exp},
        }),
    ))
}

fn age(obj: &Value) -> String {
    let created =
        store::meta_str(obj, "creationTimestamp").and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let Some(c) = created else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - c.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The `meta.k8s.io/v1` Table kubectl asks for when it prints for humans.
fn table(rt: &ResourceType, objs: &[Value], rv: Option<u64>) -> Value {
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| json!({"cells": [store::meta_str(o, "name").unwrap_or_default(), age(o)], "object": o}))
        .collect();
    let mut meta = json!({});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": format!("Name of the {}", rt.kind), "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp", "priority": 0},
        ],
        "rows": rows,
    })
}

fn list(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    rp: &ResourcePath,
    ns: Option<&str>,
    ctx: &Ctx,
) -> Result<Response<Body>, ApiError> {
    let label = LabelSelector::parse(ctx.q("labelSelector").unwrap_or_default())?;
    let field = FieldSelector::parse(rt, ctx.q("fieldSelector").unwrap_or_default())?;
    let limit = match ctx.q("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l}")))?,
        )
        .filter(|l| *l > 0),
        None => None,
    };
    let page = shared.store().list(
        rt,
        ns,
        &|o| label.matches(o) && field.matches(o),
        limit,
        ctx.q("continue"),
    )?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|o| Store::at_version(rt, &rp.version, o))
        .collect();
    if ctx.table() {
        return Ok(json_response(200, &table(rt, &items, Some(page.rv))));
    }
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = page.continue_token {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(page.remaining);
    }
    Ok(json_response(
        200,
        &json!({"kind": rt.list_kind, "apiVersion": rt.api_version(&rp.version), "metadata": meta, "items": items}),
    ))
}

struct WatchFilter {
    ns: Option<String>,
    label: LabelSelector,
    field: FieldSelector,
}

impl WatchFilter {
    fn matches(&self, o: &Value) -> bool {
        self.label.matches(o) && self.field.matches(o)
    }
}

fn event_line(kind: &str, obj: &Value, table_rt: Option<&ResourceType>) -> Bytes {
    let obj = match table_rt {
        Some(rt) if kind != "ERROR" && kind != "BOOKMARK" => {
            table(rt, std::slice::from_ref(obj), None)
        }
        _ => obj.clone(),
    };
    let mut line = json!({"type": kind, "object": obj}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(
    shared: &Arc<Shared>,
    rt: Arc<ResourceType>,
    rp: &ResourcePath,
    ns: Option<&str>,
    ctx: &Ctx,
) -> Result<Response<Body>, ApiError> {
    let filter = WatchFilter {
        ns: ns.map(String::from),
        label: LabelSelector::parse(ctx.q("labelSelector").unwrap_or_default())?,
        field: FieldSelector::parse(&rt, ctx.q("fieldSelector").unwrap_or_default())?,
    };
    let mut filter = filter;
    if let Some(name) = &rp.name {
        // A watch on a single object (`/secrets/x?watch=true`, as old clients send it).
        filter.field = FieldSelector::parse(&rt, &format!("metadata.name={name}"))?;
    }
    let bookmarks = ctx.q("allowWatchBookmarks") == Some("true");
    let send_initial = ctx.q("sendInitialEvents") == Some("true");
    let timeout = ctx
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let requested = ctx.q("resourceVersion").unwrap_or("0").to_string();
    let version = rp.version.clone();
    let table_rt = ctx.table().then(|| (*rt).clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let shared = shared.clone();
    let bookmark_every = shared.config.bookmark_interval;
    let mut events = shared.events.clone();
    let key = rt.key();
    tokio::spawn(async move {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut lines = Vec::new();
        let mut last = {
            let store = shared.store();
            let start = if requested == "0" || send_initial {
                None
            } else {
                requested.parse::<u64>().ok()
            };
            match start {
                Some(rv) if rv < store.compacted() => {
                    let e = ApiError::gone(rv, store.compacted());
                    lines.push(event_line("ERROR", &e.to_json(), None));
                    u64::MAX
                }
                Some(rv) => rv,
                None => {
                    let page = store.list(
                        &rt,
                        filter.ns.as_deref(),
                        &|o| filter.matches(o),
                        None,
                        None,
                    );
                    for o in page.map(|p| p.items).unwrap_or_default() {
                        lines.push(event_line(
                            "ADDED",
                            &Store::at_version(&rt, &version, &o),
                            table_rt.as_ref(),
                        ));
                    }
                    if send_initial {
                        let mark = json!({"kind": rt.kind, "apiVersion": rt.api_version(&version),
                            "metadata": {"resourceVersion": store.resource_version().to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                        lines.push(event_line("BOOKMARK", &mark, None));
                    }
                    store.resource_version()
                }
            }
        };
        loop {
            for l in lines.drain(..) {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            if last == u64::MAX {
                return;
            }
            let sleep_until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                changed = events.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(bookmark_every), if bookmarks => {
                    let mark = json!({"kind": rt.kind, "apiVersion": rt.api_version(&version), "metadata": {"resourceVersion": last.to_string()}});
                    lines.push(event_line("BOOKMARK", &mark, None));
                    continue;
                }
                _ = tokio::time::sleep_until(sleep_until) => return,
                _ = tx.closed() => return,
            }
            let store = shared.store();
            if last < store.compacted() {
                lines.push(event_line(
                    "ERROR",
                    &ApiError::gone(last, store.compacted()).to_json(),
                    None,
                ));
                last = u64::MAX;
                continue;
            }
            let log = store.log();
            let from = log.partition_point(|e| e.rv <= last);
            for e in log.range(from..) {
                last = e.rv;
                if e.res != key || filter.ns.as_deref().is_some_and(|n| n != e.ns) {
                    continue;
                }
                let now = filter.matches(&e.obj);
                let before = e.old.as_ref().is_some_and(|o| filter.matches(o));
                let kind = match e.kind {
                    EventKind::Modified if now && before => "MODIFIED",
                    EventKind::Modified if now => "ADDED",
                    EventKind::Modified if before => "DELETED",
                    EventKind::Modified => continue,
                    k if now => k.as_str(),
                    _ => continue,
                };
                lines.push(event_line(
                    kind,
                    &Store::at_version(&rt, &version, &e.obj),
                    table_rt.as_ref(),
                ));
            }
            last = last.max(store.resource_version());
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    if let Ok(v) = "application/json".parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = "chunked".parse() {
        r.headers_mut().insert(hyper::header::TRANSFER_ENCODING, v);
    }
    Ok(r)
}
