//! The helpers end-to-end tests use: seeding, key Secrets, counting, faults, stop on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_testserver_gcp::{Fault, GcpTestServer, method};

#[tokio::test]
async fn key_secrets_point_at_the_server_and_requests_are_counted() {
    let server = GcpTestServer::start().await.unwrap();
    let manifest = server.service_account_key_secret(
        "apps",
        "gcp-key",
        "key.json",
        "eso@p1.iam.gserviceaccount.com",
    );
    assert_eq!(manifest["kind"], "Secret");
    let key: serde_json::Value =
        serde_json::from_str(manifest["stringData"]["key.json"].as_str().unwrap()).unwrap();
    assert_eq!(key["token_uri"], server.token_url().as_str());
    assert_eq!(key["client_email"], "eso@p1.iam.gserviceaccount.com");

    let name = server
        .secret("p1", "db")
        .label("env", "prod")
        .version(b"v")
        .create();
    assert_eq!(
        name,
        format!("projects/{}/secrets/db", server.project_number("p1"))
    );
    let token = server.access_token("reader@p1.iam.gserviceaccount.com");
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/projects/p1/secrets/db/versions/latest:access",
        server.url()
    );
    let ok = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    server.inject(
        Fault::status(503)
            .method(method::ACCESS_SECRET_VERSION)
            .times(1),
    );
    let failed = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(server.count(method::ACCESS_SECRET_VERSION), 3);
    server.reset_counts();
    assert!(server.counts().is_empty());

    // Dropping the server stops it.
    let base = server.url();
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(http.get(format!("{base}/")).send().await.is_err());
}
