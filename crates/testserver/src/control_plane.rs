//! A private real control plane, for tests that stop and restart the API server on the real
//! lane: the shared cluster of `ESO_TEST_KUBECONFIG` must not go away under the other tests,
//! so such a test gets its own etcd, kube-apiserver and kube-controller-manager, started with
//! the `up.sh` of the folder [`CONTROL_PLANE_ENV`] names (see that folder's README), and stops
//! and restarts only its kube-apiserver process, in front of the same etcd.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::Error;

/// The environment variable naming the folder that holds the control plane's `up.sh` and
/// `down.sh`; needed on the real lane by tests that stop the API server.
pub const CONTROL_PLANE_ENV: &str = "ESO_TEST_K8S_DIR";

/// How many private control planes may run at once on one machine (one per test thread).
const SLOTS: usize = 16;

/// How long the API server gets to stop on SIGTERM, and to answer after a restart.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const START_TIMEOUT: Duration = Duration::from_secs(90);

fn failed(what: impl Into<String>) -> Error {
    Error::ControlPlane(what.into())
}

/// A control plane of this test's own, in a reusable slot directory (the unpacked binaries
/// and the PKI stay there between runs; `up.sh` wipes etcd at every start).
pub(crate) struct PrivateControlPlane {
    scripts: PathBuf,
    dir: PathBuf,
    /// Held (locked) while the slot is in use.
    _slot: File,
    /// The API server's command line, saved when it is stopped.
    apiserver: Mutex<Option<Vec<OsString>>>,
}

/// How many times a private control plane's start is tried.
const START_ATTEMPTS: u32 = 3;

impl PrivateControlPlane {
    /// Starts a fresh control plane; returns it and the path of its admin kubeconfig.
    pub(crate) async fn start() -> Result<(Self, PathBuf), Error> {
        let scripts = std::env::var_os(CONTROL_PLANE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                failed(format!(
                    "this test stops and restarts the API server, so on a real cluster it needs \
                     a control plane of its own: set {CONTROL_PLANE_ENV} to the folder that \
                     holds the control plane's up.sh and down.sh"
                ))
            })?;
        let (dir, slot) = claim_slot()?;
        // A start can lose a race for a port (up.sh picks free ports, but a client's ephemeral
        // port may take one before kube-apiserver binds it); such a start is retried, with the
        // last failure reported if none succeeds.
        let mut attempt = 1;
        let out = loop {
            let out = tokio::process::Command::new(scripts.join("up.sh"))
                .arg(&dir)
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| failed(format!("running {}: {e}", scripts.join("up.sh").display())))?;
            if out.status.success() {
                break out;
            }
            if attempt == START_ATTEMPTS {
                return Err(failed(format!(
                    "up.sh {} failed {attempt} times; the last ({}): {}",
                    dir.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            attempt += 1;
            let _ = tokio::process::Command::new(scripts.join("down.sh"))
                .arg(&dir)
                .stdin(Stdio::null())
                .output()
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Ok((
            Self {
                scripts,
                dir,
                _slot: slot,
                apiserver: Mutex::new(None),
            },
            kubeconfig,
        ))
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("run").join("kube-apiserver.pid")
    }

    /// Stops the kube-apiserver process (SIGTERM, SIGKILL after a while), keeping etcd and
    /// the controller manager running, and remembers its command line for
    /// [`start_apiserver`](Self::start_apiserver).
    pub(crate) async fn stop_apiserver(&self) -> Result<(), Error> {
        let pid = std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .ok_or_else(|| failed(format!("no kube-apiserver pid in {}", self.dir.display())))?;
        let argv = command_line(pid).ok_or_else(|| {
            failed(format!(
                "kube-apiserver (pid {pid}) of {} is not running",
                self.dir.display()
            ))
        })?;
        if let Ok(mut saved) = self.apiserver.lock() {
            *saved = Some(argv.clone());
        }
        signal(pid, "TERM")?;
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        while command_line(pid).as_ref() == Some(&argv) {
            if tokio::time::Instant::now() > deadline {
                signal(pid, "KILL")?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Starts the kube-apiserver again with the command line it had, and waits until it
    /// answers through `client`.
    pub(crate) async fn start_apiserver(&self, client: &kube::Client) -> Result<(), Error> {
        let argv = self
            .apiserver
            .lock()
            .ok()
            .and_then(|saved| saved.clone())
            .ok_or_else(|| failed("the API server was not stopped by this test"))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join("kube-apiserver.log"))
            .map_err(|e| failed(format!("opening the API server's log: {e}")))?;
        let err_log = log
            .try_clone()
            .map_err(|e| failed(format!("opening the API server's log: {e}")))?;
        // Its own session, as up.sh starts it, so that it outlives nothing of ours by accident.
        let mut child = Command::new("setsid")
            .args(&argv)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| failed(format!("starting kube-apiserver: {e}")))?;
        std::fs::write(self.pid_file(), format!("{}\n", child.id()))
            .map_err(|e| failed(format!("writing the API server's pid file: {e}")))?;
        // Reap it when down.sh stops it, so no zombie outlives the test.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let ready = client.apiserver_version().await.is_ok()
                && kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
                    .get_opt("default")
                    .await
                    .is_ok_and(|ns| ns.is_some());
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(failed(format!(
                    "kube-apiserver of {} did not answer within {START_TIMEOUT:?} of its restart \
                     (its log: logs/kube-apiserver.log there)",
                    self.dir.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the whole control plane (`down.sh`); the slot directory stays for the next test.
    pub(crate) fn shutdown(&self) {
        let _ = Command::new(self.scripts.join("down.sh"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The first slot directory whose lock is free, locked.
fn claim_slot() -> Result<(PathBuf, File), Error> {
    let root = std::env::temp_dir().join("eso-k8s-private");
    for slot in 0..SLOTS {
        let dir = root.join(format!("slot-{slot}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".eso-test-slot"))
            .map_err(|e| failed(format!("opening the slot lock in {}: {e}", dir.display())))?;
        match file.try_lock() {
            Ok(()) => return Ok((dir, file)),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(failed(format!("locking {}: {e}", dir.display())));
            }
        }
    }
    Err(failed(format!(
        "all {SLOTS} private control plane slots under {} are in use",
        root.display()
    )))
}

/// The command line of a running process (`None` once it is gone or a zombie).
fn command_line(pid: u32) -> Option<Vec<OsString>> {
    use std::os::unix::ffi::OsStringExt as _;
    let raw = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")).ok()?;
    let argv: Vec<OsString> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    (!argv.is_empty()).then_some(argv)
}

/// Sends a signal; a process that exited meanwhile is as good as stopped, so only a `kill`
/// that cannot run is an error.
fn signal(pid: u32, name: &str) -> Result<(), Error> {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(drop)
        .map_err(|e| failed(format!("running kill: {e}")))
}
