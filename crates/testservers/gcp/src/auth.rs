//! Identity: bearer-token checks, the OAuth2 JWT bearer grant, STS token exchange, GKE's
//! identity binding token, IAM credentials `generateAccessToken`, and the metadata server.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::HeaderMap;
use serde_json::{Value, json};

use crate::CLOUD_PLATFORM_SCOPE;
use crate::aws;
use crate::http::ApiError;
use crate::jwt::Jwt;
use crate::state::State;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const AWS_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The principal behind the request's `Authorization: Bearer` header: an access token this
/// server issued, or a self-signed JWT of a registered service-account key.
pub(crate) fn authenticate(st: &State, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    if let Some(p) = st.token_principal(token) {
        return Some(p);
    }
    // Google accepts a JWT signed by a service account's key as an access token.
    let jwt = Jwt::parse(token)?;
    let kid = jwt.header.get("kid").and_then(Value::as_str)?;
    let key = st.keys.get(kid).filter(|k| !k.revoked)?;
    let now = now_secs();
    let fresh = jwt.claim_i64("exp").is_some_and(|e| e > now)
        && jwt.claim_i64("iat").is_some_and(|i| i <= now + 300);
    (fresh && jwt.claim_str("iss") == Some(&key.email) && jwt.verify_rs256(&key.public))
        .then(|| key.email.clone())
}

fn token_answer(token: &str, lifetime: Duration) -> Value {
    json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"})
}

/// `POST /token`: the OAuth2 JWT bearer grant of service-account keys.
pub(crate) fn oauth2_token(
    st: &mut State,
    token_url: &str,
    form: &BTreeMap<String, String>,
) -> Result<(Value, String), ApiError> {
    let grant = form
        .get("grant_type")
        .map(String::as_str)
        .unwrap_or_default();
    if grant != JWT_BEARER {
        return Err(ApiError::oauth(
            400,
            "unsupported_grant_type",
            format!("Invalid grant_type: {grant}"),
        ));
    }
    let invalid = |d: &str| ApiError::oauth(400, "invalid_grant", d);
    let assertion = form
        .get("assertion")
        .and_then(|a| Jwt::parse(a))
        .ok_or_else(|| invalid("Invalid JWT: the assertion is not a JWT."))?;
    let iss = assertion.claim_str("iss").unwrap_or_default();
    let key = match assertion.header.get("kid").and_then(Value::as_str) {
        Some(kid) => st.keys.get(kid),
        None => st.keys.values().find(|k| k.email == iss),
    }
    .ok_or_else(|| invalid("Invalid grant: account not found"))?;
    if key.revoked || !assertion.verify_rs256(&key.public) {
        return Err(invalid("Invalid JWT Signature."));
    }
    if iss != key.email {
        return Err(invalid("Invalid email or User ID"));
    }
    // Google accepts its token endpoint's names as the audience; Go's client sends the key's
    // `token_uri` (here, this server), Python's the public endpoint.
    let accepted = [
        token_url,
        "https://oauth2.googleapis.com/token",
        "https://www.googleapis.com/oauth2/v4/token",
        "https://accounts.google.com/o/oauth2/token",
    ];
    if !assertion
        .audiences()
        .iter()
        .any(|a| accepted.contains(&a.as_str()))
    {
        return Err(invalid("Invalid JWT: Failed audience check."));
    }
    let now = now_secs();
    match (assertion.claim_i64("iat"), assertion.claim_i64("exp")) {
        (Some(iat), Some(exp)) if iat <= now + 300 && exp > now && exp - iat <= 3600 => {}
        _ => {
            return Err(invalid(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            ));
        }
    }
    if assertion.claim_str("scope").is_none_or(str::is_empty) {
        return Err(ApiError::oauth(
            400,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    let principal = key.email.clone();
    let (token, lifetime) = st.issue_token(&principal);
    Ok((token_answer(&token, lifetime), principal))
}

/// The workload identity pool of an STS audience
/// (`//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X`).
fn pool_of(audience: &str) -> Option<&str> {
    let rest = audience.strip_prefix("//iam.googleapis.com/")?;
    let (pool, _provider) = rest.split_once("/providers/")?;
    pool.contains("/workloadIdentityPools/").then_some(pool)
}

/// `POST /v1/token`: STS token exchange for workload identity federation.
pub(crate) fn sts_token(
    st: &mut State,
    params: &BTreeMap<String, String>,
) -> Result<(Value, String), ApiError> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") != TOKEN_EXCHANGE {
        return Err(ApiError::oauth(
            400,
            "unsupported_grant_type",
            format!("Invalid grant_type: {}", get("grant_type")),
        ));
    }
    if get("requested_token_type") != ACCESS_TOKEN_TYPE {
        return Err(ApiError::oauth(
            400,
            "invalid_request",
            "Invalid requested_token_type: only access tokens can be requested.",
        ));
    }
    let audience = get("audience");
    let pool = pool_of(audience).ok_or_else(|| {
        ApiError::oauth(
            400,
            "invalid_request",
            format!("Invalid value for \"audience\". This value should be the full resource name of the Identity Provider. {audience}"),
        )
    })?;
    let subject = get("subject_token");
    let who = match get("subject_token_type") {
        JWT_TOKEN_TYPE | ID_TOKEN_TYPE => {
            let jwt = Jwt::parse(subject).ok_or_else(|| {
                ApiError::oauth(400, "invalid_grant", "Unable to parse the ID Token.")
            })?;
            if jwt.claim_i64("exp").is_some_and(|e| e <= now_secs()) {
                return Err(ApiError::oauth(
                    400,
                    "invalid_grant",
                    "The subject token has expired.",
                ));
            }
            jwt.claim_str("sub")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ApiError::oauth(400, "invalid_grant", "The subject token has no sub claim.")
                })?
                .to_owned()
        }
        AWS_TOKEN_TYPE => {
            let id = aws::verify(subject, audience, &st.aws_keys)
                .map_err(|e| ApiError::oauth(400, "invalid_grant", e))?;
            format!("aws:{}:{}", id.region, id.access_key_id)
        }
        other => {
            return Err(ApiError::oauth(
                400,
                "invalid_request",
                format!("Invalid subject_token_type: {other}"),
            ));
        }
    };
    if get("scope").is_empty() {
        return Err(ApiError::oauth(
            400,
            "invalid_scope",
            "A scope is required.",
        ));
    }
    let principal = format!("principal://iam.googleapis.com/{pool}/subject/{who}");
    let (token, lifetime) = st.issue_token(&principal);
    Ok((
        json!({
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
        }),
        principal,
    ))
}

