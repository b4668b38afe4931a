//! `spec.provider.vault.auth`: reads the credentials a login method refers to (once, when the
//! client is built) and shapes the login request, with upstream's mount-path defaults.

use std::path::Path;

use eso_api::SecretKeySelector;
use eso_api::provider::{VaultAuth, VaultKubernetesAuth};
use eso_provider::{ClientContext, ProviderError};
use serde_json::{Value, json};

/// How the client gets its token.
pub(crate) enum Credentials {
    /// No `auth`: requests go without a token (e.g. through a Vault Agent proxy that adds one).
    Anonymous,
    /// `tokenSecretRef`: a token used as given.
    Static(String),
    /// A login method; the request is replayed whenever a new token is needed.
    Login(LoginRequest),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Static(_) => f.write_str("Static(<redacted>)"),
            Self::Login(l) => f.debug_tuple("Login").field(l).finish(),
        }
    }
}

/// A login request: `POST /v1/<path>` with `body`.
#[derive(Clone, PartialEq)]
pub(crate) struct LoginRequest {
    /// The method's name, for messages (`appRole`, `kubernetes`, ...).
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) body: Value,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body holds secrets.
        f.debug_struct("LoginRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Everything the auth spec resolves to.
#[derive(Debug)]
pub(crate) struct ResolvedAuth {
    pub(crate) credentials: Credentials,
    /// The namespace logins (and token renewals) go to, when it differs from the store's.
    pub(crate) namespace: Option<String>,
    /// The `cert` method's client certificate and key (PEM), presented on every connection.
    pub(crate) client_identity: Option<Vec<u8>>,
}

fn mount(path: &str) -> &str {
    path.trim_matches('/')
}

pub(crate) fn approle_login(path: &str, role_id: &str, secret_id: &str) -> LoginRequest {
    LoginRequest {
        method: "appRole",
        path: format!("auth/{}/login", mount(path)),
        body: json!({"role_id": role_id, "secret_id": secret_id}),
    }
}

pub(crate) fn userpass_login(
    method: &'static str,
    path: &str,
    username: &str,
    password: &str,
) -> LoginRequest {
    LoginRequest {
        method,
        path: format!("auth/{}/login/{username}", mount(path)),
        body: json!({"password": password}),
    }
}

pub(crate) fn jwt_login(method: &'static str, path: &str, role: &str, jwt: &str) -> LoginRequest {
    LoginRequest {
        method,
        path: format!("auth/{}/login", mount(path)),
        body: json!({"role": role, "jwt": jwt}),
    }
}

pub(crate) fn cert_login(path: &str, role: Option<&str>) -> LoginRequest {
    LoginRequest {
        method: "cert",
        path: format!("auth/{}/login", mount(path)),
        body: match role.filter(|r| !r.is_empty()) {
            Some(name) => json!({"name": name}),
            None => json!({}),
        },
    }
}

async fn read_text(
    ctx: &ClientContext<'_>,
    selector: &SecretKeySelector,
    field: &str,
) -> Result<String, ProviderError> {
    let bytes = ctx.read_secret_key(selector, field).await?;
    String::from_utf8(bytes).map_err(|_| {
        ProviderError::invalid_store(format!(
            "{}: {field} does not hold UTF-8 text",
            ctx.store.describe()
        ))
    })
}

fn with_default_key(selector: &SecretKeySelector, key: &str) -> SecretKeySelector {
    let mut s = selector.clone();
    if s.key.as_deref().is_none_or(str::is_empty) {
        s.key = Some(key.to_owned());
    }
    s
}

async fn service_account_token(
    ctx: &ClientContext<'_>,
    account: &eso_api::common::ServiceAccountSelector,
    extra_audiences: &[String],
    expiration_seconds: i64,
) -> Result<String, ProviderError> {
    let namespace = ctx.credential_namespace(account.namespace.as_deref());
    let tokens = ctx.tokens.ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: a token for ServiceAccount \"{namespace}/{}\" is needed, and none can be requested here (no cluster)",
            ctx.store.describe(),
            account.name
        ))
    })?;
    // Upstream appends the method's audiences to the ServiceAccount reference's own.
    let mut audiences = account.audiences.clone();
    audiences.extend(extra_audiences.iter().cloned());
    tokens
        .token(
            namespace,
            &account.name,
            &audiences,
            Some(expiration_seconds),
        )
        .await
}

