//! What the `sync-once` end-to-end tests share: running the binary with input on stdin.

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// `sync-once ARGS` with `stdin` written to its input (closed at once without), the variables
/// `unset` removed from its environment and then `vars` set. It blocks the calling thread:
/// tests that serve something meanwhile run on a multi-threaded runtime or a thread.
pub fn sync_once(
    args: &[&str],
    stdin: Option<&str>,
    unset: &[&str],
    vars: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sync-once"));
    cmd.args(args);
    for name in unset {
        cmd.env_remove(name);
    }
    cmd.envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// `sync-once render -f - -o json` of `docs`, joined as one YAML stream on stdin (see
/// [`sync_once`] for `unset` and `vars`).
pub fn render_json(docs: &[Value], unset: &[&str], vars: &[(&str, &str)]) -> Output {
    let input = docs
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n");
    sync_once(
        &["render", "-f", "-", "-o", "json"],
        Some(&input),
        unset,
        vars,
    )
}
