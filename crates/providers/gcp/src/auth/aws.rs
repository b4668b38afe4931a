//! The subject token of workload identity federation with AWS credentials
//! (`awsSecurityCredentials`): a SigV4-signed `sts:GetCallerIdentity` request, serialized as
//! URL-encoded JSON, which Google's STS replays to AWS to learn the caller's identity (Google's
//! `urn:ietf:params:aws:token-type:aws4_request` format, as Go's `externalaccount` builds it).

use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::http::form_encode;

type HmacSha256 = Hmac<Sha256>;

/// AWS credentials read from the store's Secret.
#[derive(Clone)]
pub(crate) struct AwsCredentials {
    pub(crate) region: String,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC accepts keys of every length; this arm is never taken.
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The subject token for `audience` (the workload identity provider), signed at `now`.
pub(crate) fn subject_token(
    creds: &AwsCredentials,
    audience: &str,
    now: jiff::Timestamp,
) -> String {
    let region = &creds.region;
    let host = format!("sts.{region}.amazonaws.com");
    let query = "Action=GetCallerIdentity&Version=2011-06-15";
    let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let date = now.strftime("%Y%m%d").to_string();
    let mut headers: Vec<(&str, String)> = vec![
        ("host", host.clone()),
        ("x-amz-date", amz_date.clone()),
        ("x-goog-cloud-target-resource", audience.to_owned()),
    ];
    if let Some(t) = &creds.session_token {
        headers.push(("x-amz-security-token", t.clone()));
    }
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let canonical_request = format!(
        "POST\n/\n{query}\n{canonical_headers}\n{signed}\n{}",
        hex(&Sha256::digest(b""))
    );
    let scope = format!("{date}/{region}/sts/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, b"sts");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key_id
    );
    let mut listed = vec![json!({"key": "Authorization", "value": authorization})];
    listed.extend(headers.iter().map(|(k, v)| json!({"key": k, "value": v})));
    let doc = json!({
        "url": format!("https://{host}?{query}"),
        "method": "POST",
        "headers": listed,
    });
    form_encode(&doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_aws_documents() {
        // The key derivation of AWS's SigV4 documentation example (secret
        // wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam).
        let k_date = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        let k_region = hmac(&k_date, b"us-east-1");
        let k_service = hmac(&k_region, b"iam");
        let k_signing = hmac(&k_service, b"aws4_request");
        assert_eq!(
            hex(&k_signing),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn token_names_the_audience_and_request() {
        let creds = AwsCredentials {
            region: "us-east-1".into(),
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: Some("session".into()),
        };
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let token = subject_token(&creds, "//iam.googleapis.com/x", now);
        let decoded = {
            let mut out = Vec::new();
            let b = token.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    out.push(u8::from_str_radix(&token[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        };
        let doc: serde_json::Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(
            doc["url"],
            "https://sts.us-east-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
        );
        let auth = doc["headers"][0]["value"].as_str().unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKID/20231114/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature="
        ), "{auth}");
    }
}
