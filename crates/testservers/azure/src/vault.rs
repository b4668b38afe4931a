//! The Key Vault data plane: routes, the bearer challenge, and the service's error bodies.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::http::{Req, Resp, encode};
use crate::pki;
use crate::state::{Body, Kind, Listener, Recorded, State, Version, now, public_jwk};

const FWLINK: &str =
    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182";

pub(crate) fn error(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn error_inner(status: u16, code: &str, message: &str, inner: &str) -> Resp {
    Resp::json(
        status,
        &json!({"error": {"code": code, "message": message, "innererror": {"code": inner}}}),
    )
}

fn not_found(kind: Kind, name: &str) -> Resp {
    error(
        404,
        kind.not_found_code(),
        &format!(
            "A {} with (name/id) {name} was not found in this key vault. If you recently deleted this {} you may be able to recover it using the correct recovery command. {FWLINK}",
            kind.noun(),
            kind.noun()
        ),
    )
}

fn deleted_conflict(kind: Kind, name: &str) -> Resp {
    let noun = kind.noun();
    let title = format!("{}{}", noun[..1].to_uppercase(), &noun[1..]);
    error_inner(
        409,
        "Conflict",
        &format!(
            "{title} {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the {noun} can only be recovered or purged."
        ),
        "ObjectIsDeletedButRecoverable",
    )
}

pub(crate) fn fault_response(status: u16, retry_after: Option<u64>) -> Resp {
    let resp = match status {
        401 => error(
            401,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        ),
        403 => error_inner(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.",
            "ForbiddenByRbac",
        ),
        404 => error(404, "NotFound", "Not found."),
        429 => error(
            429,
            "Throttled",
            "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
        ),
        503 => error(
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        ),
        s if s >= 500 => error(s, "InternalServerError", "An unexpected error occurred."),
        s => error(s, "BadParameter", "The request was rejected."),
    };
    match retry_after {
        Some(secs) => resp.header("retry-after", secs.to_string()),
        None => resp,
    }
}

fn challenge(st: &State, message: &str) -> Resp {
    error(401, "Unauthorized", message).header(
        "www-authenticate",
        format!(
            "Bearer authorization=\"{}/{}\", resource=\"{}\"",
            st.login_url, st.tenant, st.vault_resource
        ),
    )
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A certificate import's content, parsed before the state is locked (PKCS#12 goes through
/// `openssl`): (leaf DER, stored secret value, content type).
type Parsed = Result<(Vec<u8>, String, String), String>;

fn parse_import(body: &Value) -> Parsed {
    let value = body
        .get("value")
        .and_then(Value::as_str)
        .ok_or("Property value is required")?;
    let content_type = body
        .pointer("/policy/secret_props/contentType")
        .and_then(Value::as_str)
        .unwrap_or("application/x-pkcs12")
        .to_owned();
    if content_type.eq_ignore_ascii_case("application/x-pem-file") {
        let der = pki::pem_blocks(value, "CERTIFICATE")
            .into_iter()
            .next()
            .ok_or("The specified PEM X.509 certificate content is in an unexpected format. Please check if certificate is in valid PEM format.")?;
        return Ok((der, value.to_owned(), content_type));
    }
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let pfx = STANDARD
        .decode(&compact)
        .map_err(|_| "The specified certificate content is not valid base64.".to_owned())?;
    let password = body.get("pwd").and_then(Value::as_str).unwrap_or("");
    let certs = pki::pkcs12_certificates(&pfx, password).map_err(|_| {
        "The specified PKCS#12 X.509 certificate content can not be read. Please check if certificate is in valid PKCS#12 format.".to_owned()
    })?;
    let der = certs
        .into_iter()
        .next()
        .ok_or("The specified PKCS#12 X.509 certificate content holds no certificate.")?;
    Ok((der, compact, content_type))
}

pub(crate) fn handle(shared: &Mutex<State>, req: Req) -> Resp {
    let segments: Vec<String> = req
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let parsed = match (req.method.as_str(), segments.as_slice()) {
        ("POST", [c, _, imp]) if c == "certificates" && imp == "import" => {
            req.json().map(|b| parse_import(&b))
        }
        _ => None,
    };

    let mut st = lock(shared);
    let api_version = req.query("api-version").map(str::to_owned);
    let index = st.log.len();
    st.log.push(Recorded {
        listener: Listener::Vault,
        method: req.method.clone(),
        path: req.path.clone(),
        api_version: api_version.clone(),
        authorized: false,
    });
    if let Some(f) = st.take_fault(Listener::Vault, &req.method, &req.path) {
        return fault_response(f.status, f.retry_after);
    }

    // Authentication first: the service challenges before it looks at anything else, and
    // Microsoft's clients send their first request without a token (and without a body) to
    // learn the authority and resource from the challenge.
    let Some(token) = req.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return challenge(&st, "AKV10000: Request is missing a Bearer or PoP token.");
    };
    let Some(issued) = st.tokens.get(token).cloned() else {
        return challenge(
            &st,
            "AKV10032: Invalid issuer. Expected one of the issuers of this tenant.",
        );
    };
    if issued.expires <= now() {
        return challenge(&st, "AKV10022: Invalid token: the token is expired.");
    }
    if issued.resource.trim_end_matches('/') != st.vault_resource.trim_end_matches('/') {
        return challenge(&st, "AKV10022: Invalid audience.");
    }
    if st.forbidden.contains(&issued.principal) {
        return error_inner(
            403,
            "Forbidden",
            &format!(
                "Caller is not authorized to perform action on resource. Caller: appid={};tenant={}",
                issued.principal, st.tenant
            ),
            "ForbiddenByRbac",
        );
    }
    st.log[index].authorized = true;
    let Some(api_version) = api_version else {
        return error(
            400,
            "BadParameter",
            "The request URI contains an invalid or missing api-version.",
        );
    };
    route(&mut st, &req, &segments, &api_version, parsed)
}

fn kind_of(collection: &str) -> Option<(Kind, bool)> {
    Some(match collection {
        "secrets" => (Kind::Secret, false),
        "keys" => (Kind::Key, false),
        "certificates" => (Kind::Certificate, false),
        "deletedsecrets" => (Kind::Secret, true),
        "deletedkeys" => (Kind::Key, true),
        "deletedcertificates" => (Kind::Certificate, true),
        _ => return None,
    })
}

fn route(
    st: &mut State,
    req: &Req,
    segments: &[String],
    api_version: &str,
    parsed: Option<Parsed>,
) -> Resp {
    let Some((first, rest)) = segments.split_first() else {
        return error(404, "NotFound", "Not found.");
    };
    let Some((kind, deleted)) = kind_of(first) else {
        return error(404, "NotFound", &format!("Unknown collection {first:?}."));
    };
    if let Some(name) = rest.first()
        && !valid_name(name)
    {
        return error(
            400,
            "BadParameter",
            &format!("The request URI contains an invalid name: {name}"),
        );
    }
    let method = req.method.as_str();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (deleted, method, rest.as_slice()) {
        (false, "GET", []) => list(st, req, kind, api_version, None),
        (false, "GET", [name, "versions"]) => list(st, req, kind, api_version, Some(name)),
        (false, "GET", [name]) => get(st, kind, name, None),
        (false, "GET", [name, version]) => get(st, kind, name, Some(version)),
        (false, "PUT", [name]) if kind == Kind::Secret => set_secret(st, req, name),
        (false, "PUT", [name]) if kind == Kind::Key => import_key(st, req, name),
        (false, "POST", [name, "import"]) if kind == Kind::Certificate => {
            import_certificate(st, req, name, parsed)
        }
        (false, "DELETE", [name]) => delete(st, kind, name),
        (true, "GET", [name]) => match st.collection(kind).deleted.get(*name) {
            Some((versions, at)) => match versions.last() {
                Some(v) => Resp::json(200, &st.deleted_bundle(kind, name, v, *at)),
                None => not_found(kind, name),
            },
            None => error(
                404,
                kind.not_found_code(),
                &format!("Deleted {} not found", kind.noun()),
            ),
        },
        (true, "DELETE", [name]) => {
            if st.collection_mut(kind).deleted.remove(*name).is_some() {
                Resp::empty(204)
            } else {
                error(
                    404,
                    kind.not_found_code(),
                    &format!("Deleted {} not found", kind.noun()),
                )
            }
        }
        (true, "POST", [name, "recover"]) => {
            let Some((versions, _)) = st.collection_mut(kind).deleted.remove(*name) else {
                return error(
                    404,
                    kind.not_found_code(),
                    &format!("Deleted {} not found", kind.noun()),
                );
            };
            let bundle = versions
                .last()
                .map(|v| st.bundle(kind, name, v))
                .unwrap_or_else(|| json!({}));
            st.collection_mut(kind)
                .live
                .insert((*name).to_owned(), versions);
            Resp::json(200, &bundle)
        }
        _ => error(
            405,
            "BadParameter",
            &format!("{method} {} is not supported.", req.path),
        ),
    }
}

fn get(st: &State, kind: Kind, name: &str, version: Option<&str>) -> Resp {
    let Some(versions) = st.collection(kind).live.get(name) else {
        return not_found(kind, name);
    };
    let found = match version.filter(|v| !v.is_empty()) {
        Some(v) => versions.iter().find(|x| x.id == v),
        None => versions.last(),
    };
    let Some(v) = found else {
        return not_found(kind, &format!("{name}/{}", version.unwrap_or_default()));
    };
    if !v.enabled && kind == Kind::Secret {
        return error_inner(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            "SecretDisabled",
        );
    }
    Resp::json(200, &st.bundle(kind, name, v))
}

fn list(st: &State, req: &Req, kind: Kind, api_version: &str, versions_of: Option<&str>) -> Resp {
    let page = match req.query("maxresults") {
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => n.min(st.page_size),
            _ => {
                return error(
                    400,
                    "BadParameter",
                    "The value of parameter maxresults is out of range (1 to 25).",
                );
            }
        },
        None => st.page_size,
    };
    let skip = req
        .query("$skiptoken")
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok());
    // (sort key, item)
    let mut items: Vec<(String, Value)> = Vec::new();
    match versions_of {
        None => {
            for (name, versions) in &st.collection(kind).live {
                if let Some(v) = versions.last() {
                    items.push((name.clone(), st.item(kind, name, v, false)));
                }
            }
        }
        Some(name) => {
            let Some(versions) = st.collection(kind).live.get(name) else {
                return not_found(kind, name);
            };
            for (i, v) in versions.iter().enumerate() {
                items.push((format!("{i:010}"), st.item(kind, name, v, true)));
            }
        }
    }
    let start = skip.as_deref().map_or(0, |s| {
        items
            .iter()
            .position(|(k, _)| k.as_str() > s)
            .unwrap_or(items.len())
    });
    let end = (start + page).min(items.len());
    let next = (end < items.len()).then(|| {
        let path = match versions_of {
            None => kind.collection().to_owned(),
            Some(n) => format!("{}/{n}/versions", kind.collection()),
        };
        format!(
            "{}/{path}?api-version={}&$skiptoken={}&maxresults={page}",
            st.vault_url,
            encode(api_version),
            URL_SAFE_NO_PAD.encode(items[end - 1].0.as_bytes())
        )
    });
    let value: Vec<Value> = items[start..end].iter().map(|(_, v)| v.clone()).collect();
    Resp::json(200, &json!({"value": value, "nextLink": next}))
}

