//! Executing a plan's Secret action: a write is one server-side apply with this
//! ExternalSecret's own field manager carrying exactly the data keys it claims (then, for
//! Owner/Orphan, whose data is exactly theirs, the removal of keys other writers added); a
//! delete carries the uid and resourceVersion of the Secret the plan was computed on, so a
//! Secret replaced or changed since is never deleted.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Map, Value};

use crate::plan::{GuardedDelete, SecretWrite};

/// What a write left: the Secret as the API server returned it, and whether the apply
/// created it (`201 Created`) rather than changed one that was there.
#[derive(Debug)]
pub struct Applied {
    /// The Secret after the write.
    pub secret: Secret,
    /// The Secret did not exist before the write.
    pub created: bool,
}

/// Applies a planned write with server-side apply under `manager`.
pub async fn apply_secret(
    api: &Api<Secret>,
    manager: &str,
    write: &SecretWrite,
) -> Result<Applied, kube::Error> {
    let name = write.secret.metadata.name.clone().unwrap_or_default();
    let mut applied = write.secret.clone();
    if let Some(data) = applied.data.as_mut() {
        data.retain(|k, _| write.claimed_keys.contains(k));
    }
    applied.metadata.managed_fields = None;
    applied.metadata.resource_version = None;
    let params = PatchParams::apply(manager).force();
    let (written, created) = apply_reporting_creation(api, &name, &params, &applied).await?;
    let secret = exclusive_data(api, manager, write, written).await?;
    Ok(Applied { secret, created })
}

/// One server-side apply, telling a create (`201`) from a change (`200`) by the status code,
/// which `Api::patch` does not return.
async fn apply_reporting_creation(
    api: &Api<Secret>,
    name: &str,
    params: &PatchParams,
    secret: &Secret,
) -> Result<(Secret, bool), kube::Error> {
    let request = kube::core::Request::new(api.resource_url())
        .patch(name, params, &Patch::Apply(secret))
        .map_err(kube::Error::BuildRequest)?;
    let response = api
        .clone()
        .into_client()
        .send(request.map(kube::client::Body::from))
        .await?;
    let status = response.status();
    let body = response.into_body().collect_bytes().await?;
    if status.is_client_error() || status.is_server_error() {
        let error = serde_json::from_slice::<kube::core::Status>(&body).unwrap_or_else(|_| {
            kube::core::Status::failure(
                String::from_utf8_lossy(&body).trim(),
                "Failed to parse error data",
            )
            .with_code(status.as_u16())
        });
        return Err(kube::Error::Api(error.boxed()));
    }
    let written: Secret = serde_json::from_slice(&body).map_err(kube::Error::SerdeError)?;
    Ok((written, status == http::StatusCode::CREATED))
}

/// For Owner/Orphan writes, removes the data keys other writers added to `written`.
async fn exclusive_data(
    api: &Api<Secret>,
    manager: &str,
    write: &SecretWrite,
    written: Secret,
) -> Result<Secret, kube::Error> {
    let name = write.secret.metadata.name.clone().unwrap_or_default();
    if !write.exclusive {
        return Ok(written);
    }
    let foreign: Vec<String> = written
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| !write.claimed_keys.contains(k))
        .collect();
    if foreign.is_empty() {
        return Ok(written);
    }
    let mut nulls = Map::new();
    for k in foreign {
        nulls.insert(k, Value::Null);
    }
    let patch = serde_json::json!({ "data": nulls });
    api.patch(
        &name,
        &PatchParams {
            field_manager: Some(manager.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(&patch),
    )
    .await
}

/// Deletes the Secret a plan chose, only if it is still the one the plan saw (same uid and
/// resourceVersion). A Secret that is already gone counts as deleted; a changed one answers
/// `409 Conflict`, and the caller plans again.
pub async fn delete_secret(api: &Api<Secret>, delete: &GuardedDelete) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: delete.uid.clone(),
            resource_version: delete.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(&delete.name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
