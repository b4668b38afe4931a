//! The Python oracles' interpreter (`$ESO_PYTHON` or a workspace venv). A missing package fails
//! the test with the exact `pip` command.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::tools::workspace_root;

/// What an oracle needs from Python.
#[derive(Debug, Clone)]
pub struct Needs<'a> {
    /// The variable naming the interpreter (`ESO_PYTHON`).
    pub env: &'a str,
    /// The venv at the workspace root used otherwise (`.venv-emu`).
    pub venv: &'a str,
    /// What is imported, for the failure message ("Doppler's Python SDK").
    pub what: &'a str,
    /// The import statement that must succeed (`import dopplersdk`).
    pub import: &'a str,
    /// The pinned packages, as `pip install` takes them (`'doppler-sdk==1.3.0'`).
    pub packages: &'a str,
}

impl<'a> Needs<'a> {
    /// The packages in `.venv-emu`, the interpreter named by `$ESO_PYTHON`.
    #[must_use]
    pub fn emu(what: &'a str, import: &'a str, packages: &'a str) -> Self {
        Self {
            env: "ESO_PYTHON",
            venv: ".venv-emu",
            what,
            import,
            packages,
        }
    }

    /// The command that installs the packages, from the workspace root.
    #[must_use]
    pub fn install_command(&self) -> String {
        format!(
            "python3 -m venv {venv} && {venv}/bin/pip install {packages}",
            venv = self.venv,
            packages = self.packages
        )
    }

    /// The interpreter: `$<env>`, else `<venv>/bin/python` at the workspace root. Fails the
    /// test with the install command when `import` fails there.
    #[must_use]
    pub fn python(&self) -> PathBuf {
        let python = std::env::var_os(self.env)
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(self.venv).join("bin/python"));
        let ok = Command::new(&python)
            .args(["-c", self.import])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{} is needed at {} (or ${}): from the repository root run `{}`",
            self.what,
            python.display(),
            self.env,
            self.install_command()
        );
        python
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_package_fails_with_the_pip_command() {
        let needs = Needs {
            env: "ESO_TEST_SUPPORT_NO_SUCH_PYTHON",
            venv: ".venv-none",
            what: "Nothing's SDK",
            import: "import eso_no_such_module",
            packages: "'eso-no-such-package==1.0'",
        };
        let err = std::panic::catch_unwind(|| needs.python()).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains(
                "python3 -m venv .venv-none && .venv-none/bin/pip install 'eso-no-such-package==1.0'"
            ),
            "{msg}"
        );
    }
}