fn tags_of(body: &Value) -> Result<BTreeMap<String, String>, Resp> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(error(
                    400,
                    "BadParameter",
                    &format!("Tag {k} must be a string."),
                )),
            })
            .collect(),
        Some(_) => Err(error(
            400,
            "BadParameter",
            "Property tags must be an object.",
        )),
    }
}

fn attrs(body: &Value) -> (bool, Option<i64>, Option<i64>) {
    let a = body.get("attributes");
    let enabled = a
        .and_then(|a| a.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let nbf = a.and_then(|a| a.get("nbf")).and_then(Value::as_i64);
    let exp = a.and_then(|a| a.get("exp")).and_then(Value::as_i64);
    (enabled, nbf, exp)
}

fn set_secret(st: &mut State, req: &Req, name: &str) -> Resp {
    if st.collection(Kind::Secret).deleted.contains_key(name) {
        return deleted_conflict(Kind::Secret, name);
    }
    let Some(body) = req.json() else {
        return error(400, "BadParameter", "The request body is not valid JSON.");
    };
    let Some(value) = body.get("value").and_then(Value::as_str) else {
        return error(400, "BadParameter", "Property value is required.");
    };
    let tags = match tags_of(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (enabled, nbf, exp) = attrs(&body);
    let t = now();
    let v = Version {
        id: String::new(),
        enabled,
        created: t,
        updated: t,
        nbf,
        exp,
        tags,
        content_type: body
            .get("contentType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        body: Body::Secret {
            value: value.to_owned(),
            managed: false,
        },
    };
    st.push_version(Kind::Secret, name, v);
    match st.latest(Kind::Secret, name) {
        Some(v) => Resp::json(200, &st.bundle(Kind::Secret, name, v)),
        None => not_found(Kind::Secret, name),
    }
}

fn import_key(st: &mut State, req: &Req, name: &str) -> Resp {
    if st.collection(Kind::Key).deleted.contains_key(name) {
        return deleted_conflict(Kind::Key, name);
    }
    let Some(body) = req.json() else {
        return error(400, "BadParameter", "The request body is not valid JSON.");
    };
    let Some(jwk) = body.get("key").filter(|k| k.is_object()) else {
        return error(400, "BadParameter", "Property key is required.");
    };
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let needed: &[&str] = match kty {
        "RSA" | "RSA-HSM" => &["n", "e", "d"],
        "EC" | "EC-HSM" => &["crv", "x", "y", "d"],
        other => {
            return error(
                400,
                "BadParameter",
                &format!(
                    "Key type {other:?} cannot be imported into a vault (RSA, RSA-HSM, EC, EC-HSM)."
                ),
            );
        }
    };
    if let Some(missing) = needed
        .iter()
        .find(|f| jwk.get(**f).and_then(Value::as_str).is_none())
    {
        return error(
            400,
            "BadParameter",
            &format!(
                "The key to import lacks property {missing:?}: private key material is required."
            ),
        );
    }
    let tags = match tags_of(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (enabled, nbf, exp) = attrs(&body);
    let t = now();
    let v = Version {
        id: String::new(),
        enabled,
        created: t,
        updated: t,
        nbf,
        exp,
        tags,
        content_type: None,
        body: Body::Key {
            jwk: public_jwk(jwk),
        },
    };
    st.push_version(Kind::Key, name, v);
    match st.latest(Kind::Key, name) {
        Some(v) => Resp::json(200, &st.bundle(Kind::Key, name, v)),
        None => not_found(Kind::Key, name),
    }
}

fn import_certificate(st: &mut State, req: &Req, name: &str, parsed: Option<Parsed>) -> Resp {
    if st.collection(Kind::Certificate).deleted.contains_key(name) {
        return deleted_conflict(Kind::Certificate, name);
    }
    let Some(body) = req.json() else {
        return error(400, "BadParameter", "The request body is not valid JSON.");
    };
    let (der, stored, content_type) = match parsed {
        Some(Ok(p)) => p,
        Some(Err(msg)) => return error(400, "BadParameter", &msg),
        None => return error(400, "BadParameter", "Property value is required."),
    };
    let tags = match tags_of(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    st.seed_certificate(name, der, tags, Some((stored, content_type)));
    match st.latest(Kind::Certificate, name) {
        Some(v) => Resp::json(200, &st.bundle(Kind::Certificate, name, v)),
        None => not_found(Kind::Certificate, name),
    }
}

fn delete(st: &mut State, kind: Kind, name: &str) -> Resp {
    let Some(versions) = st.collection_mut(kind).live.remove(name) else {
        return not_found(kind, name);
    };
    if kind == Kind::Certificate {
        // The certificate's backing secret goes with it.
        st.collection_mut(Kind::Secret).live.remove(name);
    }
    let at = now();
    let bundle = versions
        .last()
        .map(|v| st.deleted_bundle(kind, name, v, at))
        .unwrap_or_else(|| json!({}));
    st.collection_mut(kind)
        .deleted
        .insert(name.to_owned(), (versions, at));
    Resp::json(200, &bundle)
}
