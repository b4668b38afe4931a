//! `eso-operator`: flags, logging, the metrics exporter, the admin HTTP endpoints and signals;
//! the controllers live in `eso-core`, leader election in `eso-leader`.
//!
//! With leader election on (the default), every replica keeps its caches and status series
//! warm, and only the Lease holder runs reconcilers; the per-object status series are exported
//! by the leader only (`--metrics-per-object=leader`), and every replica exports
//! `leader_election_master_status{name}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use eso_core::ces_controller::{run_ces_controller, spawn_ces_series};
use eso_core::controller::{ControllerConfig, ExternalSecretController};
use eso_core::fetch::ReadSharing;
use eso_core::object_metrics::StatusSeries;
use eso_core::store_controller::{StoreContext, StoreControllerConfig, run_store_controllers};
use eso_leader::{LeaseConfig, LeaseManager};
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Where a pod finds its own namespace.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

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
    /// Run reconcilers only while holding the leader election Lease (several replicas can
    /// then run safely). With `false`, this replica always reconciles.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    enable_leader_election: bool,
    /// Lease name used for leader election.
    #[arg(long, default_value = eso_leader::DEFAULT_LEASE_NAME)]
    leader_election_id: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, else the pod's own namespace).
    #[arg(long)]
    leader_election_namespace: Option<String>,
    /// How long a leader's Lease is respected after its last renewal (Go duration).
    #[arg(long, default_value = "15s", value_parser = go_duration)]
    leader_election_lease_duration: Duration,
    /// How long a leader keeps leading without renewing before it steps down (Go duration).
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    leader_election_renew_deadline: Duration,
    /// How often to try to acquire or renew the Lease (Go duration).
    #[arg(long, default_value = "2s", value_parser = go_duration)]
    leader_election_retry_period: Duration,
    /// Which replicas export per-object status series (`externalsecret_status_condition`):
    /// only the leader, or every replica.
    #[arg(long, value_enum, default_value_t = PerObjectMetrics::Leader)]
    metrics_per_object: PerObjectMetrics,
    /// Kubernetes client queries per second (accepted for compatibility; kube's client does not
    /// rate-limit).
    #[arg(long, default_value_t = 50.0)]
    client_qps: f32,
    /// Kubernetes client burst (accepted for compatibility).
    #[arg(long, default_value_t = 100)]
    client_burst: u32,
    /// Whether ClusterSecretStores are reconciled and ExternalSecrets may use them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_cluster_store_reconciler: bool,
    /// Whether SecretStores (and ClusterSecretStores) are validated and get a status.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_secret_store_reconciler: bool,
    /// Whether ClusterExternalSecrets are fanned out to namespaces.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_cluster_external_secret_reconciler: bool,
    /// How often stores without spec.refreshInterval are re-validated (Go duration).
    #[arg(long, default_value = "5m", value_parser = go_duration)]
    store_requeue_interval: Duration,
    /// When a refresh that found nothing new writes `status.refreshTime`: `on-change` writes
    /// nothing at steady state (refreshTime then tells when the Secret or the condition last
    /// changed); `every-refresh` writes it at every refresh, as upstream does.
    #[arg(long, value_enum, default_value_t = StatusRefreshTime::OnChange)]
    status_refresh_time: StatusRefreshTime,
    /// How long a value read from a provider is shared with other ExternalSecrets reading the
    /// same key of the same store: `refresh-interval` (each reader's own refreshInterval: one
    /// read per key per refresh window), `in-flight` (only simultaneous reads, as upstream
    /// reads), or a Go duration. A refresh forced by a change to the ExternalSecret always
    /// reads afresh.
    #[arg(long, default_value = "refresh-interval", value_parser = read_sharing)]
    provider_read_sharing: ReadSharing,
    /// Endpoint of an AWS-compatible service for the aws provider (default: the
    /// AWS_ENDPOINT_URL environment variable, else AWS itself).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
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

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StatusRefreshTime {
    /// Only when the Secret, the condition or the synced version changes.
    OnChange,
    /// At every refresh (upstream's behaviour).
    EveryRefresh,
}

