//! A small builder for running the real `ragctl` binary in a scratch project directory, in the spirit of
//! `just`'s test harness: args, env and files in; status, stdout and stderr out.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn ragctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ragctl"))
}

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin_null: bool,
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn assert_status(&self, expected: i32) -> &Self {
        assert_eq!(
            self.status, expected,
            "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::Builder::new().prefix("ragctl-test").tempdir().unwrap(),
            args: Vec::new(),
            env: Vec::new(),
            stdin_null: true,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, rel: &str, contents: &str) -> Test {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.dir.path().join(rel).exists()
    }

    pub fn env(mut self, k: &str, v: &str) -> Test {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Run with these arguments (the project directory is the scratch directory).
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Run::from(self.command(args).output().expect("run ragctl"))
    }
}

impl From<Output> for Run {
    fn from(Output { status, stdout, stderr }: Output) -> Run {
        Run {
            status: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// True when tests that need external tools must not skip (CI, or RAGCTL_E2E=1).
pub fn must_not_skip() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || std::env::var("RAGCTL_E2E").is_ok_and(|v| v == "1")
}

/// Find an external tool; skip (return None, printing why) outside CI, fail under CI.
pub fn require_tool(name: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    let found = candidates.iter().find(|p| p.is_file()).cloned().or_else(|| which(name));
    if found.is_none() {
        let msg = format!("`{name}` is not installed (run tests/setup.sh)");
        if must_not_skip() {
            panic!("{msg}; CI=true or RAGCTL_E2E=1 forbids skipping");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when the Docker engine answers `docker version`; outside CI a missing engine skips the test (printing
/// why), under CI=true or RAGCTL_E2E=1 it fails it.
pub fn require_docker() -> bool {
    let answer = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
    let why = match answer {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!("`docker version` failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("`docker` could not be run: {e}"),
    };
    let msg = format!("{why} (run tests/setup.sh)");
    if must_not_skip() {
        panic!("{msg}; CI=true or RAGCTL_E2E=1 forbids skipping");
    }
    eprintln!("skipping: {msg}");
    false
}

impl Test {
    /// The command [`Test::run`] would run, for tests that must spawn the binary and act while it runs
    /// (signals, concurrent invocations, stdout wired to a pipe).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut cmd = Command::new(ragctl_bin());
        cmd.current_dir(self.dir.path());
        cmd.args(self.args.iter());
        cmd.args(args.into_iter().map(|a| a.as_ref().to_string()));
        // Hermetic: none of the developer's RAGCTL_* / COMPOSE_* settings leak in.
        for (k, _) in std::env::vars() {
            if k.starts_with("RAGCTL_") || k.starts_with("COMPOSE_") || k == "NO_COLOR" || k == "DOCKER_HOST" {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if self.stdin_null {
            cmd.stdin(std::process::Stdio::null());
        }
        cmd
    }
}

/// A host port that is free now and was not handed to another test of this process. Tests run in parallel and
/// the kernel may return a just-released port again; without this, two tests can publish the same port.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if handed_out.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Run `docker ARGS`, panic with its stderr when it fails, return stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Poll `probe` until it yields a value or `limit` passes; the panic says what was awaited and what was last seen.
/// End-to-end tests wait for conditions, never for a fixed time.
#[track_caller]
pub fn await_condition<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The local test images (tests/images) standing in for the registry images of the stacks the end-to-end tests
/// run. An override names a service; one for a service the project does not run is ignored.
pub const TEST_IMAGES: [(&str, &str); 4] = [
    ("RAGCTL_IMAGE_DB_POSTGRES", "ragctl-test/postgres:15"),
    ("RAGCTL_IMAGE_DB_POSTGRES_REPLICA", "ragctl-test/postgres:15"),
    ("RAGCTL_IMAGE_REDIS", "ragctl-test/redis:7"),
    ("RAGCTL_IMAGE_WEAVIATE", "ragctl-test/weaviate-standin:1"),
];

impl Test {
    /// Run every service with its local test image ([`TEST_IMAGES`]).
    pub fn with_test_images(self) -> Test {
        TEST_IMAGES.iter().fold(self, |test, (key, image)| test.env(key, image))
    }
}

/// Forward TCP connections on a free local port to the engine's Unix socket, so ragctl sees a `tcp://` engine:
/// what a remote engine looks like to it, whose published ports and container addresses it must not assume it
/// can reach. Returns the `DOCKER_HOST` value. The forwarder lives as long as the test process.
pub fn tcp_engine_endpoint() -> String {
    use std::net::{Shutdown, TcpListener};
    use std::os::unix::net::UnixStream;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else { continue };
            let (mut client_r, mut engine_w) = (client.try_clone().unwrap(), engine.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_r, &mut engine_w);
                let _ = engine_w.shutdown(Shutdown::Write);
            });
            let (mut engine_r, mut client_w) = (engine, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut engine_r, &mut client_w);
                let _ = client_w.shutdown(Shutdown::Write);
            });
        }
    });
    endpoint
}
