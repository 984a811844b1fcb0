//! Fixtures shared by the integration test suites. [`Test`] is a small builder for running the real `ragctl`
//! binary in a scratch project directory, in the spirit of `just`'s test harness: args, env and files in; status,
//! stdout and stderr out. The rest serves the end-to-end suites that run against the real Docker engine: a
//! [`Project`] guard (one test's stack on the local test images and free host ports, removed when dropped),
//! [`await_condition`] instead of sleeps, the doctor's JSON report as [`Check`]s, and a forwarder that makes the
//! engine look remote.
//!
//! Every test crate compiles this module and uses a part of it, hence `dead_code` is allowed. What only one
//! suite needs stays in that suite.
#![allow(dead_code)]

use std::collections::BTreeMap;
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

    /// Append `text` to the project file `rel`.
    pub fn append(self, rel: &str, text: &str) -> Test {
        let contents = if self.exists(rel) { self.read(rel) } else { String::new() };
        self.file(rel, &(contents + text))
    }

    /// A value from the project's `.env` (secrets are generated there by `up` and `secret gen`).
    pub fn dotenv_value(&self, key: &str) -> String {
        let env = self.read(".env");
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} not in .env:\n{env}"))
            .to_string()
    }

    /// Replace (or add) `key=value` in `.env`, as an operator editing it by hand would; the file keeps its mode.
    pub fn set_dotenv(&self, key: &str, value: &str) {
        let prefix = format!("{key}=");
        let env = self.read(".env");
        let mut lines: Vec<&str> = env.lines().filter(|l| !l.starts_with(&prefix)).collect();
        let line = format!("{prefix}{value}");
        lines.push(&line);
        std::fs::write(self.path().join(".env"), lines.join("\n") + "\n").unwrap();
    }

    /// Run with these arguments (the project directory is the scratch directory).
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Run::from(self.command(args).output().expect("run ragctl"))
    }

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
pub const TEST_IMAGES: [(&str, &str); 8] = [
    ("RAGCTL_IMAGE_DB_POSTGRES", "ragctl-test/postgres:15"),
    ("RAGCTL_IMAGE_DB_POSTGRES_REPLICA", "ragctl-test/postgres:15"),
    ("RAGCTL_IMAGE_PGVECTOR", "ragctl-test/pgvector:15"),
    ("RAGCTL_IMAGE_REDIS", "ragctl-test/redis:7"),
    ("RAGCTL_IMAGE_WEAVIATE", "ragctl-test/weaviate-standin:1"),
    // The runtime profile, on in both shapes: stand-ins for Dify's sandbox and plugin daemon, Debian's squid.
    ("RAGCTL_IMAGE_SANDBOX", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_PLUGIN_DAEMON", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_SSRF_PROXY", "ragctl-test/squid:5"),
];

/// The app profile's services on their test images (beside [`TEST_IMAGES`]): stand-ins for Dify's api, worker,
/// worker_beat and web, Debian's nginx.
pub const APP_TEST_IMAGES: [(&str, &str); 5] = [
    ("RAGCTL_IMAGE_API", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_WORKER", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_WORKER_BEAT", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_WEB", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_NGINX", "ragctl-test/nginx:1"),
];

/// Services that run a stand-in in the full shape: they get a memory limit sized for it, not for Dify's image
/// (the full shape's own limits add up to more than a CI runner has, and `host.memory` would warn).
const STAND_IN_SERVICES: [&str; 6] = ["api", "worker", "worker_beat", "web", "sandbox", "plugin_daemon"];

impl Test {
    /// `ragctl init` of the full shape with the app (and `--monitoring` when `monitoring` is set): a self-signed
    /// certificate for `domain`, nginx published on 127.0.0.1 at `http` / `https`, every service on its test
    /// image ([`APP_TEST_IMAGES`]) and the stand-ins' memory limits, plus `stand_ins` more of them.
    pub fn init_full_app(self, domain: &str, (http, https): (u16, u16), monitoring: bool, stand_ins: &[&str]) -> Test {
        // `init` writes ragctl.yaml itself; the fixture's (ports of the middleware shape) is not wanted here.
        std::fs::remove_file(self.path().join("ragctl.yaml")).unwrap();
        let t = APP_TEST_IMAGES.iter().fold(self, |t, (key, image)| t.env(key, image));
        let monitoring = if monitoring { "--monitoring" } else { "--no-monitoring" };
        let (http, https) = (format!("EXPOSE_NGINX_PORT={http}"), format!("EXPOSE_NGINX_SSL_PORT={https}"));
        t.run([
            "init",
            "--yes",
            "--shape",
            "full",
            "--no-pg-cluster",
            monitoring,
            "--app",
            "--domain",
            domain,
            "--self-signed",
            "--port",
            &http,
            "--port",
            &https,
        ])
        .assert_status(0);
        let limits: String =
            STAND_IN_SERVICES.iter().chain(stand_ins).map(|s| format!("  {s}: {{ memory: 256m }}\n")).collect();
        t.append("ragctl.yaml", &format!("public_address: 127.0.0.1\nresources:\n{limits}"))
    }

