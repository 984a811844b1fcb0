//! `ragctl init` through the real binary: flags-only runs (no terminal), the wizard driven through a real
//! pseudo-terminal, and the promise that both produce the same files for the same answers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use common::{Test, ragctl_bin};
use ragctl::dotenv::DotEnv;
use ragctl::project_file::ProjectFile;

fn project_file(t: &Test) -> ProjectFile {
    ProjectFile::parse("ragctl.yaml", &t.read("ragctl.yaml")).expect("ragctl.yaml parses")
}

fn env_doc(t: &Test) -> DotEnv {
    DotEnv::parse(&t.read(".env")).expect(".env parses")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A port nothing listens on right now (the OS picks it).
fn free_port() -> u16 {
    common::free_port()
}

fn is_free(port: u16) -> bool {
    ragctl::port_holder::is_free("127.0.0.1", port).unwrap()
}

#[test]
fn flags_only_init_writes_a_project_that_renders_clean() {
    let t = Test::new();
    let (db, redis, rest, grpc) = (free_port(), free_port(), free_port(), free_port());
    // The runtime services' ports, published in the middleware shape as in Dify's.
    let (sandbox, proxy, plugin, debug) = (free_port(), free_port(), free_port(), free_port());
    let r = t.run([
        "init",
        "--name",
        "demo",
        "--vector-store",
        "qdrant",
        "--pg-cluster",
        "--registry",
        "mirror.local:5000/",
        "--port",
        &format!("EXPOSE_POSTGRES_PORT={db}"),
        "--port",
        &format!("EXPOSE_REDIS_PORT={redis}"),
        "--port",
        &format!("EXPOSE_QDRANT_PORT={rest}"),
        "--port",
        &format!("EXPOSE_QDRANT_GRPC_PORT={grpc}"),
        "--port",
        &format!("EXPOSE_SANDBOX_PORT={sandbox}"),
        "--port",
        &format!("EXPOSE_SSRF_PROXY_PORT={proxy}"),
        "--port",
        &format!("EXPOSE_PLUGIN_DAEMON_PORT={plugin}"),
        "--port",
        &format!("EXPOSE_PLUGIN_DEBUGGING_PORT={debug}"),
    ]);
    r.assert_status(0);
    assert!(r.stderr.contains("next: ragctl up"), "{}", r.stderr);

    let file = project_file(&t);
    assert_eq!(file.project.as_deref(), Some("demo"));
    assert_eq!(file.profiles.as_deref(), Some(&["qdrant".to_string(), "pg_cluster".to_string()][..]));
    assert_eq!(file.shape, Some(ragctl::profile::Shape::Middleware));
    assert_eq!(file.registry.as_deref(), Some("mirror.local:5000"));
    let ports: BTreeMap<&str, u16> = file.ports.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let expected = [
        ("EXPOSE_POSTGRES_PORT", db),
        ("EXPOSE_REDIS_PORT", redis),
        ("EXPOSE_QDRANT_GRPC_PORT", grpc),
        ("EXPOSE_QDRANT_PORT", rest),
        ("EXPOSE_SANDBOX_PORT", sandbox),
        ("EXPOSE_SSRF_PROXY_PORT", proxy),
        ("EXPOSE_PLUGIN_DAEMON_PORT", plugin),
        ("EXPOSE_PLUGIN_DEBUGGING_PORT", debug),
    ];
    assert_eq!(ports, BTreeMap::from(expected));
    assert!(file.replicas.is_empty(), "the middleware shape runs one replica");
    assert_eq!((file.domain, file.tls), (None, None));

    #[cfg(unix)]
    assert_eq!(mode(&t.path().join(".env")), 0o600);
    let env = env_doc(&t);
    for secret in ["DB_PASSWORD", "REDIS_PASSWORD", "QDRANT_API_KEY", "PG_REPLICATION_PASSWORD"] {
        assert!(env.get(secret).is_some_and(|v| v.len() >= 16), "{secret} missing in .env:\n{}", t.read(".env"));
    }
    t.run(["secret", "check"]).assert_status(0);
    t.run(["render", "--check"]).assert_status(0);
    assert!(t.read("docker-compose.yaml").contains("mirror.local:5000/"), "registry mirror not applied");
    assert!(t.exists("config/postgres/replica-entrypoint.sh"));
}

#[test]
fn full_shape_with_the_app_requires_domain_and_tls_and_writes_nothing_without_them() {
    let t = Test::new();
    let r = t.run(["init", "--shape", "full"]);
    r.assert_status(2);
    assert!(r.stderr.contains("--domain"), "{}", r.stderr);
    let r = t.run(["init", "--shape", "full", "--domain", "rag.example.com"]);
    r.assert_status(2);
    assert!(r.stderr.contains("--tls-cert") && r.stderr.contains("--self-signed"), "{}", r.stderr);
    let r = t.run(["init", "--app"]);
    r.assert_status(2);
    assert!(r.stderr.contains("`--app` applies to the full shape only"), "{}", r.stderr);
    let r = t.run(["init", "--vector-store", "chroma"]);
    r.assert_status(2);
    assert!(r.stderr.contains("unknown vector store `chroma`") && r.stderr.contains("weaviate"), "{}", r.stderr);
    let r = t.run(["init", "--port", "EXPOSE_NGINX_PORT=8080"]);
    r.assert_status(2);
    assert!(r.stderr.contains("no service of this stack publishes `EXPOSE_NGINX_PORT`"), "{}", r.stderr);
    assert!(r.stderr.contains("EXPOSE_POSTGRES_PORT"), "the hint lists the published keys: {}", r.stderr);
    // ragctl's old name of PostgreSQL's port is refused with the flag to pass instead.
    let r = t.run(["init", "--port", "EXPOSE_DB_PORT=5433"]);
    r.assert_status(2);
    assert!(r.stderr.contains("`EXPOSE_DB_PORT` is the old name of `EXPOSE_POSTGRES_PORT`"), "{}", r.stderr);
    assert!(r.stderr.contains("pass `--port EXPOSE_POSTGRES_PORT=5433`"), "{}", r.stderr);
    let entries: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
    assert!(entries.is_empty(), "a refused init wrote files: {entries:?}");

    // With the app turned off, nothing is required.
    t.run(["init", "--shape", "full", "--no-app"]).assert_status(0);
    let file = project_file(&t);
    assert_eq!(file.profiles.as_deref(), Some(&["weaviate".to_string()][..]));
    assert_eq!(file.domain, None);
}

#[test]
fn full_shape_self_signed_writes_a_private_key_and_renders_clean() {
    let t = Test::new();
    let r = t.run([
        "init",
        "--shape",
        "full",
        "--domain",
        "Rag.Example.com",
        "--self-signed",
        "--pg-cluster",
        "--replicas",
        "2",
        "--monitoring",
        "--port",
        &format!("EXPOSE_NGINX_PORT={}", free_port()),
        "--port",
        &format!("EXPOSE_NGINX_SSL_PORT={}", free_port()),
        "--format",
        "json",
    ]);
    r.assert_status(0);
    let report = r.json();
    assert_eq!(report["next"], "ragctl up");
    assert_eq!(report["tls"]["action"], "generated");
    let file = project_file(&t);
    assert_eq!(file.domain.as_deref(), Some("rag.example.com"));
    assert_eq!(file.replicas.get("db_postgres_replica"), Some(&2));
    assert_eq!(file.profiles.as_deref().unwrap(), ["weaviate", "pg_cluster", "app", "monitoring"]);
    assert!(t.read("certs/fullchain.pem").starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(t.read("certs/privkey.pem").contains("PRIVATE KEY-----"));
    #[cfg(unix)]
    assert_eq!(mode(&t.path().join("certs/privkey.pem")), 0o600);
    t.run(["render", "--check"]).assert_status(0);
    t.run(["secret", "check"]).assert_status(0);
}

#[test]
fn rerun_refuses_and_force_keeps_every_secret() {
    let t = Test::new();
    let port = format!("EXPOSE_POSTGRES_PORT={}", free_port());
    t.run(["init", "--name", "keep", "--port", &port]).assert_status(0);
    let before = env_doc(&t);
    let yaml_before = t.read("ragctl.yaml");

    let r = t.run(["init", "--name", "keep", "--port", &port]);
    r.assert_status(2);
    assert!(r.stderr.contains("already exists") && r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(t.read("ragctl.yaml"), yaml_before);

    // A different answer (pg_cluster) rewrites ragctl.yaml and adds its secret, and changes no other.
    let r = t.run(["init", "--force", "--name", "keep", "--pg-cluster", "--port", &port]);
    r.assert_status(0);
    let after = env_doc(&t);
    for (key, value) in before.entries() {
        assert_eq!(after.get(key), Some(value), "`{key}` changed under --force");
    }
    assert!(after.get("PG_REPLICATION_PASSWORD").is_some());
    assert!(project_file(&t).profiles.unwrap().contains(&"pg_cluster".to_string()));
    t.run(["render", "--check"]).assert_status(0);
}

#[test]
fn flags_only_init_proposes_a_free_port_for_a_taken_default() {
    // Qdrant's REST port; if something else already holds it, it is just as taken.
    let _held = TcpListener::bind("127.0.0.1:6333");
    assert!(!is_free(6333));
    let t = Test::new();
    let r = t.run(["init", "--yes", "--vector-store", "qdrant"]);
    r.assert_status(0);
    let ports = project_file(&t).ports;
    let chosen = ports["EXPOSE_QDRANT_PORT"];
    assert_ne!(chosen, 6333);
    assert_ne!(chosen, ports["EXPOSE_QDRANT_GRPC_PORT"], "two keys got the same port");
    assert!(is_free(chosen), "proposed port {chosen} is not free");
    assert!(
        r.stderr.contains("port 6333 (EXPOSE_QDRANT_PORT) is taken on 127.0.0.1")
            && r.stderr.contains(&format!("using {chosen} instead")),
        "{}",
        r.stderr
    );
}

/// Drives a command on a pseudo-terminal: waits for each prompt (a regex over the output without ANSI
/// escapes) and types the answer, then reads to the end. Prints `{"status", "transcript", "error"}` as JSON.
const PTY_DRIVER: &str = r#"
import json, os, pty, re, select, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.chdir(spec["cwd"])
    os.execve(spec["argv"][0], spec["argv"], spec["env"])
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
transcript, pending = "", ""
def read(timeout):
    """True: got output, None: timed out, False: end of output."""
    global transcript, pending
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return None
    try:
        data = os.read(fd, 65536)
    except OSError:
        data = b""
    if not data:
        return False
    text = data.decode("utf-8", "replace")
    transcript += text
    pending += text
    return True
def finish(error):
    status = None
    if error is None:
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    print(json.dumps({"status": status, "error": error, "transcript": ANSI.sub("", transcript)}))
    sys.exit(0)
for expect, answer in spec["steps"]:
    deadline = time.time() + 30
    while True:
        clean = ANSI.sub("", pending)
        m = re.search(expect, clean)
        if m:
            pending = clean[m.end():]
            break
        left = deadline - time.time()
        got = read(left) if left > 0 else None
        if got is None:
            finish("timed out waiting for %r" % expect)
        if got is False:
            finish("output ended while waiting for %r" % expect)
    os.write(fd, answer.encode())
deadline = time.time() + 60
while True:
    got = read(max(0, deadline - time.time()))
    if got is False:
        finish(None)
    if got is None:
        finish("the command did not finish")
"#;

/// Run `ragctl init` (plus `args`) in `dir` on a pseudo-terminal, answering `steps` in order.
fn run_wizard(dir: &Path, args: &[&str], steps: &[(&str, &str)]) -> serde_json::Value {
    let Some(python) = common::require_tool("python3", &[]) else {
        panic!("python3 is needed to drive the wizard through a pseudo-terminal");
    };
    let mut argv = vec![ragctl_bin().display().to_string(), "init".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| !(k.starts_with("RAGCTL_") || k.starts_with("COMPOSE_") || k == "DOCKER_HOST"))
        .collect();
    env.insert("TERM".into(), "xterm".into());
    env.insert("NO_COLOR".into(), "1".into());
    let spec = serde_json::json!({
        "cwd": dir,
        "argv": argv,
        "env": env,
        "steps": steps.iter().map(|(e, a)| [e, a]).collect::<Vec<_>>(),
    });
    let out = Command::new(python).arg("-c").arg(PTY_DRIVER).arg(spec.to_string()).output().expect("run python3");
    assert!(out.status.success(), "pty driver failed: {}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("pty driver output ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert!(
        result["error"].is_null(),
        "{}\n--- transcript ---\n{}",
        result["error"],
        result["transcript"].as_str().unwrap()
    );
    assert_eq!(result["status"], 0, "--- transcript ---\n{}", result["transcript"].as_str().unwrap());
    result
}

/// Every file under `dir` (relative path → bytes), `.env` as its set of keys.
fn tree(dir: &Path) -> (BTreeMap<String, Vec<u8>>, BTreeSet<String>) {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    let env = files.remove(".env").expect(".env written");
    let keys = DotEnv::parse(&String::from_utf8(env).unwrap()).unwrap().entries().map(|(k, _)| k.to_string()).collect();
    (files, keys)
}

fn assert_same_project(wizard: &Path, flags: &Path) {
    let (wizard_files, wizard_keys) = tree(wizard);
    let (flag_files, flag_keys) = tree(flags);
    assert_eq!(wizard_keys, flag_keys, ".env keys differ");
    assert_eq!(wizard_files.keys().collect::<Vec<_>>(), flag_files.keys().collect::<Vec<_>>(), "file sets differ");
    for (path, bytes) in &wizard_files {
        assert!(
            bytes == &flag_files[path],
            "`{path}` differs\n--- wizard ---\n{}\n--- flags ---\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&flag_files[path])
        );
    }
}

const DOWN: &str = "\x1b[B";

#[test]
fn wizard_on_a_terminal_writes_what_the_same_flags_write_full_shape() {
    let certs = tempfile::tempdir().unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["rag.example.com".to_string()]).unwrap();
    let (cert, key) = (certs.path().join("site.crt"), certs.path().join("site.key"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let (http, https) = (free_port().to_string(), free_port().to_string());

    let wizard = Test::new();
    let enter = |s: &str| format!("{s}\r");
    let steps: Vec<(&str, String)> = vec![
        (r"Project name \[[^\]]*\]: ", enter("wiz")),
        (r"full: everything[^\n]*\n", format!("{DOWN}\r")),
        (r"qdrant: [^\n]*\n", format!("{DOWN}{DOWN}{DOWN}\r")),
        (r"\(pg_cluster\)\? \[y/N\] ", "y".into()),
        (r"PostgreSQL replicas \[1\]: ", enter("2")),
        (r"nginx\)\? \[Y/n\] ", "\r".into()),
        (r"alert rules\)\? \[y/N\] ", "n".into()),
        (r"Domain nginx serves: ", enter("rag.example.com")),
        (r"use an existing certificate and key[^\n]*\n", format!("{DOWN}\r")),
        (r"Certificate file \(PEM, full chain\): ", enter(&cert)),
        (r"Private key file \(PEM\): ", enter(&key)),
        (r"\(EXPOSE_NGINX_PORT\) \[\d+\]: ", enter(&http)),
        (r"\(EXPOSE_NGINX_SSL_PORT\) \[\d+\]: ", enter(&https)),
        (r"Image registry mirror \(empty for none\): ", enter("mirror.local:5000")),
    ];
    let steps: Vec<(&str, &str)> = steps.iter().map(|(e, a)| (*e, a.as_str())).collect();
    let result = run_wizard(wizard.path(), &[], &steps);
    assert!(result["transcript"].as_str().unwrap().contains("next: ragctl up"));

    let flags = Test::new();
    flags
        .run([
            "init",
            "--name",
            "wiz",
            "--shape",
            "full",
            "--vector-store",
            "qdrant",
            "--pg-cluster",
            "--replicas",
            "2",
            "--app",
            "--no-monitoring",
            "--domain",
            "rag.example.com",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--port",
            &format!("EXPOSE_NGINX_PORT={http}"),
            "--port",
            &format!("EXPOSE_NGINX_SSL_PORT={https}"),
            "--registry",
            "mirror.local:5000",
        ])
        .assert_status(0);
    assert_same_project(wizard.path(), flags.path());
    let file = project_file(&wizard);
    assert_eq!(file.replicas.get("db_postgres_replica"), Some(&2));
    assert_eq!(file.domain.as_deref(), Some("rag.example.com"));
    #[cfg(unix)]
    assert_eq!(mode(&wizard.path().join("certs/privkey.pem")), 0o600);
}

#[test]
fn wizard_proposes_a_free_port_for_a_taken_default_and_matches_the_flags() {
    // Weaviate's REST port; if something else already holds it, it is just as taken.
    let _held = TcpListener::bind("127.0.0.1:8080");
    assert!(!is_free(8080));
    let wizard = Test::new();
    let port_prompt = r"\((EXPOSE_\w+)\) \[\d+\]: ";
    let steps = [
        (r"Project name \[[^\]]*\]: ", "mid\r"),
        (r"full: everything[^\n]*\n", "\r"),
        (r"qdrant: [^\n]*\n", "\r"),
        (r"\(pg_cluster\)\? \[y/N\] ", "n"),
        // PostgreSQL, Redis, the runtime services (sandbox, ssrf_proxy, plugin_daemon and its debugging port),
        // Weaviate's REST and gRPC.
        (port_prompt, "\r"),
        (port_prompt, "\r"),
        (port_prompt, "\r"),
        (port_prompt, "\r"),
        (port_prompt, "\r"),
        (port_prompt, "\r"),
        (port_prompt, "\r"),
        (port_prompt, "\r"),
        (r"Image registry mirror \(empty for none\): ", "\r"),
    ];
    let result = run_wizard(wizard.path(), &[], &steps);
    let transcript = result["transcript"].as_str().unwrap();

    let file = project_file(&wizard);
    let chosen = file.ports["EXPOSE_WEAVIATE_PORT"];
    assert_ne!(chosen, 8080);
    assert!(is_free(chosen), "proposed port {chosen} is not free");
    assert!(transcript.contains("port 8080 (EXPOSE_WEAVIATE_PORT) is taken on 127.0.0.1"), "{transcript}");
    assert_eq!(file.profiles.as_deref(), Some(&["weaviate".to_string()][..]));
    assert_eq!(file.registry, None);

    let flags = Test::new();
    let mut args = vec!["init".to_string(), "--name".into(), "mid".into(), "--no-pg-cluster".into()];
    for (key, port) in &file.ports {
        args.extend(["--port".to_string(), format!("{key}={port}")]);
    }
    flags.run(&args).assert_status(0);
    assert_same_project(wizard.path(), flags.path());
}
