//! `eso-operator`: flags, logging, the metrics exporter, the admin HTTP endpoints and signals;
//! the controllers and the leadership terms that run them live in `eso-core`'s `Manager`,
//! leader election in `eso-leader`.
//!
//! With leader election on (the default), every replica keeps its caches and status series
//! warm, and only the Lease holder runs reconcilers; the per-object status series are exported
//! by the leader only (`--metrics-per-object=leader`), and every replica exports
//! `leader_election_master_status{name}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use eso_core::{
    ControllerConfig, LeaseConfig, Manager, ManagerConfig, ManagerStatus, ReadSharing,
    RefreshTimeWrites,
};
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

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
    /// How many reconciles run at once (upstream's default is 1; see docs/benchmarks.md).
    #[arg(long, default_value_t = eso_core::controller::DEFAULT_CONCURRENCY)]
    concurrent: u16,
    /// At most this many provider reads in flight per store (0: unbounded).
    #[arg(long, default_value_t = eso_core::fetch::DEFAULT_STORE_CONCURRENCY)]
    store_concurrency: usize,
    /// Watch only this namespace, or these (comma-separated: `team-a,team-b`); each gets its
    /// own namespaced watches, so a Role per namespace is all the RBAC needed.
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
    /// Whether PushSecrets are pushed to their stores.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_push_secret_reconciler: bool,
    /// Whether ClusterPushSecrets are fanned out to namespaces.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_cluster_push_secret_reconciler: bool,
    /// How often stores without spec.refreshInterval are re-validated (Go duration).
    #[arg(long, default_value = "5m", value_parser = go_duration)]
    store_requeue_interval: Duration,
    /// How long a superseded GeneratorState (e.g. a Vault lease of a value generated before)
    /// waits before it is cleaned up (Go duration; docs/generators.md).
    #[arg(long, default_value = "10m", value_parser = go_duration)]
    generator_state_grace: Duration,
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
    /// Least-privilege tenancy: act on a namespace's ServiceAccounts and Secrets only when they
    /// opt in (token requests, adopting unmanaged Secrets, store and template reads; see
    /// docs/security.md). Off: upstream's rules.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    strict_tenancy: bool,
    /// Endpoint of an AWS-compatible service for the aws provider (default: the
    /// AWS_ENDPOINT_URL environment variable, else AWS itself). AWS_ENDPOINT_URL_SECRETS_MANAGER,
    /// AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_STS set one service's endpoint and win over
    /// both.
    #[arg(long, value_name = "URL")]
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