impl From<StatusRefreshTime> for eso_core::status::RefreshTimeWrites {
    fn from(value: StatusRefreshTime) -> Self {
        match value {
            StatusRefreshTime::OnChange => Self::OnChange,
            StatusRefreshTime::EveryRefresh => Self::EveryRefresh,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PerObjectMetrics {
    /// Only the current leader exports them.
    Leader,
    /// Every replica exports them (they come from the stored status, so replicas agree).
    All,
}

fn read_sharing(value: &str) -> Result<ReadSharing, String> {
    match value {
        "refresh-interval" => Ok(ReadSharing::WithinRefreshInterval),
        "in-flight" => Ok(ReadSharing::InFlight),
        other => go_duration(other).map(ReadSharing::Within).map_err(|e| {
            format!("expected refresh-interval, in-flight or a duration like 5m: {e}")
        }),
    }
}

fn go_duration(value: &str) -> Result<Duration, String> {
    eso_api::duration::parse_go_duration(value).map_err(|e| e.to_string())
}

/// The Lease's namespace: the flag, else POD_NAMESPACE, else the pod's namespace file.
fn lease_namespace(
    flag: Option<&str>,
    pod_namespace: Option<String>,
    namespace_file: impl FnOnce() -> Option<String>,
) -> Result<String> {
    [flag.map(str::to_owned), pod_namespace]
        .into_iter()
        .flatten()
        .chain(std::iter::once_with(namespace_file).flatten())
        .map(|ns| ns.trim().to_owned())
        .find(|ns| !ns.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "cannot tell which namespace holds the leader election Lease: set --leader-election-namespace (or POD_NAMESPACE), or pass --enable-leader-election=false"
            )
        })
}

/// This process's identity in the Lease: the pod name (else the hostname) plus a random
/// suffix, so a restarted pod with the same name is a new candidate.
fn leader_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "eso-operator".to_owned());
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: the process id still tells restarts on one host apart.
        bytes = std::process::id().to_be_bytes();
    }
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{base}_{suffix}")
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
    series: Vec<Arc<StatusSeries>>,
    /// Whether this replica leads (always true without leader election).
    leading: watch::Receiver<bool>,
    per_object: PerObjectMetrics,
    ready: AtomicBool,
}

impl Admin {
    fn render_metrics(&self) -> String {
        let mut text = self.metrics.render();
        // The ExternalSecret series come first in `series`.
        if let Some(known) = self.series.first() {
            text = without_deleted_objects(&text, known);
        }
        if self.per_object == PerObjectMetrics::All || *self.leading.borrow() {
            for series in &self.series {
                text.push_str(&series.render());
            }
        }
        text
    }
}

/// The `name` and `namespace` labels of one exposition line (`metric{k="v",...} value`).
fn object_labels(line: &str) -> (Option<&str>, Option<&str>) {
    let (mut name, mut namespace) = (None, None);
    let Some(labels) = line
        .split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(labels, _)| labels)
    else {
        return (None, None);
    };
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        // Values are escaped with backslashes; find the closing quote.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        match key.trim_start_matches(',') {
            "name" => name = Some(&after[..end]),
            "namespace" => namespace = Some(&after[..end]),
            _ => {}
        }
        rest = &after[end + 1..];
    }
    (name, namespace)
}