/// `POST /v1/identitybindingtoken`: GKE Workload Identity's exchange of a Kubernetes
/// ServiceAccount token (audience: the identity pool) for a federated access token.
pub(crate) fn identity_binding_token(
    st: &mut State,
    body: &Value,
) -> Result<(Value, String), ApiError> {
    let get = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if get("grant_type") != TOKEN_EXCHANGE || get("subject_token_type") != JWT_TOKEN_TYPE {
        return Err(ApiError::oauth(
            400,
            "invalid_request",
            "Invalid grant_type or subject_token_type.",
        ));
    }
    let audience = get("audience");
    let (pool, provider) = audience
        .strip_prefix("identitynamespace:")
        .and_then(|r| r.split_once(':'))
        .filter(|(pool, provider)| {
            pool.ends_with(".svc.id.goog") && provider.starts_with("https://")
        })
        .ok_or_else(|| {
            ApiError::oauth(
                400,
                "invalid_request",
                format!("Invalid audience {audience:?}: expected identitynamespace:POOL:PROVIDER."),
            )
        })?;
    let _ = provider;
    let jwt = Jwt::parse(get("subject_token")).ok_or_else(|| {
        ApiError::oauth(400, "invalid_grant", "Unable to parse the subject token.")
    })?;
    if !jwt.audiences().iter().any(|a| a == pool) {
        return Err(ApiError::oauth(
            400,
            "invalid_grant",
            format!("The subject token's audience does not include the identity pool {pool}."),
        ));
    }
    if jwt.claim_i64("exp").is_some_and(|e| e <= now_secs()) {
        return Err(ApiError::oauth(
            400,
            "invalid_grant",
            "The subject token has expired.",
        ));
    }
    let sub = jwt.claim_str("sub").unwrap_or_default();
    let Some(rest) = sub.strip_prefix("system:serviceaccount:") else {
        return Err(ApiError::oauth(
            400,
            "invalid_grant",
            "The subject token is not a Kubernetes ServiceAccount token.",
        ));
    };
    let (ns, sa) = rest.split_once(':').unwrap_or((rest, ""));
    let principal = format!("serviceAccount:{pool}[{ns}/{sa}]");
    let (token, lifetime) = st.issue_token(&principal);
    Ok((
        json!({
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
        }),
        principal,
    ))
}