impl From<StatusRefreshTime> for RefreshTimeWrites {
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

impl From<PerObjectMetrics> for eso_core::PerObjectMetrics {
    fn from(value: PerObjectMetrics) -> Self {
        match value {
            PerObjectMetrics::Leader => Self::Leader,
            PerObjectMetrics::All => Self::All,
        }
    }
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

/// `--namespace` when it names one namespace.
fn single_namespace(flag: Option<&str>) -> Option<String> {
    flag.filter(|f| !f.contains(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
}

/// `--namespace` when it lists several (`a,b`), without blanks or repeats.
fn namespace_list(flag: Option<&str>) -> Vec<String> {
    let Some(flag) = flag.filter(|f| f.contains(',')) else {
        return Vec::new();
    };
    let mut list: Vec<String> = flag
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    list.sort();
    list.dedup();
    list
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

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// The admin endpoints: `/metrics` (the exporter's text as the manager filters and completes
/// it), `/livez` and `/readyz`.
async fn serve(listener: TcpListener, exporter: PrometheusHandle, status: ManagerStatus) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (exporter, status) = (exporter.clone(), status.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (exporter, status) = (exporter.clone(), status.clone());
                async move {
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/metrics" => {
                            respond(StatusCode::OK, status.metrics_text(&exporter.render()))
                        }
                        "/livez" | "/healthz" => respond(StatusCode::OK, "ok\n".into()),
                        "/readyz" if status.is_ready() => respond(StatusCode::OK, "ok\n".into()),
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

/// The manager's settings from the flags, the identity and the Lease namespace.
fn manager_config(
    args: &RunArgs,
    identity: String,
    lease: LeaseConfig,
    lease_namespace: Option<String>,
) -> ManagerConfig {
    ManagerConfig::new(identity)
        .controller(
            ControllerConfig::default()
                .controller_class(args.controller_class.clone())
                .namespace(single_namespace(args.namespace.as_deref()))
                .concurrency(args.concurrent)
                .store_concurrency(args.store_concurrency)
                .cluster_stores(args.enable_cluster_store_reconciler)
                .refresh_time_writes(args.status_refresh_time.into())
                .read_sharing(args.provider_read_sharing)
                .generator_state_grace(args.generator_state_grace)
                .tenancy(if args.strict_tenancy {
                    eso_core::tenancy::Tenancy::Strict
                } else {
                    eso_core::tenancy::Tenancy::Default
                }),
        )
        .store_requeue_interval(args.store_requeue_interval)
        .secret_stores(args.enable_secret_store_reconciler)
        .cluster_external_secrets(args.enable_cluster_external_secret_reconciler)
        .push_secrets(args.enable_push_secret_reconciler)
        .cluster_push_secrets(args.enable_cluster_push_secret_reconciler)
        .lease(lease)
        .leader_election(lease_namespace)
        .namespaces(namespace_list(args.namespace.as_deref()))
        .per_object_metrics(args.metrics_per_object.into())
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
    let exporter = exporter
        .install_recorder()
        .context("cannot install the metrics recorder")?;

    // Every request is counted (rest_client_requests_total, as client-go counts upstream's).
    let kube_config = kube::Config::infer()
        .await
        .context("cannot configure a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let client = eso_core::kube_metrics::instrumented_client(kube_config)
        .context("cannot build a Kubernetes client")?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    tracing::info!(server = %version.git_version, "connected to the API server");

    let aws = eso_provider_aws::AwsConfig::default()
        .endpoints_from(args.aws_endpoint_url.clone(), |name| {
            std::env::var(name).ok()
        });
    let generators = eso_providers::generators()
        .with(std::sync::Arc::new(
            eso_provider_aws::generators::StsSessionTokenGenerator::new().config(aws.clone()),
        ))
        .with(std::sync::Arc::new(
            eso_provider_aws::generators::EcrAuthorizationTokenGenerator::new()
                .config(aws.clone())
                .ecr_endpoint(std::env::var("AWS_ECR_ENDPOINT").ok())
                .ecr_public_endpoint(std::env::var("AWS_ECR_PUBLIC_ENDPOINT").ok()),
        ));
    // Google's, Azure's and Doppler's endpoints from their variables (docs/providers.md).
    let providers = eso_providers::builtin_from_env(|name| std::env::var(name).ok())
        .context("cannot configure the providers")?
        .with(std::sync::Arc::new(
            eso_provider_aws::AwsProvider::new().config(aws),
        ));
    let identity = leader_identity();
    let leader_election = lease_namespace.is_some();
    let manager = Manager::new(
        client,
        providers,
        manager_config(&args, identity.clone(), lease_config, lease_namespace)
            .generators(generators),
    )?;
    let status = manager.status();

    let metrics_listener = TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {metrics_addr}"))?;
    let health_listener = TcpListener::bind(health_addr)
        .await
        .with_context(|| format!("cannot listen on {health_addr}"))?;
    let metrics_addr = metrics_listener.local_addr().unwrap_or(metrics_addr);
    let health_addr = health_listener.local_addr().unwrap_or(health_addr);
    tokio::spawn(serve(metrics_listener, exporter.clone(), status.clone()));
    tokio::spawn(serve(health_listener, exporter.clone(), status));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            exporter.run_upkeep();
        }
    });
    tracing::info!(%metrics_addr, %health_addr, %identity, leader_election, "eso-operator started");

    manager.run(shutdown_signal()).await;
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
    fn namespace_takes_one_or_a_list() {
        assert_eq!(single_namespace(Some("team-a")), Some("team-a".to_owned()));
        assert_eq!(single_namespace(Some("a,b")), None);
        assert_eq!(single_namespace(None), None);
        assert!(namespace_list(Some("team-a")).is_empty());
        assert_eq!(namespace_list(Some("b, a,,b")), ["a", "b"]);
    }

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
    fn flags_become_the_manager_config() {
        let cli = Cli::try_parse_from([
            "eso-operator",
            "--namespace=team-a",
            "--controller-class=blue",
            "--concurrent=4",
            "--enable-cluster-external-secret-reconciler=false",
            "--store-requeue-interval=1m",
            "--status-refresh-time=every-refresh",
            "--provider-read-sharing=in-flight",
            "--metrics-per-object=all",
            "--generator-state-grace=90s",
        ])
        .unwrap();
        let lease = LeaseConfig::default().name("lease");
        let config = manager_config(&cli.run, "pod_1".into(), lease.clone(), Some("eso".into()));
        assert_eq!(config.identity, "pod_1");
        assert_eq!(config.lease, lease);
        assert_eq!(config.leader_election_namespace.as_deref(), Some("eso"));
        assert_eq!(config.controller.namespace.as_deref(), Some("team-a"));
        assert_eq!(config.controller.controller_class, "blue");
        assert_eq!(config.controller.concurrency, 4);
        assert_eq!(
            config.controller.refresh_time_writes,
            RefreshTimeWrites::EveryRefresh
        );
        assert_eq!(config.controller.read_sharing, ReadSharing::InFlight);
        assert_eq!(config.store_requeue_interval, Duration::from_secs(60));
        assert_eq!(
            config.controller.generator_state_grace,
            Duration::from_secs(90)
        );
        assert!(config.secret_stores);
        assert!(!config.cluster_external_secrets);
        assert_eq!(config.per_object_metrics, eso_core::PerObjectMetrics::All);
    }
}
