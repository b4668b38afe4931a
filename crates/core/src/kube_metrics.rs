//! Counts the operator's requests to the Kubernetes API, as client-go does for upstream.
//!
//! [`instrumented_client`] builds a `kube::Client` whose every request is counted in
//!
//! | series | labels | as |
//! |---|---|---|
//! | `rest_client_requests_total` (counter) | `code` (HTTP status, or `<error>`), `host`, `method` (HTTP method) | client-go's, which controller-runtime and so upstream ESO export |
//! | `eso_kubernetes_requests_total` (counter) | `verb` (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`), `resource` (plural, with `/subresource`), `code` | ours: the API server's own verb names, to count calls per ExternalSecret |

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use kube::client::{Body, ClientBuilder};
use tower::{Layer, Service};

/// client-go's request counter.
pub const REST_CLIENT_REQUESTS: &str = "rest_client_requests_total";
/// Our request counter by API verb and resource.
pub const KUBERNETES_REQUESTS: &str = "eso_kubernetes_requests_total";

/// A `kube::Client` for `config` whose requests are counted (see the module docs).
pub fn instrumented_client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    let host = config
        .cluster_url
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    let builder = ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&CountRequests { host }).build())
}

/// The tower layer behind [`instrumented_client`].
#[derive(Clone, Debug)]
pub struct CountRequests {
    host: String,
}

impl<S> Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            host: self.host.clone(),
        }
    }
}

/// A service whose requests are counted.
#[derive(Clone, Debug)]
pub struct Counted<S> {
    inner: S,
    host: String,
}

impl<S, B> Service<Request<Body>> for Counted<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let method = request.method().clone();
        let (verb, resource) = classify(&method, request.uri().path(), request.uri().query());
        let host = self.host.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "<error>".to_owned(),
            };
            metrics::counter!(
                REST_CLIENT_REQUESTS,
                "code" => code.clone(),
                "host" => host,
                "method" => method.as_str().to_owned()
            )
            .increment(1);
            metrics::counter!(
                KUBERNETES_REQUESTS,
                "verb" => verb,
                "resource" => resource,
                "code" => code
            )
            .increment(1);
            result
        })
    }
}

/// The API server's verb and the resource (`secrets`, `externalsecrets/status`) of a request,
/// from its method and path (`/api/v1/namespaces/ns/secrets/name`,
/// `/apis/group/version/resource`, ...).
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> (&'static str, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Skip the group/version prefix: `api/v1` or `apis/<group>/<version>`.
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    // `namespaces/<ns>/<resource>...`, unless the namespace itself is the object.
    let rest = match rest {
        ["namespaces", _ns, resource, more @ ..] => {
            let mut v = vec![*resource];
            v.extend_from_slice(more);
            v
        }
        other => other.to_vec(),
    };
    let (resource, named) = match rest.as_slice() {
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
        [] => (String::new(), false),
    };
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_as_the_api_server_names_them() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets/db",
                None,
                "get",
                "secrets",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                Some("labelSelector=x"),
                "list",
                "secrets",
            ),
            (
                Method::GET,
                "/api/v1/secrets",
                Some("watch=true&resourceVersion=5"),
                "watch",
                "secrets",
            ),
            (
                Method::PATCH,
                "/apis/external-secrets.io/v1/namespaces/a/externalsecrets/db/status",
                Some("fieldManager=x"),
                "patch",
                "externalsecrets/status",
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/a/events",
                None,
                "create",
                "events",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/secrets/db",
                None,
                "delete",
                "secrets",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a",
                None,
                "get",
                "namespaces",
            ),
            (
                Method::GET,
                "/api/v1/namespaces",
                None,
                "list",
                "namespaces",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
                None,
                "update",
                "leases",
            ),
        ];
        for (method, path, query, verb, resource) in cases {
            assert_eq!(
                classify(&method, path, query),
                (verb, resource.to_owned()),
                "{method} {path}"
            );
        }
    }
}