/// `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`.
pub(crate) fn generate_access_token(
    st: &mut State,
    caller: Option<&str>,
    email: &str,
    body: &Value,
) -> Result<(Value, String), ApiError> {
    let caller = caller.ok_or_else(ApiError::unauthenticated)?;
    if st.denied.contains(caller) {
        return Err(ApiError::google(
            403,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        ));
    }
    if !(email.contains('@') && email.ends_with(".iam.gserviceaccount.com")) {
        return Err(ApiError::not_found(format!(
            "Not found; Gaia id not found for email {email}"
        )));
    }
    let scopes = body.get("scope").and_then(Value::as_array);
    if scopes.is_none_or(|s| s.is_empty()) {
        return Err(ApiError::invalid_argument("Scope required."));
    }
    let lifetime = match body.get("lifetime").and_then(Value::as_str) {
        None => None,
        Some(l) => Some(
            l.strip_suffix('s')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| *n > 0.0 && *n <= 43_200.0)
                .ok_or_else(|| ApiError::invalid_argument(format!("Invalid lifetime {l}.")))?,
        ),
    };
    let principal = email.to_owned();
    let (token, default_lifetime) = st.issue_token(&principal);
    let secs = lifetime.map_or(default_lifetime.as_secs(), |l| l as u64);
    if let Some(t) = st.tokens.get_mut(&token) {
        t.expires = std::time::Instant::now() + Duration::from_secs(secs);
    }
    let expire = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs as i64))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    Ok((
        // IAM writes whole seconds (Google's clients parse `%Y-%m-%dT%H:%M:%SZ`).
        json!({"accessToken": token, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}),
        principal,
    ))
}

/// One metadata server answer: status, content type, body, and the principal of an issued
/// token.
pub(crate) struct MetadataAnswer {
    pub(crate) status: u16,
    pub(crate) json: bool,
    pub(crate) body: String,
    pub(crate) principal: Option<String>,
}

/// The metadata server (`/` and `/computeMetadata/v1/...`).
pub(crate) fn metadata(
    st: &mut State,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> MetadataAnswer {
    let text = |status: u16, body: &str| MetadataAnswer {
        status,
        json: false,
        body: body.to_owned(),
        principal: None,
    };
    let flavored = headers
        .get("metadata-flavor")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("Google"));
    if !flavored {
        return text(
            403,
            "Missing required header \"Metadata-Flavor\": \"Google\"\n",
        );
    }
    let md = st.metadata.clone();
    let sa = "/computeMetadata/v1/instance/service-accounts/";
    match path {
        "/" => text(200, "computeMetadata/\n"),
        "/computeMetadata/v1/project/project-id" => text(200, &md.project_id),
        "/computeMetadata/v1/project/numeric-project-id" => {
            let n = st.project_number(&md.project_id);
            text(200, &n.to_string())
        }
        "/computeMetadata/v1/instance/attributes/cluster-name" => text(200, &md.cluster_name),
        "/computeMetadata/v1/instance/attributes/cluster-location" => {
            text(200, &md.cluster_location)
        }
        "/computeMetadata/v1/universe/universe-domain" => text(200, "googleapis.com"),
        _ => {
            let Some(rest) = path.strip_prefix(sa) else {
                return text(404, "Not Found\n");
            };
            let (account, item) = rest.split_once('/').unwrap_or((rest, ""));
            if account != "default" && account != md.service_account_email {
                return text(404, "Not Found\n");
            }
            match item {
                "email" => text(200, &md.service_account_email),
                "token" => {
                    let (token, lifetime) = st.issue_token(&md.service_account_email);
                    MetadataAnswer {
                        status: 200,
                        json: true,
                        body: token_answer(&token, lifetime).to_string(),
                        principal: Some(md.service_account_email),
                    }
                }
                "scopes" => text(200, &format!("{CLOUD_PLATFORM_SCOPE}\n")),
                "" if query.get("recursive").is_some_and(|r| r == "true") => MetadataAnswer {
                    status: 200,
                    json: true,
                    body: json!({
                        "aliases": ["default"],
                        "email": md.service_account_email,
                        "scopes": [CLOUD_PLATFORM_SCOPE],
                    })
                    .to_string(),
                    principal: None,
                },
                "" => text(200, "aliases\nemail\nidentity\nscopes\ntoken\n"),
                _ => text(404, "Not Found\n"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_come_from_provider_audiences() {
        assert_eq!(
            pool_of(
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k"
            ),
            Some("projects/1/locations/global/workloadIdentityPools/p")
        );
        assert_eq!(pool_of("https://example.com"), None);
    }

    #[test]
    fn metadata_requires_the_flavor_header() {
        let mut st = State::default();
        let q = BTreeMap::new();
        let mut h = HeaderMap::new();
        assert_eq!(
            metadata(&mut st, "/computeMetadata/v1/project/project-id", &q, &h).status,
            403
        );
        h.insert("metadata-flavor", "Google".parse().unwrap());
        let a = metadata(&mut st, "/computeMetadata/v1/project/project-id", &q, &h);
        assert_eq!((a.status, a.body.as_str()), (200, "metadata-project"));
        let t = metadata(
            &mut st,
            "/computeMetadata/v1/instance/service-accounts/default/token",
            &q,
            &h,
        );
        let v: Value = serde_json::from_str(&t.body).unwrap();
        assert_eq!(
            st.token_principal(v["access_token"].as_str().unwrap())
                .as_deref(),
            Some("default@metadata-project.iam.gserviceaccount.com")
        );
    }
}
