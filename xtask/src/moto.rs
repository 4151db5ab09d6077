//! The moto emulator: installed into a venv under `target/`, run on a free loopback port.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::util;

/// The pinned emulator. Bump deliberately: its behaviour is part of what the tests assert.
pub(crate) const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";

/// A running moto server, stopped when dropped.
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
    pub(crate) log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv(root: &Path) -> PathBuf {
    root.join("target/moto-venv")
}

/// Installs the pinned moto into `target/moto-venv` unless it is already there.
pub(crate) fn install(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = venv(root);
    let server = venv.join("bin/moto_server");
    util::pip_install(
        &venv,
        &[MOTO_REQUIREMENT],
        server.exists(),
        "the moto emulator",
    )?;
    Ok(server)
}

fn free_loopback_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Installs and starts moto on a free loopback port; waits until it answers.
pub(crate) fn start(root: &Path) -> anyhow::Result<Moto> {
    let server = install(root)?;
    let port = free_loopback_port()?;
    let log = root.join("target/moto.log");
    let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    // moto's server through a launcher that makes it behave as AWS documents where the tests
    // need it to (see the file).
    let python = server.with_file_name("python3");
    let child = Command::new(&python)
        .arg(root.join("xtask/emulator/moto_as_aws.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot start moto with {}", python.display()))?;
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        log,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!("moto did not start within 60 s; see {}", moto.log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(moto)
}

/// `cargo xtask moto`: a server in the foreground until Ctrl-C.
pub(crate) fn run_foreground(root: &Path) -> anyhow::Result<()> {
    let mut moto = start(root)?;
    println!("moto is listening on {}", moto.endpoint);
    println!("export AWS_ENDPOINT_URL={} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing", moto.endpoint);
    println!("(log: {}; Ctrl-C stops it)", moto.log.display());
    moto.child.wait()?;
    Ok(())
}