/// The exporter's text without the per-object activity series (`externalsecret_*{name,
/// namespace}`) of ExternalSecrets that no longer exist: upstream deletes them when the object
/// is deleted (`RemoveMetrics`), and the metrics facade cannot delete a series.
fn without_deleted_objects(text: &str, known: &StatusSeries) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let stale = line.starts_with("externalsecret_")
            && matches!(object_labels(line), (Some(name), Some(ns)) if !known.contains(ns, name));
        if !stale {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
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
                        "/metrics" => respond(StatusCode::OK, admin.render_metrics()),
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

/// Resolves on SIGINT or SIGTERM.
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
    let metrics_addr = parse_addr("metrics-addr", &args.metrics_addr)?;
    let health_addr = parse_addr("health-addr", &args.health_addr)?;
    let lease_config = LeaseConfig::default()
        .name(args.leader_election_id.clone())
        .lease_duration(args.leader_election_lease_duration)
        .renew_deadline(args.leader_election_renew_deadline)
        .retry_period(args.leader_election_retry_period);
    let lease_namespace = if args.enable_leader_election {
        lease_config
            .timings()
            .validate()
            .map_err(|e| anyhow!("invalid --leader-election-* timings: {e}"))?;
        Some(lease_namespace(
            args.leader_election_namespace.as_deref(),
            std::env::var("POD_NAMESPACE").ok(),
            || std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).ok(),
        )?)
    } else {
        None
    };
    // controller-runtime's buckets, so upstream's dashboards read our histograms unchanged.
    let mut exporter = PrometheusBuilder::new();
    for (metric, buckets) in eso_core::runtime_metrics::histogram_buckets() {
        exporter = exporter
            .set_buckets_for_metric(Matcher::Full(metric.to_owned()), buckets)
            .context("cannot configure the metrics exporter")?;
    }
    let metrics = exporter
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

    // AWS_ENDPOINT_URL_<SERVICE> (the SDK's per-service variables) win over the general one.
    let aws = eso_provider_aws::AwsConfig::default()
        .endpoint_url(args.aws_endpoint_url.clone())
        .endpoints_from_variables(|name| {
            (name != eso_provider_aws::ENDPOINT_VARIABLE)
                .then(|| std::env::var(name).ok())
                .flatten()
        });
    let identity = leader_identity();
    let config = ControllerConfig::default()
        .controller_class(args.controller_class.clone())
        .namespace(args.namespace.clone())
        .concurrency(args.concurrent)
        .cluster_stores(args.enable_cluster_store_reconciler)
        .instance(Some(identity.clone()))
        .refresh_time_writes(args.status_refresh_time.into())
        .read_sharing(args.provider_read_sharing);
    let controller = ExternalSecretController::new(
        client.clone(),
        config,
        eso_core::render::builtin_providers_with(aws.clone()),
    );

    let store_ctx = Arc::new(StoreContext::new(
        client.clone(),
        StoreControllerConfig::default()
            .controller_class(args.controller_class.clone())
            .namespace(args.namespace.clone())
            .requeue_interval(args.store_requeue_interval),
        eso_core::render::builtin_providers_with(aws.clone()),
    ));
    let cluster_stores = args.enable_cluster_store_reconciler && args.namespace.is_none();
    let stores_on = args.enable_secret_store_reconciler;
    let ces_on = args.enable_cluster_external_secret_reconciler && args.namespace.is_none();
    let ces_client = client.clone();

    let manager = match &lease_namespace {
        Some(ns) => Some(
            LeaseManager::new(client, ns, identity.clone(), lease_config.clone())
                .context("cannot set up leader election")?,
        ),
        None => {
            tracing::warn!(
                "leader election is off: this replica always reconciles; run a single replica"
            );
            None
        }
    };
    let (_always, always_leading) = watch::channel(true);
    let leading = manager
        .as_ref()
        .map_or(always_leading, LeaseManager::subscribe);
    let gauge =
        metrics::gauge!("leader_election_master_status", "name" => args.leader_election_id.clone());
    let mut follow = leading.clone();
    tokio::spawn(async move {
        loop {
            gauge.set(if *follow.borrow_and_update() {
                1.0
            } else {
                0.0
            });
            if follow.changed().await.is_err() {
                gauge.set(0.0);
                return;
            }
        }
    });

    let ces_series = Arc::new(StatusSeries::cluster_external_secrets());
    let admin = Arc::new(Admin {
        metrics,
        series: vec![
            controller.status_series(),
            store_ctx.store_series.clone(),
            store_ctx.cluster_store_series.clone(),
            ces_series.clone(),
        ],
        leading: leading.clone(),
        per_object: args.metrics_per_object,
        ready: AtomicBool::new(false),
    });
    let metrics_listener = TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {metrics_addr}"))?;
    let health_listener = TcpListener::bind(health_addr)
        .await
        .with_context(|| format!("cannot listen on {health_addr}"))?;
    let metrics_addr = metrics_listener.local_addr().unwrap_or(metrics_addr);
    let health_addr = health_listener.local_addr().unwrap_or(health_addr);
    tokio::spawn(serve(metrics_listener, admin.clone()));
    tokio::spawn(serve(health_listener, admin.clone()));

    let upkeep = admin.metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    // Every replica keeps its caches and status series warm; only the leader reconciles.
    controller.start_watches();
    if stores_on {
        store_ctx.start_series_watches(cluster_stores);
    }
    if ces_on {
        spawn_ces_series(ces_client.clone(), ces_series);
    }
    admin.ready.store(true, Ordering::Relaxed);
    tracing::info!(%metrics_addr, %health_addr, %identity, leader_election = manager.is_some(), "eso-operator started");

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop_tx.send_replace(true);
    });
    // A stepping-down leader has lease duration minus renew deadline before anyone else may
    // lead; in-flight reconciles get half of it, then they are cancelled.
    let timings = lease_config.timings();
    let grace = timings
        .lease_duration
        .saturating_sub(timings.renew_deadline)
        / 2;
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let lease_task = manager.map(|m| {
        tokio::spawn(m.run(async move {
            let _ = release_rx.await;
        }))
    });
    let (controller, who) = (&controller, identity.as_str());
    let store_ctx = &store_ctx;
    let ces_client = &ces_client;
    eso_leader::run_terms(leading, stop_rx, move |end| {
        // One end of term, seen by every controller of this replica.
        let (term_tx, term_rx) = watch::channel(false);
        tokio::spawn(async move {
            end.await;
            term_tx.send_replace(true);
        });
        let ended = move || {
            let mut rx = term_rx.clone();
            async move {
                let _ = rx.wait_for(|e| *e).await;
            }
        };
        async move {
            tracing::info!(identity = who, "starting reconcilers");
            let stores = async {
                if stores_on {
                    run_store_controllers(store_ctx.clone(), cluster_stores, ended()).await;
                }
            };
            let fanout = async {
                if ces_on {
                    run_ces_controller(ces_client.clone(), ended()).await;
                }
            };
            let work = async {
                tokio::join!(
                    controller.reconcile_until(ended(), Some(grace)),
                    stores,
                    fanout
                )
            };
            // kube-runtime's graceful shutdown never finishes when it starts before the
            // controller's cache is ready (the runner holds its queue until then), so a term
            // ending right after it began (SIGTERM, a lost Lease) would never end and the
            // next term would never start. Every controller gets the same grace, then is
            // dropped, which cancels its in-flight reconciles.
            let deadline = async {
                ended().await;
                tokio::time::sleep(grace).await;
            };
            tokio::select! {
                _ = work => {}
                () = deadline => {
                    tracing::warn!(?grace, "controllers still running after the grace period were cancelled");
                }
            }
            tracing::info!(identity = who, "reconcilers stopped");
        }
    })
    .await;
    // Reconcilers are stopped: now the Lease can go.
    let _ = release_tx.send(());
    if let Some(task) = lease_task {
        let _ = task.await;
    }
    tracing::info!("eso-operator stopped");
    Ok(())
}

