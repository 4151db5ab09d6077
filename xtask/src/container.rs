//! The container image (`Dockerfile`): its base pinned by digest and run as non-root, checked
//! here; built and run (`--version`) where Docker and the release archives are available.

#[cfg(test)]
mod tests {
    use std::process::Command;

    use crate::dist::{archive_name, Cpu};
    use crate::util::project_root;

    fn dockerfile() -> String {
        std::fs::read_to_string(project_root().join("Dockerfile")).expect("Dockerfile")
    }

    #[test]
    fn the_image_is_pinned_by_digest_and_runs_as_nonroot() {
        let text = dockerfile();
        let bases: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("FROM "))
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .filter(|image| *image != "scratch" && !image.starts_with("archive-"))
            .collect();
        assert_eq!(bases.len(), 1, "one base image: {bases:?}");
        let digest = bases[0].rsplit_once("@sha256:").map_or("", |(_, d)| d);
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "the base image is not pinned by digest: {}",
            bases[0]
        );
        assert!(
            text.lines().any(|l| l.trim() == "USER nonroot"),
            "runs as root"
        );
        let ignore = std::fs::read_to_string(project_root().join(".dockerignore")).expect("ignore");
        assert!(
            ignore.lines().any(|l| l.trim() == "*"),
            "the build context is the whole tree"
        );
    }

    /// Builds the image from the archives `cargo xtask dist` wrote and runs `--version`.
    #[test]
    fn the_image_runs_where_docker_is_available() {
        let running = Command::new("docker")
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success());
        if !running {
            eprintln!("skipped: no Docker daemon here to build the image with");
            return;
        }
        let version = ssmbak_core::build_info::VERSION;
        let cpu = if std::env::consts::ARCH == "aarch64" {
            Cpu::Aarch64
        } else {
            Cpu::X86_64
        };
        let archive = format!("target/dist/{}", archive_name(version, cpu).0);
        if !project_root().join(&archive).exists() {
            eprintln!("skipped: {archive} is missing (run `cargo xtask dist` first)");
            return;
        }
        let tag = format!("ssmbak-test:{}", std::process::id());
        let built = Command::new("docker")
            .current_dir(project_root())
            .args([
                "build",
                "--build-arg",
                &format!("VERSION={version}"),
                "-t",
                &tag,
                ".",
            ])
            .status()
            .expect("docker build");
        assert!(built.success(), "docker build failed");
        let out = Command::new("docker")
            .args(["run", "--rm", &tag, "--version"])
            .output()
            .expect("docker run");
        let _ = Command::new("docker").args(["rmi", &tag]).output();
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(line.starts_with(&format!("ssmbak {version}")), "{line}");
    }
}
