//! The Helm chart (`deploy/charts/eso-rs`) rendered by `deploy/charts/render.py` with
//! helm-python-sdk (Helm's Go SDK), run with `$ESO_HELM_PYTHON` or `.venv-emu/bin/python`.
//! A missing SDK is a failure, not a skip: CI installs it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::tools::workspace_root;

/// The pinned SDK, as `pip install` takes it.
pub const HELM_PYTHON_SDK: &str = "'helm-python-sdk==0.2.2'";

/// The Python that has helm-python-sdk.
#[must_use]
pub fn python() -> PathBuf {
    let path = std::env::var_os("ESO_HELM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-emu/bin/python"));
    assert!(
        path.exists(),
        "no Python with helm-python-sdk at {}: in the workspace root run \
         `python3 -m venv .venv-emu && .venv-emu/bin/pip install {HELM_PYTHON_SDK}`, \
         or set ESO_HELM_PYTHON to a Python that has it",
        path.display()
    );
    path
}

/// The chart rendered with `values` and the renderer's other `args` (`--name`, `--output`):
/// its stdout, or the renderer's error message when the chart refuses the values. A missing
/// SDK fails the test.
///
/// # Errors
/// The renderer's stderr when the chart refuses the values.
pub fn render(args: &[&str], values: &Value) -> Result<String, String> {
    let out = Command::new(python())
        .arg(workspace_root().join("deploy/charts/render.py"))
        .args(args)
        .args(["--set-json", &values.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run deploy/charts/render.py: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        assert!(
            !stderr.contains("No module named"),
            "helm-python-sdk is not installed in {}: {stderr}",
            python().display()
        );
        Err(stderr)
    }
}

/// The chart's documents rendered with `values` (as JSON); fails the test when the chart
/// refuses them.
#[must_use]
pub fn render_docs(values: &Value) -> Vec<Value> {
    let out =
        render(&["--output", "json"], values).unwrap_or_else(|e| panic!("render {values}: {e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("render {values}: not JSON: {e}"))
}
