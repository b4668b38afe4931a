//! Entra ID's token endpoint (client credentials: secret, certificate assertion, federated
//! token), its OpenID discovery document, and the instance metadata service (IMDS).

use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Value, json};
use sha2::Digest;

use crate::http::{Req, Resp};
use crate::state::{Listener, Recorded, State, now};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record(st: &mut State, listener: Listener, req: &Req) {
    st.log.push(Recorded {
        listener,
        method: req.method.clone(),
        path: req.path.clone(),
        api_version: req.query("api-version").map(str::to_owned),
        authorized: false,
    });
}

/// An OAuth error as Entra ID writes it.
fn oauth_error(status: u16, error: &str, code: u32, description: &str) -> Resp {
    Resp::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        }),
    )
}

pub(crate) fn handle_login(shared: &Mutex<State>, req: Req) -> Resp {
    let mut st = lock(shared);
    record(&mut st, Listener::Login, &req);
    if let Some(f) = st.take_fault(Listener::Login, &req.method, &req.path) {
        let resp = oauth_error(
            f.status,
            "temporarily_unavailable",
            50_196,
            "The server is temporarily unavailable.",
        );
        return match f.retry_after {
            Some(s) => resp.header("retry-after", s.to_string()),
            None => resp,
        };
    }
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((tenant, rest)) = segments.split_first() else {
        return Resp::empty(404);
    };
    if *tenant != st.tenant {
        return oauth_error(
            400,
            "invalid_request",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let base = format!("{}/{tenant}", st.login_url);
    match (req.method.as_str(), rest) {
        ("GET", ["v2.0", ".well-known", "openid-configuration"]) => Resp::json(
            200,
            &json!({
                "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": format!("{base}/discovery/v2.0/keys"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": format!("{base}/v2.0"),
                "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
                "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }),
        ),
        ("POST", ["oauth2", "v2.0", "token"]) => {
            token(&mut st, &req, &format!("{base}/oauth2/v2.0/token"))
        }
        _ => Resp::empty(404),
    }
}

fn token(st: &mut State, req: &Req, endpoint: &str) -> Resp {
    let form = req.form();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            400,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type.",
        );
    }
    let scope = field("scope");
    let Some(resource) = scope.strip_suffix("/.default") else {
        return oauth_error(
            400,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let resource = resource.to_owned();
    let client_id = field("client_id").to_owned();
    let tenant = st.tenant.clone();
    let Some(app) = st.apps.get(&client_id) else {
        return oauth_error(
            400,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    };
    if let Some(secret) = form.get("client_secret") {
        if !app.secrets.iter().any(|s| s == secret) {
            return oauth_error(
                401,
                "invalid_client",
                7_000_215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if field("client_assertion_type") != JWT_BEARER {
            return oauth_error(
                400,
                "invalid_request",
                50_027,
                "Invalid client_assertion_type.",
            );
        }
        if let Err(resp) = check_assertion(app, &client_id, assertion, endpoint) {
            return resp;
        }
    } else {
        return oauth_error(
            401,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let (token, life) = st.issue(&client_id, &resource);
    Resp::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token}),
    )
}

fn b64url_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn audiences(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn check_assertion(
    app: &crate::state::App,
    client_id: &str,
    assertion: &str,
    endpoint: &str,
) -> Result<(), Resp> {
    let invalid = |code: u32, msg: &str| oauth_error(401, "invalid_client", code, msg);
    let parts: Vec<&str> = assertion.split('.').collect();
    let (Some(header), Some(claims)) = (
        parts.first().and_then(|p| b64url_json(p)),
        parts.get(1).and_then(|p| b64url_json(p)),
    ) else {
        return Err(invalid(50_027, "JWT token is invalid or malformed."));
    };
    // MSAL writes `exp` as a float, Go and Kubernetes as an integer.
    let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0);
    #[allow(clippy::cast_precision_loss)]
    let expired = exp <= now() as f64;
    if expired {
        return Err(invalid(
            700_024,
            "Client assertion is not within its valid time range.",
        ));
    }
    // MSAL pads its base64url thumbprints; Entra ID accepts both forms.
    let x5t = header
        .get("x5t")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('='));
    let x5t256 = header
        .get("x5t#S256")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('='));
    if x5t.is_some() || x5t256.is_some() {
        // A certificate credential: iss = sub = the client, aud = the token endpoint, signed
        // by a registered certificate.
        let cert = app.certificates.iter().find(|der| {
            x5t == Some(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der)).as_str())
                || x5t256 == Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der)).as_str())
        });
        let Some(cert) = cert else {
            return Err(invalid(
                700_027,
                "The certificate with identifier used to sign the client assertion is not registered on application.",
            ));
        };
        let iss = claims.get("iss").and_then(Value::as_str);
        let sub = claims.get("sub").and_then(Value::as_str);
        if iss != Some(client_id) || sub != Some(client_id) {
            return Err(invalid(
                700_021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            ));
        }
        if !audiences(&claims).iter().any(|a| a == endpoint) {
            return Err(invalid(
                700_212,
                &format!(
                    "The audience of the client assertion must be the token endpoint {endpoint}."
                ),
            ));
        }
        let Some(sig) = parts
            .get(2)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
        else {
            return Err(invalid(50_027, "JWT token is invalid or malformed."));
        };
        let signed = format!("{}.{}", parts[0], parts[1]);
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !verify(cert, alg, signed.as_bytes(), &sig) {
            return Err(invalid(
                7_000_274,
                "Client assertion contains an invalid signature.",
            ));
        }
        return Ok(());
    }
    // A federated credential: a token of an external issuer (the cluster's ServiceAccount
    // issuer) for a registered subject, with the token-exchange audience.
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !app.federated.iter().any(|(i, _)| i == iss) {
        return Err(oauth_error(
            400,
            "invalid_request",
            700_211,
            &format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'."
            ),
        ));
    }
    if !app.federated.iter().any(|(i, s)| i == iss && s == sub) {
        return Err(oauth_error(
            400,
            "invalid_request",
            700_213,
            &format!(
                "No matching federated identity record found for presented assertion subject '{sub}'."
            ),
        ));
    }
    if !audiences(&claims).iter().any(|a| a == EXCHANGE_AUDIENCE) {
        return Err(oauth_error(
            400,
            "invalid_request",
            700_212,
            &format!(
                "No matching federated identity record found for presented assertion audience '{}'.",
                audiences(&claims).join(",")
            ),
        ));
    }
    Ok(())
}

