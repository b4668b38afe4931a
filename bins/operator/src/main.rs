//! `eso-operator`: flags, logging, the metrics exporter, the admin HTTP endpoints and signals;
//! the controllers themselves live in `eso-core`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use eso_core::controller::{ControllerConfig, ExternalSecretController};
use eso_core::object_metrics::StatusSeries;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(
    name = "eso-operator",
    version,
    about = "Keeps Kubernetes Secrets in sync with external secret stores"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Address of the Prometheus metrics endpoint (`/metrics`).
    #[arg(long, default_value = ":8080")]
    metrics_addr: String,
    /// Address of the health endpoints (`/livez`, `/readyz`).
    #[arg(long, default_value = ":8082")]
    health_addr: String,
    /// How many reconciles run at once.
    #[arg(long, default_value_t = 1)]
    concurrent: u16,
    /// Watch only this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Process only stores whose spec.controller is empty or this.
    #[arg(long, default_value = "default")]
    controller_class: String,
    /// Leader election (not available in this build yet: only `false` is accepted).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    enable_leader_election: bool,
    /// Lease name used for leader election.
    #[arg(long, default_value = "external-secrets-controller")]
    leader_election_id: String,
    /// Kubernetes client queries per second (accepted for compatibility; kube's client does not
    /// rate-limit).
    #[arg(long, default_value_t = 50.0)]
    client_qps: f32,
    /// Kubernetes client burst (accepted for compatibility).
    #[arg(long, default_value_t = 100)]
    client_burst: u32,
    /// Whether ExternalSecrets may use ClusterSecretStores.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_cluster_store_reconciler: bool,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Json,
    Text,
}

fn parse_addr(flag: &str, value: &str) -> Result<SocketAddr> {
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else {
        value.to_owned()
    };
    full.parse().with_context(|| {
        format!("--{flag} {value:?} is not an address such as :8080 or 127.0.0.1:8080")
    })
}

fn init_logging(args: &RunArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("--log-level {:?} is not a level", args.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

struct Admin {
    metrics: PrometheusHandle,
    series: Arc<StatusSeries>,
    ready: AtomicBool,
}

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let admin = admin.clone();
                async move {
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/metrics" => {
                            let mut text = admin.metrics.render();
                            text.push_str(&admin.series.render());
                            respond(StatusCode::OK, text)
                        }
                        "/livez" | "/healthz" => respond(StatusCode::OK, "ok\n".into()),
                        "/readyz" if admin.ready.load(Ordering::Relaxed) => {
                            respond(StatusCode::OK, "ok\n".into())
                        }
                        "/readyz" => respond(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
                        _ => respond(StatusCode::NOT_FOUND, "not found\n".into()),
                    })
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

async fn run(args: RunArgs) -> Result<()> {
    init_logging(&args)?;
    if args.enable_leader_election {
        bail!(
            "--enable-leader-election=true is not available in this build yet; run one replica with --enable-leader-election=false"
        );
    }
    let metrics_addr = parse_addr("metrics-addr", &args.metrics_addr)?;
    let health_addr = parse_addr("health-addr", &args.health_addr)?;
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;

    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    tracing::info!(server = %version.git_version, "connected to the API server");

    let config = ControllerConfig::default()
        .controller_class(args.controller_class.clone())
        .namespace(args.namespace.clone())
        .concurrency(args.concurrent)
        .cluster_stores(args.enable_cluster_store_reconciler)
        .instance(std::env::var("POD_NAME").ok());
    let controller =
        ExternalSecretController::new(client, config, eso_core::render::builtin_providers());
    let admin = Arc::new(Admin {
        metrics,
        series: controller.status_series(),
        ready: AtomicBool::new(false),
    });

    let metrics_listener = TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {metrics_addr}"))?;
    let health_listener = TcpListener::bind(health_addr)
        .await
        .with_context(|| format!("cannot listen on {health_addr}"))?;
    tokio::spawn(serve(metrics_listener, admin.clone()));
    tokio::spawn(serve(health_listener, admin.clone()));

    let upkeep = admin.metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    admin.ready.store(true, Ordering::Relaxed);
    tracing::info!(%metrics_addr, %health_addr, "eso-operator started");
    controller.run(shutdown_signal()).await;
    tracing::info!("eso-operator stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Crd) = cli.command {
        let docs: Vec<String> = eso_api::crds::all()
            .iter()
            .map(eso_api::crds::to_yaml)
            .collect();
        print!("{}", docs.join("---\n"));
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.run)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
