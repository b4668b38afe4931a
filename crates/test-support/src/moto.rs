//! A real AWS emulator for the tests: `moto_server` (`pip install 'moto[server]'`) on a port
//! of 127.0.0.1, run under the [`Watched`] watchdog.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::Watched;
use crate::tools::{Tool, venv_emu};

/// How to install `moto_server`, for failure messages.
pub const MOTO_INSTALL: &str = "from the repository root: python3 -m venv .venv-emu && \
                                .venv-emu/bin/pip install 'moto[server]==5.2.5'";

/// The `moto_server` binary: `$ESO_MOTO_BIN`, `PATH`, or the workspace's `.venv-emu`.
#[must_use]
pub fn moto_binary() -> PathBuf {
    Tool {
        env: "ESO_MOTO_BIN",
        name: "moto_server",
        what: "`moto_server`",
        also: &[venv_emu("moto_server")],
        install: MOTO_INSTALL,
    }
    .find()
}

/// Starts `moto_server` on `port` with extra environment variables (e.g. moto's recorder),
/// its output in `log`, and returns once it accepts connections (at most 60 s; a server that
/// exits or stays silent fails the test with its log).
#[must_use]
pub fn start_moto(port: u16, env: &[(String, String)], log: &Path) -> Watched {
    let args = ["-H".to_owned(), "127.0.0.1".to_owned(), port.to_string()];
    let args = [&args[..2], &["-p".to_owned()], &args[2..]].concat();
    let mut process = Watched::spawn("moto", &moto_binary(), args, env, log, MOTO_INSTALL);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        process.assert_starting(deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}
