//! The AWS subject token of workload identity federation: a URL-encoded JSON description of a
//! SigV4-signed `sts:GetCallerIdentity` request (Google's "aws4_request" token type). The
//! server checks its shape, that it names the STS audience in `x-goog-cloud-target-resource`,
//! and, for a registered access key, the signature.

use std::collections::{BTreeMap, HashMap};

use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::http::percent_decode;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length.
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn uri_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a verified AWS subject token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsIdentity {
    pub(crate) access_key_id: String,
    pub(crate) region: String,
}

/// Checks an AWS subject token. `keys` maps access key ids to secret keys; an unregistered key
/// is accepted without a signature check (as moto accepts unsigned calls).
pub(crate) fn verify(
    subject_token: &str,
    audience: &str,
    keys: &HashMap<String, String>,
) -> Result<AwsIdentity, String> {
    let decoded = percent_decode(subject_token, false);
    let doc: Value = serde_json::from_str(&decoded)
        .map_err(|_| "the AWS subject token is not URL-encoded JSON")?;
    let url = doc
        .get("url")
        .and_then(Value::as_str)
        .ok_or("the AWS subject token has no url")?;
    let method = doc
        .get("method")
        .and_then(Value::as_str)
        .ok_or("the AWS subject token has no method")?;
    if method != "POST" {
        return Err(format!(
            "the AWS subject token's method is {method}, not POST"
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .ok_or("the AWS subject token's url is not https")?;
    let (host, path_query) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let region = host
        .strip_prefix("sts.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
        .ok_or_else(|| format!("{host} is not a regional AWS STS host"))?
        .to_owned();
    let params: BTreeMap<String, String> = crate::http::parse_pairs(query);
    if params.get("Action").map(String::as_str) != Some("GetCallerIdentity") {
        return Err("the AWS subject token is not a GetCallerIdentity request".to_owned());
    }
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for h in doc
        .get("headers")
        .and_then(Value::as_array)
        .ok_or("the AWS subject token has no headers")?
    {
        let (Some(k), Some(v)) = (
            h.get("key").and_then(Value::as_str),
            h.get("value").and_then(Value::as_str),
        ) else {
            return Err("an AWS subject token header is not {key, value}".to_owned());
        };
        headers.insert(k.to_ascii_lowercase(), v.to_owned());
    }
    if headers
        .get("x-goog-cloud-target-resource")
        .map(String::as_str)
        != Some(audience)
    {
        return Err(
            "the AWS subject token's x-goog-cloud-target-resource is not the audience".to_owned(),
        );
    }
    let auth = headers
        .get("authorization")
        .ok_or("the AWS subject token is not signed")?;
    let fields = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("the AWS subject token is not signed with AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in fields.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err("the AWS subject token's Authorization header is incomplete".to_owned());
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, scope_region, service, terminal] = scope.as_slice() else {
        return Err("the AWS credential scope is malformed".to_owned());
    };
    if *scope_region != region || *service != "sts" || *terminal != "aws4_request" {
        return Err("the AWS credential scope does not match the request".to_owned());
    }
    let amz_date = headers
        .get("x-amz-date")
        .ok_or("the AWS subject token has no x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err("x-amz-date does not match the credential scope".to_owned());
    }
    if let Some(secret) = keys.get(*access_key_id) {
        let mut canonical_headers = String::new();
        for name in signed_headers.split(';') {
            let value = headers
                .get(name)
                .ok_or_else(|| format!("signed header {name} is missing"))?;
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            canonical_headers.push_str(&format!("{name}:{value}\n"));
        }
        let canonical_query = params
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let body = doc.get("body").and_then(Value::as_str).unwrap_or_default();
        let canonical_request = format!(
            "POST\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
            if path.is_empty() { "/" } else { path },
            hex(&Sha256::digest(body.as_bytes()))
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/sts/aws4_request\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, region.as_bytes());
        let k_service = hmac(&k_region, b"sts");
        let k_signing = hmac(&k_service, b"aws4_request");
        let expected = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
        if expected != signature {
            return Err("the AWS signature does not match".to_owned());
        }
    }
    Ok(AwsIdentity {
        access_key_id: (*access_key_id).to_owned(),
        region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_audience_and_unsigned_tokens() {
        let doc = serde_json::json!({
            "url": "https://sts.us-east-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "method": "POST",
            "headers": [
                {"key": "x-goog-cloud-target-resource", "value": "aud"},
                {"key": "x-amz-date", "value": "20200101T000000Z"},
            ],
        });
        let token = crate::http::form_encode(&doc.to_string());
        assert!(
            verify(&token, "other", &HashMap::new())
                .unwrap_err()
                .contains("audience")
        );
        assert!(
            verify(&token, "aud", &HashMap::new())
                .unwrap_err()
                .contains("not signed")
        );
    }
}