/// The stack of each runtime worker thread.
const WORKER_STACK: usize = 16 * 1024 * 1024;

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
        // Reconcile futures of unoptimised builds outgrow tokio's 2 MiB default.
        .thread_stack_size(WORKER_STACK)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn lease_namespace_prefers_flag_then_env_then_file() {
        let file = || Some("from-file\n".to_owned());
        assert_eq!(
            lease_namespace(Some("flag"), Some("env".into()), file).unwrap(),
            "flag"
        );
        assert_eq!(
            lease_namespace(None, Some("env".into()), file).unwrap(),
            "env"
        );
        assert_eq!(lease_namespace(Some(""), None, file).unwrap(), "from-file");
        let err = lease_namespace(None, None, || None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--leader-election-namespace"), "{err}");
    }

    #[test]
    fn leader_election_flags_parse_go_durations_and_default_to_on() {
        let cli = Cli::try_parse_from(["eso-operator"]).unwrap();
        assert!(cli.run.enable_leader_election);
        assert_eq!(cli.run.leader_election_id, "external-secrets-controller");
        assert_eq!(
            cli.run.leader_election_lease_duration,
            Duration::from_secs(15)
        );
        assert_eq!(
            cli.run.leader_election_renew_deadline,
            Duration::from_secs(10)
        );
        assert_eq!(cli.run.leader_election_retry_period, Duration::from_secs(2));
        assert_eq!(cli.run.metrics_per_object, PerObjectMetrics::Leader);
        let cli = Cli::try_parse_from([
            "eso-operator",
            "--enable-leader-election=false",
            "--leader-election-lease-duration=1m30s",
            "--leader-election-retry-period",
            "500ms",
            "--metrics-per-object=all",
        ])
        .unwrap();
        assert!(!cli.run.enable_leader_election);
        assert_eq!(
            cli.run.leader_election_lease_duration,
            Duration::from_secs(90)
        );
        assert_eq!(
            cli.run.leader_election_retry_period,
            Duration::from_millis(500)
        );
        assert_eq!(cli.run.metrics_per_object, PerObjectMetrics::All);
        let bare = Cli::try_parse_from(["eso-operator", "--enable-leader-election"]).unwrap();
        assert!(bare.run.enable_leader_election);
        assert!(
            Cli::try_parse_from(["eso-operator", "--leader-election-renew-deadline=soon"]).is_err()
        );
    }

    #[test]
    fn activity_series_of_deleted_external_secrets_are_not_exported() {
        let known = StatusSeries::external_secrets();
        known.observe_pairs("ns", "kept", Vec::new());
        let text = "# TYPE externalsecret_sync_calls_total counter\n\
            externalsecret_sync_calls_total{name=\"kept\",namespace=\"ns\"} 3\n\
            externalsecret_sync_calls_total{name=\"gone\",namespace=\"ns\"} 2\n\
            externalsecret_reconcile_duration{namespace=\"ns\",name=\"gone\"} 5\n\
            externalsecret_provider_api_calls_count{provider=\"fake\",call=\"get\"} 7\n\
            leader_election_master_status{name=\"gone\"} 1\n";
        let out = without_deleted_objects(text, &known);
        assert_eq!(
            out,
            "# TYPE externalsecret_sync_calls_total counter\n\
            externalsecret_sync_calls_total{name=\"kept\",namespace=\"ns\"} 3\n\
            externalsecret_provider_api_calls_count{provider=\"fake\",call=\"get\"} 7\n\
            leader_election_master_status{name=\"gone\"} 1\n"
        );
    }

    #[test]
    fn read_sharing_takes_a_mode_or_a_duration() {
        assert_eq!(
            read_sharing("refresh-interval"),
            Ok(ReadSharing::WithinRefreshInterval)
        );
        assert_eq!(read_sharing("in-flight"), Ok(ReadSharing::InFlight));
        assert_eq!(
            read_sharing("90s"),
            Ok(ReadSharing::Within(Duration::from_secs(90)))
        );
        assert!(read_sharing("sometimes").unwrap_err().contains("in-flight"));
    }

    #[test]
    fn per_object_series_are_rendered_by_the_leader_only_unless_all() {
        let metrics = PrometheusBuilder::new().build_recorder().handle();
        let series = Arc::new(StatusSeries::external_secrets());
        let mut es = eso_core::testing::EsBuilder::new("db").build();
        es.metadata.namespace = Some("ns".into());
        es.status = serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "True"}]
        }))
        .ok();
        series.observe(&es);
        let (leading_tx, leading) = watch::channel(false);
        let admin = |per_object| Admin {
            metrics: metrics.clone(),
            series: vec![series.clone()],
            leading: leading.clone(),
            per_object,
            ready: AtomicBool::new(true),
        };
        let needle = "externalsecret_status_condition{";
        assert!(
            !admin(PerObjectMetrics::Leader)
                .render_metrics()
                .contains(needle)
        );
        assert!(
            admin(PerObjectMetrics::All)
                .render_metrics()
                .contains(needle)
        );
        leading_tx.send_replace(true);
        assert!(
            admin(PerObjectMetrics::Leader)
                .render_metrics()
                .contains(needle)
        );
    }
}
