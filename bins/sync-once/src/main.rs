//! `sync-once`: one-shot ExternalSecret sync for CI jobs and local use.
//!
//! `sync-once render -f FILE...` reads SecretStores, ClusterSecretStores and ExternalSecrets
//! (plus Secrets, ConfigMaps and Namespaces standing in for the cluster's) and prints the
//! Secrets they produce, ready for `kubectl apply -f -`. No cluster is needed.
//!
//! Exit status: 0 when every ExternalSecret rendered, 1 when some failed (the others are still
//! printed), 2 for usage errors and unreadable or invalid input files.
//!
//! `sync-once run` syncs the ExternalSecrets of the cluster in `KUBECONFIG` (or in-cluster)
//! once, through the operator's reconcile path. `sync-once push` pushes the cluster's
//! PushSecrets once the same way (same flags, output and exit codes), writing only values the
//! stores do not already hold.
//!
//! This binary is the first embedder of `eso-core`: it uses only the surface at the crate's
//! root (`docs/embedding.md`), so whatever it does, another tool can do. The one addition is
//! the AWS endpoint, set the way the operator sets it: `--aws-endpoint-url`, else the SDK's
//! standard variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`,
//! `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL_STS`), given to the `aws` provider that replaces
//! the built-in one in the registry. The endpoints of Google Secret Manager, Azure's login host
//! and Doppler's API come from the variables `eso_providers::builtin_from_env` reads
//! (`CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER`, `AZURE_AUTHORITY_HOST`,
//! `DOPPLER_BASE_URL`, ...; docs/providers.md).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use eso_core::api::duration::{format_go_duration, parse_go_duration};
use eso_core::{
    ControllerConfig, ManifestError, ManifestSet, OneShotOptions, ProviderRegistry,
    PushSyncOutcome, Rendered, SyncOutcome, push_cluster, render_all_with_generators, sync_cluster,
};
use eso_provider_aws::{AwsConfig, AwsProvider};

#[derive(Parser, Debug)]
#[command(
    name = "sync-once",
    version,
    about = "One-shot ExternalSecret sync, without an operator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render the Secrets that ExternalSecrets in manifest files produce, without a cluster.
    Render(RenderArgs),
    /// Sync the ExternalSecrets of a cluster once (KUBECONFIG or in-cluster credentials).
    Run(RunArgs),
    /// Push the PushSecrets of a cluster once (KUBECONFIG or in-cluster credentials): values
    /// the stores already hold are not written again.
    Push(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Only this namespace.
    #[arg(short = 'n', long = "namespace", conflicts_with = "all_namespaces")]
    namespace: Option<String>,
    /// Every namespace (the default when --namespace is not given).
    #[arg(short = 'A', long = "all-namespaces")]
    all_namespaces: bool,
    /// A label selector on ExternalSecrets (PushSecrets for `push`), e.g. `team=a`.
    #[arg(short = 'l', long = "selector")]
    selector: Option<String>,
    /// Give up after this long (e.g. 60s, 5m).
    #[arg(long, default_value = "60s")]
    timeout: String,
    /// Print what would change without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Process only stores whose spec.controller is empty or this.
    #[arg(long, default_value = "default")]
    controller_class: String,
    #[command(flatten)]
    providers: ProviderArgs,
}

#[derive(clap::Args, Debug)]
struct ProviderArgs {
    /// Endpoint of an AWS-compatible service for the aws provider (default: the
    /// AWS_ENDPOINT_URL environment variable, else AWS itself). AWS_ENDPOINT_URL_SECRETS_MANAGER,
    /// AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_STS set one service's endpoint and win over
    /// both.
    #[arg(long, value_name = "URL")]
    aws_endpoint_url: Option<String>,
}

impl ProviderArgs {
    /// The built-in providers, the aws one pointed at the configured endpoints.
    /// The built-in providers, the endpoint variables applied (`eso_providers::builtin_from_env`:
    /// Google's, Azure's and Doppler's endpoints), the AWS one pointed at the configured
    /// endpoints.
    fn registry(&self) -> Result<ProviderRegistry, eso_providers::EnvError> {
        // One-shot syncs read one ExternalSecret after another, so a read never finds others to
        // share a batch with: waiting for them only adds latency (docs/benchmarks.md). `find`
        // still reads the values it matched in batches.
        let aws = AwsConfig::default()
            .batch_window(Duration::ZERO)
            .endpoints_from(self.aws_endpoint_url.clone(), |name| {
                std::env::var(name).ok()
            });
        Ok(
            eso_providers::builtin_from_env(|name| std::env::var(name).ok())?
                .with(Arc::new(AwsProvider::new().config(aws))),
        )
    }

