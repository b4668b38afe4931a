//! The AWS generators: `ECRAuthorizationToken` and `STSSessionToken` (upstream's
//! `types_ecr.go`, `types_sts.go`). Their `auth` has the shape of the AWS provider's.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::provider::AwsAuth;

/// An ECR authorization token request.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "ECRAuthorizationToken",
    plural = "ecrauthorizationtokens",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "ECRAuthorizationToken uses the GetAuthorizationToken API to retrieve an authorization token. The authorization token is valid for 12 hours. For more information, see Registry authentication (https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html#registry_auth) in the Amazon Elastic Container Registry User Guide."
)]
#[serde(rename_all = "camelCase")]
pub struct ECRAuthorizationTokenSpec {
    /// The region to operate in.
    pub region: String,
    /// How to authenticate with AWS: static keys from a Secret, a ServiceAccount (IRSA), or the
    /// SDK's default chain when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,
    /// A role to assume before calling ECR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The ECR scope: `private` (the default) or `public` (ECR Public, in us-east-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl ECRAuthorizationTokenSpec {
    /// Whether the token is for ECR Public (`scope: public`), as upstream compares.
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.scope.as_deref() == Some("public")
    }
}

/// An STS session token request.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "STSSessionToken",
    plural = "stssessiontokens",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "STSSessionToken uses the GetSessionToken API to retrieve an authorization token. For more information, see GetSessionToken (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetSessionToken.html)."
)]
#[serde(rename_all = "camelCase")]
pub struct STSSessionTokenSpec {
    /// The region to operate in.
    pub region: String,
    /// How to authenticate with AWS: static keys from a Secret or the SDK's default chain
    /// (`jwt` is refused, as upstream: STS issues no session token to a web identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,
    /// A role to assume before calling STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Parameters of the `GetSessionToken` call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<STSRequestParameters>,
}

/// Parameters passed to `GetSessionToken` (upstream's `RequestParameters`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct STSRequestParameters {
    /// How long the credentials last, in seconds: 900 to 129600 for IAM users (default 43200),
    /// at most 3600 for the account's root user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_duration: Option<i32>,
    /// The serial number (or ARN) of the MFA device of the calling IAM user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The code the MFA device shows, when MFA is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_code: Option<String>,
}
