//! The real `bootstrap`, taken out of the release zip and run against the Runtime API.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::emulator::REGION;
use crate::runtime_api::RuntimeApi;

/// Set by `cargo xtask test`: the artifact `cargo xtask build-lambda` wrote.
pub const ZIP_VAR: &str = "SSMBAK_TEST_BOOTSTRAP_ZIP";

/// Extracts `bootstrap` from the zip into `dir`, keeping the mode the zip records.
pub fn extract_bootstrap(zip_path: &Path, dir: &Path) -> PathBuf {
    let file = std::fs::File::open(zip_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", zip_path.display()));
    let mut archive = zip::ZipArchive::new(file).expect("the artifact is a zip");
    let mut entry = archive
        .by_name("bootstrap")
        .expect("the zip holds bootstrap");
    let mode = entry.unix_mode().expect("the zip records a unix mode");
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).expect("read bootstrap");
    let path = dir.join("bootstrap");
    std::fs::write(&path, bytes).expect("write bootstrap");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// A running `bootstrap`; killed when dropped. Its stdout and stderr (the logs) are kept.
pub struct Bootstrap {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// The threads copying stdout and stderr; done at the process's end.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Bootstrap {
    /// Starts `binary` as Lambda would: a clean environment holding only the Lambda variables,
    /// fake credentials and the emulator endpoint.
    pub fn spawn(
        binary: &Path,
        api: &RuntimeApi,
        endpoint: &str,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "ssmbak-test")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ssmbak-test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The least-privilege check records what the Lambda calls, too.
        if let Some(path) = std::env::var_os(ssmbak_core::record::RECORD_VAR) {
            cmd.env(ssmbak_core::record::RECORD_VAR, path);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // Another test thread may be writing an executable at this moment, and a fork for it
        // holds that file open until its exec: the well-known ETXTBSY race. Try again.
        let mut attempts = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.expect("start bootstrap"),
            }
        };
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let mut readers = Vec::new();
        for stream in [stdout, stderr].into_iter().flatten() {
            let logs = Arc::clone(&logs);
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().expect("lock").push(line);
                }
            }));
        }
        Bootstrap {
            child,
            logs,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("lock").clone()
    }

    /// Waits for the process to end by itself (start-up failures), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Everything it wrote is read before its logs are looked at.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    /// Kills the process, as a crash or a Lambda timeout would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        self.kill();
    }
}
