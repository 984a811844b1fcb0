//! The exit codes are public API (README "Exit codes"): one test per code, through the real binary.

mod common;
use std::process::Stdio;

use common::Test;

#[test]
fn exit_0_on_success() {
    Test::new().run(["render"]).assert_status(0);
}

#[test]
fn exit_1_when_the_answer_is_no() {
    let r = Test::new().run(["render", "--check"]);
    r.assert_status(1);
    let r = Test::new().file(".env", "DB_PASSWORD=difyai123456\n").run(["secret", "check"]);
    r.assert_status(1);
}

#[test]
fn exit_2_on_usage_and_configuration_errors() {
    Test::new().run(["render", "--no-such-flag"]).assert_status(2);
    Test::new().run(["render", "--profile", "nope"]).assert_status(2);
    Test::new().file("ragctl.yaml", "shape: [\n").run(["render"]).assert_status(2);
    Test::new().file(".env", "=x\n").run(["secret", "list"]).assert_status(2);
    Test::new().env("RAGCTL_QUIET", "lots").run(["render"]).assert_status(2);
}

#[test]
fn exit_3_when_docker_is_unreachable() {
    for args in [vec!["ps"], vec!["up"], vec!["down"], vec!["logs"], vec!["restart"], vec!["db", "check"]] {
        let r = Test::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock").run(&args);
        r.assert_status(3);
        assert!(r.stderr.contains("unix:///nonexistent/docker.sock"), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn exit_130_on_sigint() {
    if !common::require_docker() {
        return;
    }
    // `logs -f` on a real container waits until interrupted: the cleanest long-running command to stop.
    let project = format!("exit130-{}", std::process::id());
    let name = format!("{project}-sleeper-1");
    let created = std::process::Command::new("docker")
        .args(["run", "-d", "--name", &name, "--label", &format!("com.docker.compose.project={project}")])
        .args(["--label", "com.docker.compose.service=sleeper", "--label", "com.docker.compose.container-number=1"])
        .args(["ragctl-test/base:bookworm", "sleep", "600"])
        .output()
        .expect("docker run");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let t = Test::new();
    let mut child = t.command(["-p", &project, "logs", "-f"]).spawn().expect("spawn ragctl");
    // Wait until it is streaming (it has connected to Docker), then interrupt it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().expect("wait");
    let _ = std::process::Command::new("docker").args(["rm", "-f", &name]).output();
    assert_eq!(status.code(), Some(130));
}

/// Where a shell sends output it cannot keep: `/dev/full` fails every write with ENOSPC.
fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("open /dev/full")
}

/// A pipe whose reader is gone: every write fails with EPIPE, as after `ragctl ... 2>&1 | head -c 1`.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer
}

#[test]
fn narration_into_a_full_or_closed_stderr_keeps_the_exit_code_and_never_panics() {
    // `render` succeeds and narrates what it wrote; `render --profile nope` fails with a usage error.
    for (args, code) in [(vec!["render"], 0), (vec!["render", "--profile", "nope"], 2)] {
        let t = Test::new();
        let full = t.command(&args).stdout(Stdio::null()).stderr(dev_full()).status().unwrap();
        assert_eq!(full.code(), Some(code), "{args:?} with stderr on /dev/full");
        let closed = t.command(&args).stdout(Stdio::null()).stderr(closed_pipe()).status().unwrap();
        assert_eq!(closed.code(), Some(code), "{args:?} with stderr a closed pipe");
    }
    assert!(Test::new().run(["render"]).stderr.contains(" files into "), "render does narrate on stderr");
}

#[test]
fn data_into_a_closed_stdout_ends_quietly_with_exit_0() {
    let t = Test::new();
    let out = t.command(["profiles"]).stdout(closed_pipe()).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "without a word on stderr");
    assert!(!t.run(["profiles"]).stdout.is_empty(), "profiles does write data");
}