    /// The built-in generator kinds, the AWS ones pointed at the configured endpoints.
    fn generators(&self) -> eso_core::GeneratorRegistry {
        let aws = AwsConfig::default().endpoints_from(self.aws_endpoint_url.clone(), |name| {
            std::env::var(name).ok()
        });
        eso_providers::generators()
            .with(Arc::new(
                eso_providers::aws::generators::StsSessionTokenGenerator::new().config(aws.clone()),
            ))
            .with(Arc::new(
                eso_providers::aws::generators::EcrAuthorizationTokenGenerator::new()
                    .config(aws)
                    .ecr_endpoint(std::env::var("AWS_ECR_ENDPOINT").ok())
                    .ecr_public_endpoint(std::env::var("AWS_ECR_PUBLIC_ENDPOINT").ok()),
            ))
    }
}

#[derive(clap::Args, Debug)]
struct RenderArgs {
    /// A manifest file, a folder of them (*.yaml, *.yml, *.json, recursively), or `-` for
    /// standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Yaml)]
    output: Output,
    /// The namespace of objects that set none.
    #[arg(short = 'n', long = "namespace", default_value = "default")]
    namespace: String,
    #[command(flatten)]
    providers: ProviderArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Yaml,
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Render(args) => runtime.block_on(render(args)),
        Command::Run(args) => runtime.block_on(run(args, false)),
        Command::Push(args) => runtime.block_on(run(args, true)),
    }
}

fn manifest_files(arg: &str) -> Result<Vec<PathBuf>> {
    let path = Path::new(arg);
    let meta = std::fs::metadata(path).with_context(|| format!("{arg}: cannot read"))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn read_inputs(args: &RenderArgs, set: &mut ManifestSet) -> Vec<String> {
    let mut errors = Vec::new();
    let add = |set: &mut ManifestSet, errors: &mut Vec<String>, name: &str, text: &str| {
        errors.extend(
            set.add_text(name, text)
                .iter()
                .map(ManifestError::to_string),
        );
    };
    for arg in &args.files {
        if arg == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => add(set, &mut errors, "<stdin>", &text),
                Err(e) => errors.push(format!("<stdin>: cannot read: {e}")),
            }
            continue;
        }
        let files = match manifest_files(arg) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("{e:#}"));
                continue;
            }
        };
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => add(set, &mut errors, &file.display().to_string(), &text),
                Err(e) => errors.push(format!("{}: cannot read: {e}", file.display())),
            }
        }
    }
    errors
}

