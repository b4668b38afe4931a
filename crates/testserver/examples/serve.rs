//! Runs the test API server until interrupted and writes a kubeconfig for it:
//! `cargo run -p eso-test-apiserver --example serve -- /tmp/kubeconfig`.

use eso_test_apiserver::TestApiServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "kubeconfig".into());
    let server = TestApiServer::start().await?;
    server.write_kubeconfig(std::path::Path::new(&path), "default")?;
    println!("serving {} (kubeconfig: {path})", server.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