/// Reads one DER element: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The DER of a certificate's SubjectPublicKeyInfo.
fn spki(cert: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    // [0] version is optional; then serial, signature, issuer, validity, subject, SPKI.
    if rest.first() == Some(&0xa0) {
        rest = der(rest)?.2;
    }
    for _ in 0..5 {
        rest = der(rest)?.2;
    }
    let (_, _, after) = der(rest)?;
    Some(&rest[..rest.len() - after.len()])
}

fn verify(cert: &[u8], alg: &str, msg: &[u8], sig: &[u8]) -> bool {
    let Some(key) = spki(cert).and_then(|s| RsaPublicKey::from_public_key_der(s).ok()) else {
        return false;
    };
    match alg {
        "RS256" => rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| {
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(msg, &s)
                .is_ok()
        }),
        "PS256" => rsa::pss::Signature::try_from(sig).is_ok_and(|s| {
            rsa::pss::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(msg, &s)
                .is_ok()
        }),
        _ => false,
    }
}

fn imds_error(description: &str) -> Resp {
    Resp::json(
        400,
        &json!({"error": "invalid_request", "error_description": description}),
    )
}

pub(crate) fn handle_imds(shared: &Mutex<State>, req: Req) -> Resp {
    let mut st = lock(shared);
    record(&mut st, Listener::Imds, &req);
    if let Some(f) = st.take_fault(Listener::Imds, &req.method, &req.path) {
        let resp = Resp::json(
            f.status,
            &json!({"error": "service_unavailable", "error_description": "IMDS is unavailable."}),
        );
        return match f.retry_after {
            Some(s) => resp.header("retry-after", s.to_string()),
            None => resp,
        };
    }
    if req.method != "GET" || req.path != "/metadata/identity/oauth2/token" {
        return Resp::empty(404);
    }
    if req.header("metadata") != Some("true") {
        return imds_error("Required metadata header not specified");
    }
    if req.query("api-version").is_none() {
        return imds_error("Required query variable 'api-version' is missing");
    }
    let Some(resource) = req.query("resource").map(str::to_owned) else {
        return imds_error("Required query variable 'resource' is missing");
    };
    let identity = match req.query("client_id") {
        Some(id) => st.managed_identities.iter().find(|m| *m == id).cloned(),
        None => st.managed_identities.first().cloned(),
    };
    let Some(identity) = identity else {
        return imds_error("Identity not found");
    };
    let (token, life) = st.issue(&identity, &resource);
    let t = now();
    Resp::json(
        200,
        &json!({
            "access_token": token,
            "client_id": identity,
            "expires_in": life.to_string(),
            "expires_on": (t + i64::try_from(life).unwrap_or(0)).to_string(),
            "ext_expires_in": life.to_string(),
            "not_before": t.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