    /// Run every service with its local test image ([`TEST_IMAGES`]).
    pub fn with_test_images(self) -> Test {
        TEST_IMAGES.iter().fold(self, |test, (key, image)| test.env(key, image))
    }
}

/// A project profile (`profiles/crasher.yaml`) whose one service prints `boom-marker` and exits 3 at once.
pub const CRASHER_PROFILE: &str = r#"name: crasher
description: a service that exits at once
services:
  crasher:
    image: ragctl-test/base:bookworm
    command: ["sh", "-c", "echo boom-marker; exit 3"]
    networks: [data]
    healthcheck: { test: ["CMD", "true"] }
"#;

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

/// The label compose (and ragctl) put on every container, network and volume of a project.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";

/// The `.env` keys of the default stack's published ports.
pub const PORT_KEYS: [&str; 8] = [
    "EXPOSE_POSTGRES_PORT",
    "EXPOSE_REDIS_PORT",
    "EXPOSE_WEAVIATE_PORT",
    "EXPOSE_WEAVIATE_GRPC_PORT",
    "EXPOSE_SSRF_PROXY_PORT",
    "EXPOSE_SANDBOX_PORT",
    "EXPOSE_PLUGIN_DAEMON_PORT",
    "EXPOSE_PLUGIN_DEBUGGING_PORT",
];

