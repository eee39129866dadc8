//! The Debian package and its systemd unit: built with cargo-deb from the agent's metadata,
//! installed with `dpkg` into an empty root (so the test machine is left alone), its config
//! passes `logship validate` with the installed binary, and the unit passes
//! `systemd-analyze verify` without a warning.

use std::path::Path;
use std::process::Command;

use logship_tests::harness::{logship_bin, run_program, workspace_root};

const T: std::time::Duration = std::time::Duration::from_secs(300);

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether `program --version` runs; outside CI a missing tool skips the test (it says so).
fn have(program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || !in_ci(),
        "CI=true but `{program}` is missing: run scripts/package-tools.sh"
    );
    if !ok {
        eprintln!("skipped: no {program}");
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_deb_installs_a_binary_a_unit_a_config_and_the_data_dir() {
    if !(have("cargo", &["deb", "--version"])
        && have("dpkg", &["--version"])
        && have("systemd-analyze", &["--version"]))
    {
        return;
    }
    // The package of the binary the tests built (`scripts/package-deb.sh` packages a
    // release build the same way).
    logship_bin();
    let out = tempfile::tempdir().unwrap();
    run(Command::new("cargo")
        .args([
            "deb",
            "-p",
            "logship-agent",
            "--profile",
            "dev",
            "--no-build",
        ])
        .args(["--strip", "--fast", "--quiet", "-o"])
        .arg(out.path())
        .current_dir(workspace_root()));
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("cargo deb wrote a .deb");

    // dpkg into an empty root: its own database, maintainer scripts run outside a chroot
    // with DPKG_ROOT set (libc6 is not in that database, hence --force-depends).
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(r.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(r.join("var/lib/dpkg/available"), "").unwrap();
    run(Command::new("dpkg")
        .arg(format!("--root={}", r.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
            "-i",
        ])
        .arg(&deb));
    let status = run(Command::new("dpkg")
        .arg(format!("--root={}", r.display()))
        .args(["-s", "logship"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    let conffiles = std::fs::read_to_string(r.join("var/lib/dpkg/info/logship.conffiles")).unwrap();
    assert!(
        conffiles.contains("/etc/logship/logship.toml"),
        "{conffiles}"
    );
    for file in [
        "usr/bin/logship",
        "lib/systemd/system/logship.service",
        "etc/logship/logship.toml",
    ] {
        assert!(r.join(file).is_file(), "{file} is installed");
    }
    assert!(r.join("var/lib/logship").is_dir(), "postinst made data_dir");

    // The installed binary accepts the installed config.
    let installed = r.join("usr/bin/logship");
    let config = r.join("etc/logship/logship.toml");
    let v = run_program(&installed, &["validate", config.to_str().unwrap()], T);
    assert_eq!(v.status.code(), Some(0), "{v:?}");

    // The unit: reload is SIGHUP, it restarts on failure, data_dir is writable, and systemd
    // finds nothing to say about it (its commands pointed at the installed binary).
    let unit = std::fs::read_to_string(r.join("lib/systemd/system/logship.service")).unwrap();
    for line in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "ReadWritePaths=/var/lib/logship",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit has {line}");
    }
    verify_unit(
        &unit.replace("/usr/bin/logship", installed.to_str().unwrap()),
        r,
    );
}

fn verify_unit(unit: &str, dir: &Path) {
    let path = dir.join("logship.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("running systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
