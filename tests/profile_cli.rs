//! `hypura profile` end to end: writes a profile that loads back, refuses to overwrite without
//! --force, refuses tmpfs, and removes its scratch file when interrupted.

use hw::HwProfile;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// `hypura` with a cache directory of its own: a profile written without -o is kept there,
/// never in the user's.
fn hypura() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hypura"));
    c.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("profile-cli-cache"),
    );
    c
}

/// Profiles time the machine: one at a time, or they slow each other down (a 2-core CI
/// machine running three at once gave decode times that fit no bandwidth).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn measuring() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn scratch_dir() -> tempfile::TempDir {
    // Under target/: on the build disk, never tmpfs, so O_DIRECT works.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn quick_profile_writes_a_loadable_file_and_respects_existing_output() {
    let _machine = measuring();
    let disk = scratch_dir();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("hw.toml");
    let run = hypura()
        .args(["profile", "--quick", "--disk"])
        .arg(disk.path())
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("sequential read") && stdout.contains("GFLOP/s"),
        "table missing: {stdout}"
    );
    assert!(stdout.contains("wrote"), "{stdout}");
    let profile = HwProfile::load(&out).unwrap();
    if profile.gpu.is_none() {
        assert!(stdout.contains("no GPU backend found"), "{stdout}");
    }
    assert!(
        entries(disk.path()).is_empty(),
        "scratch file left: {:?}",
        entries(disk.path())
    );

    // An existing output is not overwritten without --force, and is left as it was.
    std::fs::write(&out, "mine").unwrap();
    let again = hypura()
        .args(["profile", "--quick", "--disk"])
        .arg(disk.path())
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");

    let forced = hypura()
        .args(["profile", "--quick", "--force", "--disk"])
        .arg(disk.path())
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    HwProfile::load(&out).unwrap();
}

#[test]
fn toml_goes_to_stdout_with_output_dash() {
    let _machine = measuring();
    let disk = scratch_dir();
    let run = hypura()
        .args(["profile", "--quick", "-o", "-", "--disk"])
        .arg(disk.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let toml = String::from_utf8(run.stdout).unwrap();
    HwProfile::from_toml_str(&toml, "stdout").unwrap();
    assert!(String::from_utf8_lossy(&run.stderr).contains("sequential read"));
}

#[cfg(target_os = "linux")]
#[test]
fn tmpfs_disk_is_refused() {
    if !Path::new("/dev/shm").is_dir() {
        testkit::cannot_run("no /dev/shm (the tmpfs this test writes to)");
        return;
    }
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let run = hypura()
        .args(["profile", "--quick", "--disk"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("tmpfs") && stderr.contains("--disk"),
        "{stderr}"
    );
    assert!(entries(dir.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn ctrl_c_removes_the_scratch_file() {
    let _machine = measuring();
    let disk = scratch_dir();
    // The full run writes a 1 GiB file first: long enough to interrupt mid-way.
    let mut child = hypura()
        .args(["profile", "--disk"])
        .arg(disk.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while entries(disk.path()).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            // A build disk with under ~1.3 GiB free cannot host the full run's file.
            assert!(
                stderr.contains("not enough free space"),
                "exited early ({status}): {stderr}"
            );
            testkit::cannot_run(&format!("the full profile needs more free disk: {stderr}"));
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "scratch file never appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(
        entries(disk.path()).is_empty(),
        "scratch file left after SIGINT: {:?}",
        entries(disk.path())
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
}