/// A scratch project directory for a stack on the local test images: ragctl.yaml's `ports:` (its last section)
/// gives each of [`PORT_KEYS`] a free host port, or the one in `fixed`. Returns the ports too.
pub fn stack_dir(fixed: &[(&'static str, u16)]) -> (Test, BTreeMap<&'static str, u16>) {
    let mut ports: BTreeMap<&'static str, u16> = PORT_KEYS.iter().map(|k| (*k, free_port())).collect();
    ports.extend(fixed.iter().copied());
    let listed: String = ports.iter().map(|(k, p)| format!("  {k}: {p}\n")).collect();
    (Test::new().file("ragctl.yaml", &format!("ports:\n{listed}")).with_test_images(), ports)
}

/// One test's stack: a unique project name (`e2e-<test>-<pid>`) and a scratch project directory ([`stack_dir`]).
/// Dropping it runs `ragctl down --volumes -y`, then force-removes anything still labelled with the project.
pub struct Project {
    pub name: String,
    pub test: Test,
    /// Host port by `.env` key, as ragctl.yaml gives them.
    pub ports: BTreeMap<&'static str, u16>,
    /// Networks the test created outside the project, removed after the project's own.
    foreign_networks: Vec<String>,
}

impl Project {
    pub fn new(test_name: &str) -> Project {
        Project::with(test_name, |t| t)
    }

    /// `configure` adds project files (profiles, more of ragctl.yaml) or environment to the scratch project.
    pub fn with(test_name: &str, configure: impl FnOnce(Test) -> Test) -> Project {
        Project::with_ports(test_name, &[], configure)
    }

    /// Like [`Project::with`], with the host ports in `fixed` instead of free ones.
    pub fn with_ports(test_name: &str, fixed: &[(&'static str, u16)], configure: impl FnOnce(Test) -> Test) -> Project {
        let name = format!("e2e-{test_name}-{}", std::process::id());
        let (test, ports) = stack_dir(fixed);
        Project { name, test: configure(test), ports, foreign_networks: Vec::new() }
    }

    /// `ragctl -p <project> ARGS`.
    pub fn ragctl(&self, args: &[&str]) -> Run {
        self.test.run(["-p", &self.name].iter().chain(args))
    }

    /// The command [`Project::ragctl`] would run, to spawn it.
    pub fn ragctl_command(&self, args: &[&str]) -> Command {
        self.test.command(["-p", &self.name].iter().chain(args))
    }

    /// `ragctl up`, which must succeed, with plain progress lines.
    pub fn up(&self) {
        self.ragctl(&["up", "--progress", "plain"]).assert_status(0);
    }

    /// `ragctl doctor --check IDS --format json`.
    pub fn doctor(&self, ids: &[&str]) -> BTreeMap<String, Check> {
        doctor(&self.test, &["-p", &self.name], ids)
    }

    /// The name of the first container of `service`.
    pub fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.name)
    }

    /// The `docker … --filter` value that selects the project's objects.
    pub fn label_filter(&self) -> String {
        format!("label={LABEL_PROJECT}={}", self.name)
    }

    /// Container name → full id of every container labelled with the project, running or not.
    pub fn container_ids(&self) -> BTreeMap<String, String> {
        docker(&["ps", "-a", "--no-trunc", "--filter", &self.label_filter(), "--format", "{{.Names}} {{.ID}}"])
            .lines()
            .map(|l| {
                let (name, id) = l.split_once(' ').unwrap();
                (name.to_string(), id.to_string())
            })
            .collect()
    }

    pub fn networks(&self) -> Vec<String> {
        docker(&["network", "ls", "--filter", &self.label_filter(), "--format", "{{.Name}}"])
            .lines()
            .map(String::from)
            .collect()
    }

    pub fn volumes(&self) -> Vec<String> {
        docker(&["volume", "ls", "--filter", &self.label_filter(), "--format", "{{.Name}}"])
            .lines()
            .map(String::from)
            .collect()
    }

    /// Remove `network`, which the test created, when the project is dropped: after the project's containers,
    /// which may still be connected to it.
    pub fn remove_on_drop(&mut self, network: &str) {
        self.foreign_networks.push(network.to_string());
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let down = self.ragctl(&["down", "--volumes", "-y"]);
        if down.status != 0 {
            eprintln!("cleanup: `ragctl down` of `{}` exited {}:\n{}", self.name, down.status, down.stderr);
        }
        // Last resort, for a `down` that failed or a product bug that left something behind.
        let label = format!("{LABEL_PROJECT}={}", self.name);
        for kind in ["container", "network", "volume"] {
            remove_labelled(kind, &label);
        }
        remove_quietly(&["network", "rm"], &self.foreign_networks);
    }
}

/// Remove every Docker object of `kind` (`container`, `network`, `volume`, `service`, `secret`) labelled
/// `key=value`, forcibly where Docker allows it. For cleanup guards: failures are ignored, as there is nothing
/// left to do about them.
pub fn remove_labelled(kind: &str, label: &str) {
    let (all, format, force) = match kind {
        "container" => (&["-a"][..], "{{.ID}}", &["-f", "-v"][..]),
        "volume" => (&[][..], "{{.Name}}", &["-f"][..]),
        _ => (&[][..], "{{.ID}}", &[][..]),
    };
    let filter = format!("label={label}");
    let listed =
        Command::new("docker").args([kind, "ls"]).args(all).args(["--filter", &filter, "--format", format]).output();
    let names: Vec<String> =
        listed.map(|o| String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect()).unwrap_or_default();
    remove_quietly(&[&[kind, "rm"][..], force].concat(), &names);
}

/// `docker ARGS NAMES`, unless there are no names; failures are ignored.
fn remove_quietly(args: &[&str], names: &[String]) {
    if !names.is_empty() {
        let _ = Command::new("docker").args(args).args(names).output();
    }
}

/// One check's result as `doctor --format json` reports it.
#[derive(Debug)]
pub struct Check {
    pub status: String,
    pub detail: String,
    pub hint: String,
}

/// `doctor --format json` as id → result; the exit status agrees with the report (1 iff a check failed).
pub fn checks_of(run: &Run) -> BTreeMap<String, Check> {
    let json = run.json();
    let checks: BTreeMap<String, Check> = json["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks array:\n{}", run.stdout))
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (field("id"), Check { status: field("status"), detail: field("detail"), hint: field("hint") })
        })
        .collect();
    let any_failed = checks.values().any(|c| c.status == "fail");
    run.assert_status(if any_failed { 1 } else { 0 });
    checks
}

/// `ragctl [GLOBAL..] doctor --check IDS --format json` in the scratch project.
pub fn doctor(test: &Test, global: &[&str], ids: &[&str]) -> BTreeMap<String, Check> {
    let ids = ids.join(",");
    checks_of(&test.run(global.iter().copied().chain(["doctor", "--check", &ids, "--format", "json"])))
}

#[track_caller]
pub fn assert_check(checks: &BTreeMap<String, Check>, id: &str, status: &str, detail_has: &[&str], hint_has: &[&str]) {
    let c = checks.get(id).unwrap_or_else(|| panic!("{id} not in the report: {checks:#?}"));
    assert_eq!(c.status, status, "{id}: {c:#?}");
    for s in detail_has {
        assert!(c.detail.contains(s), "{id} detail lacks {s:?}: {c:#?}");
    }
    for s in hint_has {
        assert!(c.hint.contains(s), "{id} hint lacks {s:?}: {c:#?}");
    }
}
