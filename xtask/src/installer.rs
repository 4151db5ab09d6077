//! `install.sh`, run as a user runs it (`sh install.sh`, curl on the path) against a release
//! served on loopback in the layout `cargo xtask dist` and the release workflow publish; and
//! the one repository every installer names.

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::path::Path;
    use std::process::Command;

    use crate::dist::{archive, checksum_line};
    use crate::util::project_root;

    const VERSION: &str = "1.2.3";

    /// This machine's release target, as install.sh names it.
    fn target() -> String {
        let cpu = match std::env::consts::ARCH {
            "aarch64" => "aarch64",
            _ => "x86_64",
        };
        let os = match std::env::consts::OS {
            "macos" => "apple-darwin",
            _ => "unknown-linux-gnu",
        };
        format!("{cpu}-{os}")
    }

    /// Serves `files` (path -> bytes) on loopback, and `/o/r/releases/latest` as GitHub does:
    /// a redirect to the latest tag's page. Returns the repository's URL.
    fn serve(files: HashMap<String, Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let latest = format!("{base}/o/r/releases/tag/v{VERSION}");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0_u8; 4096];
                let n = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let mut words = request.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let head = method == "HEAD";
                let answer: Vec<u8> = if path == "/o/r/releases/latest" {
                    format!("HTTP/1.1 302 Found\r\nLocation: {latest}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
                } else if path.starts_with("/o/r/releases/tag/") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
                } else if let Some(body) = files.get(path) {
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    if !head {
                        a.extend_from_slice(body);
                    }
                    a
                } else {
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec()
                };
                let _ = stream.write_all(&answer);
            }
        });
        format!("{base}/o/r")
    }

    /// A release of `VERSION` for this machine whose binaries are scripts saying who they are;
    /// `tamper` changes the archive after its sum was taken.
    fn release(tamper: bool) -> HashMap<String, Vec<u8>> {
        let top = format!("ssmbak-{VERSION}-{}", target());
        let script = |name: &str| format!("#!/bin/sh\necho {name} {VERSION}\n").into_bytes();
        let files = vec![
            ("ssmbak".to_owned(), script("ssmbak"), 0o755),
            ("s3bak".to_owned(), script("s3bak"), 0o755),
            ("README.md".to_owned(), b"# ssmbak".to_vec(), 0o644),
        ];
        let name = format!("{top}.tar.gz");
        let mut bytes = archive(&top, &files, 1_765_000_000).expect("archive");
        let sum = checksum_line(&name, &bytes);
        if tamper {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        }
        let dir = format!("/o/r/releases/download/v{VERSION}");
        HashMap::from([
            (format!("{dir}/{name}"), bytes),
            (format!("{dir}/{name}.sha256"), sum.into_bytes()),
        ])
    }

    fn install(repo: &str, dir: &Path) -> std::process::Output {
        Command::new("sh")
            .arg(project_root().join("install.sh"))
            .env("SSMBAK_REPO_URL", repo)
            .env("SSMBAK_INSTALL_DIR", dir)
            .env_remove("SSMBAK_VERSION")
            .output()
            .expect("sh runs")
    }

    fn curl_missing() -> bool {
        let missing = Command::new("curl").arg("--version").output().is_err();
        if missing {
            eprintln!("skipped: install.sh needs curl, and this machine has none");
        }
        missing
    }

    fn temp_dir(what: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ssmbak-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn install_sh_installs_the_latest_release_for_this_machine() {
        if curl_missing() {
            return;
        }
        let repo = serve(release(false));
        let dir = temp_dir("install");
        let out = install(&repo, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        for bin in ["ssmbak", "s3bak"] {
            let ran = Command::new(dir.join(bin))
                .output()
                .expect("installed and executable");
            assert_eq!(
                String::from_utf8_lossy(&ran.stdout),
                format!("{bin} {VERSION}\n")
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("gh attestation verify"), "{stdout}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn install_sh_refuses_an_archive_that_does_not_match_its_sum() {
        if curl_missing() {
            return;
        }
        let repo = serve(release(true));
        let dir = temp_dir("tampered");
        let out = install(&repo, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("does not match its published SHA-256 sum"),
            "{stderr}"
        );
        assert!(!dir.join("ssmbak").exists(), "nothing installed");
    }

    /// The repository is named once, in the workspace's Cargo.toml: install.sh's default and
    /// the README's install command follow it, and cargo-binstall's URL is built from it.
    #[test]
    fn every_installer_names_the_workspaces_repository() {
        let read = |p: &str| std::fs::read_to_string(project_root().join(p)).expect(p);
        let repository =
            crate::formula::workspace_repository(&project_root()).expect("a repository");
        let script = read("install.sh");
        assert!(
            script.contains(&format!("SSMBAK_REPO_URL:-{repository}}}")),
            "install.sh's default repository is not {repository}"
        );
        let raw = repository.replace("https://github.com/", "https://raw.githubusercontent.com/");
        assert!(
            read("README.md").contains(&format!("{raw}/main/install.sh")),
            "the README does not install from {raw}/main/install.sh"
        );
        // Homebrew's `OWNER/tap/ssmbak` is the repository OWNER/homebrew-tap that the
        // release workflow's HOMEBREW_TAP names.
        let owner = repository
            .trim_start_matches("https://github.com/")
            .split('/')
            .next()
            .unwrap_or_default();
        assert!(
            read("README.md").contains(&format!("brew install {owner}/tap/ssmbak")),
            "the README does not install from {owner}'s tap"
        );
        let cli = read("restore-cli/Cargo.toml");
        assert!(cli.contains("repository.workspace = true"));
        assert!(cli.contains("pkg-url = \"{ repo }/releases/download/v{ version }/ssmbak-{ version }-{ target }.tar.gz\""));
    }
}
