//! A real server run for the tests under a watchdog: `sh` starts it in the background and
//! kills it when its stdin closes. When the test process exits (even on `SIGKILL`) the kernel
//! closes the pipe, so no server outlives the tests, not even one held in a `static`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

/// One running server process, its output in a log file. Dropping it stops it.
#[derive(Debug)]
pub struct Watched {
    name: String,
    log: PathBuf,
    child: Option<Child>,
    watchdog: Option<ChildStdin>,
}

impl Watched {
    /// Starts `bin` with `args` and `envs`, its stdout and stderr going to `log`. `name` names
    /// it in failures ("bao"); `install` says how to install it when it cannot be run.
    #[must_use]
    pub fn spawn<I, S>(
        name: &str,
        bin: &Path,
        args: I,
        envs: &[(String, String)],
        log: &Path,
        install: &str,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {name}'s log {}: {e}", log.display()));
        let out = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {name}'s log: {e}"));
        let mut child = Command::new("sh")
            .arg("-c")
            // The server runs in the background; a second background job waits on our pipe
            // (as fd 3: background jobs get /dev/null as stdin) and stops the server when our
            // end closes. `sh` exits with the server, so an early exit is seen at once.
            .arg(
                r#"exec 3<&0; "$0" "$@" & pid=$!; { read _ignored <&3; kill $pid 2>/dev/null; } & wait $pid"#,
            )
            .arg(bin)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {install}", bin.display()));
        let watchdog = child.stdin.take();
        Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child: Some(child),
            watchdog,
        }
    }

    /// What the server wrote so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test, with the server's log, when the server has exited or `deadline` has
    /// passed: call it between the readiness probes of a start.
    pub fn assert_starting(&mut self, deadline: Instant) {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
            panic!(
                "{} exited with {status} before it was ready:\n{}",
                self.name,
                self.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} was not ready in time:\n{}",
            self.name,
            self.log()
        );
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        drop(self.watchdog.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_log_is_kept_and_an_early_exit_fails_the_start_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let mut p = Watched::spawn(
            "x",
            Path::new("sh"),
            ["-c", "echo started; exit 3"],
            &[],
            &log,
            "",
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            loop {
                p.assert_starting(deadline);
                std::thread::sleep(Duration::from_millis(20));
            }
        }))
        .unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("x exited with"), "{msg}");
        assert!(msg.contains("started"), "{msg}");
    }

    #[test]
    fn stopping_ends_a_running_server() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Watched::spawn(
            "sleeper",
            Path::new("sleep"),
            ["600"],
            &[],
            &dir.path().join("s.log"),
            "",
        );
        p.assert_starting(Instant::now() + Duration::from_secs(30));
        p.stop();
        assert!(p.child.is_none());
    }
}