/// Upstream requests ServiceAccount tokens for 10 minutes.
const SA_TOKEN_SECONDS: i64 = 600;

async fn kubernetes_jwt(
    ctx: &ClientContext<'_>,
    k: &VaultKubernetesAuth,
    field: &str,
    sa_token_file: &Path,
) -> Result<String, ProviderError> {
    if let Some(account) = &k.service_account_ref {
        return service_account_token(ctx, account, &[], SA_TOKEN_SECONDS).await;
    }
    if let Some(secret) = &k.secret_ref {
        return read_text(
            ctx,
            &with_default_key(secret, "token"),
            &format!("{field}.secretRef"),
        )
        .await;
    }
    // Neither: the controller's own ServiceAccount token, from the pod's projected file.
    tokio::fs::read_to_string(sa_token_file)
        .await
        .map(|t| t.trim().to_owned())
        .map_err(|e| {
            ProviderError::invalid_store(format!(
                "{}: {field} names no serviceAccountRef or secretRef, and the pod's token file {} cannot be read",
                ctx.store.describe(),
                sa_token_file.display()
            ))
            .with_source(e)
        })
}

/// Resolves `auth` (already checked to name at most one method).
pub(crate) async fn resolve(
    ctx: &ClientContext<'_>,
    auth: Option<&VaultAuth>,
    field: &str,
    sa_token_file: &Path,
) -> Result<ResolvedAuth, ProviderError> {
    let Some(auth) = auth else {
        return Ok(ResolvedAuth {
            credentials: Credentials::Anonymous,
            namespace: None,
            client_identity: None,
        });
    };
    let field = format!("{field}.auth");
    let mut client_identity = None;
    let credentials = if let Some(selector) = &auth.token_secret_ref {
        let token = read_text(ctx, selector, &format!("{field}.tokenSecretRef")).await?;
        Credentials::Static(token.trim().to_owned())
    } else if let Some(a) = &auth.app_role {
        let role_id = match (&a.role_id, &a.role_ref) {
            (Some(id), _) if !id.trim().is_empty() => id.trim().to_owned(),
            (_, Some(r)) => read_text(ctx, r, &format!("{field}.appRole.roleRef")).await?,
            _ => {
                return Err(ProviderError::invalid_store(format!(
                    "{}: {field}.appRole needs roleId or roleRef",
                    ctx.store.describe()
                )));
            }
        };
        let secret_id =
            read_text(ctx, &a.secret_ref, &format!("{field}.appRole.secretRef")).await?;
        Credentials::Login(approle_login(a.path(), &role_id, &secret_id))
    } else if let Some(k) = &auth.kubernetes {
        let jwt = kubernetes_jwt(ctx, k, &format!("{field}.kubernetes"), sa_token_file).await?;
        Credentials::Login(jwt_login("kubernetes", k.mount_path(), &k.role, &jwt))
    } else if let Some(l) = &auth.ldap {
        let selector = l.secret_ref.as_ref().ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{}: {field}.ldap.secretRef is required",
                ctx.store.describe()
            ))
        })?;
        let password = read_text(ctx, selector, &format!("{field}.ldap.secretRef")).await?;
        Credentials::Login(userpass_login(
            "ldap",
            l.path(),
            l.username.trim(),
            &password,
        ))
    } else if let Some(u) = &auth.user_pass {
        let selector = u.secret_ref.as_ref().ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{}: {field}.userPass.secretRef is required",
                ctx.store.describe()
            ))
        })?;
        let password = read_text(ctx, selector, &format!("{field}.userPass.secretRef")).await?;
        Credentials::Login(userpass_login(
            "userPass",
            u.path(),
            u.username.trim(),
            &password,
        ))
    } else if let Some(j) = &auth.jwt {
        let jwt = if let Some(selector) = &j.secret_ref {
            read_text(ctx, selector, &format!("{field}.jwt.secretRef")).await?
        } else if let Some(sa) = &j.kubernetes_service_account_token {
            let audiences = sa
                .audiences
                .clone()
                .unwrap_or_else(|| vec!["vault".to_owned()]);
            service_account_token(
                ctx,
                &sa.service_account_ref,
                &audiences,
                sa.expiration_seconds.unwrap_or(SA_TOKEN_SECONDS),
            )
            .await?
        } else {
            return Err(ProviderError::invalid_store(format!(
                "{}: {field}.jwt needs secretRef or kubernetesServiceAccountToken",
                ctx.store.describe()
            )));
        };
        let role = j.role.as_deref().unwrap_or_default().trim();
        Credentials::Login(jwt_login("jwt", j.path(), role, jwt.trim()))
    } else if let Some(c) = &auth.cert {
        let (Some(cert_ref), Some(key_ref)) = (&c.client_cert, &c.secret_ref) else {
            return Err(ProviderError::invalid_store(format!(
                "{}: {field}.cert needs clientCert and secretRef",
                ctx.store.describe()
            )));
        };
        let mut pem = ctx
            .read_secret_key(cert_ref, &format!("{field}.cert.clientCert"))
            .await?;
        pem.push(b'\n');
        pem.extend(
            ctx.read_secret_key(key_ref, &format!("{field}.cert.secretRef"))
                .await?,
        );
        client_identity = Some(pem);
        Credentials::Login(cert_login(c.path(), c.vault_role.as_deref()))
    } else if auth.iam.is_some() || auth.gcp.is_some() {
        return Err(ProviderError::unsupported(format!(
            "{}: {field}: the iam and gcp login methods are not supported by eso-rs",
            ctx.store.describe()
        )));
    } else {
        return Err(ProviderError::invalid_store(format!(
            "{}: {field} names no login method",
            ctx.store.describe()
        )));
    };
    Ok(ResolvedAuth {
        credentials,
        namespace: auth.namespace.clone().filter(|n| !n.is_empty()),
        client_identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_requests_have_the_shape_vault_expects() {
        let a = approle_login("approle", "rid", "sid");
        assert_eq!(a.path, "auth/approle/login");
        assert_eq!(a.body, json!({"role_id": "rid", "secret_id": "sid"}));

        let u = userpass_login("userPass", "/userpass/", "alice", "pw");
        assert_eq!(u.path, "auth/userpass/login/alice");
        assert_eq!(u.body, json!({"password": "pw"}));

        // LDAP has no server plugin in OpenBao's dev build; its request is Vault's
        // `POST auth/<mount>/login/<username>` with the password, like userpass.
        let l = userpass_login("ldap", "ldap", "bob", "pw");
        assert_eq!(l.path, "auth/ldap/login/bob");
        assert_eq!(l.body, json!({"password": "pw"}));

        let j = jwt_login("jwt", "jwt", "eso", "ey..");
        assert_eq!(j.path, "auth/jwt/login");
        assert_eq!(j.body, json!({"role": "eso", "jwt": "ey.."}));

        let k = jwt_login("kubernetes", "kubernetes", "eso", "ey..");
        assert_eq!(k.path, "auth/kubernetes/login");

        assert_eq!(cert_login("cert", Some("web")).body, json!({"name": "web"}));
        assert_eq!(cert_login("cert", None).body, json!({}));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let a = approle_login("approle", "rid", "super-secret");
        assert!(!format!("{a:?}").contains("super-secret"));
        assert!(!format!("{:?}", Credentials::Static("tok".into())).contains("tok"));
    }
}