async fn render(args: RenderArgs) -> ExitCode {
    let mut set = ManifestSet::new(&args.namespace);
    let input_errors = read_inputs(&args, &mut set);
    if !input_errors.is_empty() {
        for e in &input_errors {
            eprintln!("error: {e}");
        }
        return ExitCode::from(2);
    }
    if set.external_secrets.is_empty() {
        eprintln!("error: the input holds no ExternalSecret (apiVersion external-secrets.io/v1)");
        return ExitCode::from(2);
    }
    let registry = match args.providers.registry() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rendered = render_all_with_generators(&set, &registry, &args.providers.generators()).await;
    match print_rendered(&rendered, args.output) {
        Ok(failed) if failed => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: RunArgs, push: bool) -> ExitCode {
    let timeout = match parse_go_duration(&args.timeout) {
        Ok(t) if !t.is_zero() => t,
        Ok(_) => {
            eprintln!("error: --timeout must be more than zero");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: --timeout: {e}");
            return ExitCode::from(2);
        }
    };
    let work = async move {
        if push {
            push_inner(args).await
        } else {
            run_inner(args).await
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(code) => code,
        Err(_) => {
            eprintln!("error: gave up after {}", format_go_duration(timeout));
            ExitCode::from(1)
        }
    }
}

async fn run_inner(args: RunArgs) -> ExitCode {
    let client = match eso_core::kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build a Kubernetes client (KUBECONFIG or in-cluster): {e}");
            return ExitCode::from(2);
        }
    };
    let options = OneShotOptions {
        namespace: if args.all_namespaces {
            None
        } else {
            args.namespace.clone()
        },
        selector: args.selector.clone(),
        dry_run: args.dry_run,
        config: ControllerConfig::default()
            .controller_class(args.controller_class.clone())
            .generators(args.providers.generators()),
    };
    let registry = match args.providers.registry() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let results = match sync_cluster(client, registry, options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}: {}", e_source(&e));
            return ExitCode::from(1);
        }
    };
    let (mut synced, mut failed) = (0, 0);
    for r in &results {
        let line = match &r.outcome {
            SyncOutcome::Failed { message } => {
                failed += 1;
                format!("failed: {message}")
            }
            other => {
                synced += 1;
                match other {
                    SyncOutcome::Created => "synced: Secret created".to_owned(),
                    SyncOutcome::Updated => "synced: Secret updated".to_owned(),
                    SyncOutcome::Deleted => {
                        "synced: Secret deleted (deletionPolicy Delete)".to_owned()
                    }
                    SyncOutcome::Unchanged { reason } => format!("synced: no change ({reason})"),
                    SyncOutcome::Skipped => "synced: up to date".to_owned(),
                    SyncOutcome::NotOurs => {
                        "skipped: its store belongs to another controller class".to_owned()
                    }
                    SyncOutcome::WouldWrite { changes } => {
                        format!("dry run: would {}", changes.join(", "))
                    }
                    SyncOutcome::WouldDelete => "dry run: would delete the Secret".to_owned(),
                    SyncOutcome::Failed { .. } => String::new(),
                }
            }
        };
        println!("{}: {line}", r.external_secret);
    }
    println!("{synced} synced, {failed} failed");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn push_inner(args: RunArgs) -> ExitCode {
    let client = match eso_core::kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build a Kubernetes client (KUBECONFIG or in-cluster): {e}");
            return ExitCode::from(2);
        }
    };
    let options = OneShotOptions {
        namespace: if args.all_namespaces {
            None
        } else {
            args.namespace.clone()
        },
        selector: args.selector.clone(),
        dry_run: args.dry_run,
        config: ControllerConfig::default().controller_class(args.controller_class.clone()),
    };
    let registry = match args.providers.registry() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let results = match push_cluster(client, registry, options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}: {}", e_source(&e));
            return ExitCode::from(1);
        }
    };
    let (mut synced, mut failed) = (0, 0);
    for r in &results {
        let line = match &r.outcome {
            PushSyncOutcome::Failed { message } => {
                failed += 1;
                format!("failed: {message}")
            }
            other => {
                synced += 1;
                match other {
                    PushSyncOutcome::Pushed { changes } => {
                        format!("synced: {}", changes.join(", "))
                    }
                    PushSyncOutcome::Unchanged => {
                        "synced: no change (the stores hold every value)".to_owned()
                    }
                    PushSyncOutcome::Skipped => "synced: up to date".to_owned(),
                    PushSyncOutcome::SourceDeleted { deleted } => format!(
                        "synced: source Secret gone, {deleted} pushed value(s) deleted (deletionPolicy Delete)"
                    ),
                    PushSyncOutcome::Finalized => {
                        "synced: being deleted, pushed values deleted".to_owned()
                    }
                    PushSyncOutcome::NotOurs => {
                        "skipped: its stores belong to another controller class".to_owned()
                    }
                    PushSyncOutcome::WouldPush { changes } if changes.is_empty() => {
                        "dry run: no change".to_owned()
                    }
                    PushSyncOutcome::WouldPush { changes } => {
                        format!("dry run: would {}", changes.join(", "))
                    }
                    PushSyncOutcome::Failed { .. } => String::new(),
                }
            }
        };
        println!("{}: {line}", r.push_secret);
    }
    println!("{synced} synced, {failed} failed");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn e_source(e: &dyn std::error::Error) -> String {
    e.source().map(ToString::to_string).unwrap_or_default()
}

/// Prints the Secrets to stdout and failures and notes to stderr; returns whether any failed.
fn print_rendered(rendered: &[Rendered], output: Output) -> Result<bool> {
    let mut failed = false;
    let mut secrets = Vec::new();
    for r in rendered {
        for note in &r.notes {
            eprintln!(
                "note: {}: ExternalSecret {:?}: {note}",
                r.source, r.external_secret
            );
        }
        match &r.result {
            Ok(Some(secret)) => secrets.push(secret),
            Ok(None) => eprintln!(
                "note: {}: ExternalSecret {:?}: no Secret is written (see its creation and deletion policies)",
                r.source, r.external_secret
            ),
            Err(e) => {
                failed = true;
                eprintln!(
                    "error: {}: ExternalSecret {:?}: {}",
                    r.source,
                    r.external_secret,
                    e.chain()
                );
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    match output {
        Output::Yaml => {
            for (i, secret) in secrets.iter().enumerate() {
                if i > 0 {
                    writeln!(stdout, "---")?;
                }
                let text = serde_saphyr::to_string(secret).context("cannot write YAML")?;
                stdout.write_all(text.as_bytes())?;
            }
        }
        Output::Json => {
            let value = match secrets.as_slice() {
                [one] => serde_json::to_value(one)?,
                many => serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": many }),
            };
            writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
        }
    }
    Ok(failed)
}
