//! End-to-end proof of the rendered nginx configuration in the full shape: `ragctl init --self-signed` creates the
//! project, `ragctl up` runs every service of the `app` profile on the local test images (tests/images: Debian's
//! nginx-light laid out like the official image, Debian's squid for ssrf_proxy, and the app stand-in — NOT DIFY —
//! for api, worker, worker_beat, web, sandbox and plugin_daemon), and the host talks to nginx with curl and openssl
//! the way a browser or API client would: the certificate served is the one `init` wrote, port 80 redirects to the
//! published HTTPS port, each location reaches its service (the stand-in echoes the port it was asked on), the API
//! rate limit answers 429 past its burst and a body over `.env`'s NGINX_CLIENT_MAX_BODY_SIZE is refused with 413 (the
//! NGINX_* keys are in `nginx -T`, and a moved EXPOSE_NGINX_SSL_PORT moves the redirect). `doctor --strict` passes on the
//! stack; `nginx.config` fails with nginx's `[emerg]` line on a broken template and `nginx.tls_certificate` on a
//! certificate that expires within 7 days.
//!
//! Runs under its own project name on free loopback ports; the [`Project`] guard removes whatever it created.
//! Nothing here sleeps for a fixed time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Project, assert_check, await_condition, checks_of, docker, free_port, require_docker, require_tool};

/// The domain `init` is given; curl resolves it to 127.0.0.1.
const DOMAIN: &str = "rag.test";

/// The stand-in's ports: api, web and plugin_daemon.
const API_PORT: u64 = 5001;
const WEB_PORT: u64 = 3000;
const PLUGIN_PORT: u64 = 5002;

struct Edge {
    curl: PathBuf,
    openssl: PathBuf,
    http: u16,
    https: u16,
    /// The certificate `init` wrote, which curl trusts and nothing else.
    ca: PathBuf,
}

/// One curl answer: status, the `Location` curl saw, and the body.
struct Answer {
    status: u16,
    location: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Edge {
    fn resolve(&self) -> Vec<String> {
        ["--resolve".into(), format!("{DOMAIN}:{}:127.0.0.1", self.http)]
            .into_iter()
            .chain(["--resolve".into(), format!("{DOMAIN}:{}:127.0.0.1", self.https)])
            .collect()
    }

    fn https_url(&self, path: &str) -> String {
        format!("https://{DOMAIN}:{}{path}", self.https)
    }

    /// curl ARGS URL, trusting only the project's certificate; the answer's status, Location and body.
    fn curl(&self, args: &[&str], url: &str) -> Answer {
        let out = Command::new(&self.curl)
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(&self.ca)
            .args(self.resolve())
            .args(args)
            .args(["-w", "\n%{http_code} %{redirect_url}"])
            .arg(url)
            .output()
            .expect("run curl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, trailer) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        let (status, location) = trailer.split_once(' ').unwrap_or((trailer, ""));
        let status = status.parse().unwrap_or_else(|_| {
            panic!("curl {args:?} {url}: no status in {stdout:?}; stderr: {}", String::from_utf8_lossy(&out.stderr))
        });
        Answer { status, location: location.to_string(), body: body.to_string() }
    }

    /// The SHA-256 fingerprint `openssl x509` prints for a PEM certificate.
    fn fingerprint(&self, pem: &[u8]) -> String {
        let mut child = Command::new(&self.openssl)
            .args(["x509", "-noout", "-fingerprint", "-sha256"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run openssl x509");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(pem).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl x509 on {}", String::from_utf8_lossy(pem));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The certificate nginx presents for DOMAIN (SNI) on the HTTPS port, as PEM.
    fn served_certificate(&self) -> Vec<u8> {
        let out = Command::new(&self.openssl)
            .args(["s_client", "-connect", &format!("127.0.0.1:{}", self.https), "-servername", DOMAIN])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run openssl s_client");
        let text = String::from_utf8_lossy(&out.stdout);
        let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| panic!("no certificate: {text}"));
        let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
        text[begin..end].as_bytes().to_vec()
    }
}

/// `openssl req -x509` for DOMAIN, valid `days` days, into the project's certificate pair.
fn self_signed(openssl: &Path, dir: &Path, days: &str) {
    let out = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", &format!("/CN={DOMAIN}"), "-days", days, "-keyout"])
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
}

/// The full shape with the app, made by `init --self-signed` on free loopback ports, every service on its test image.
fn full_stack(name: &str, http: u16, https: u16) -> Project {
    Project::with(name, |t| {
        t.init_full_app(DOMAIN, (http, https), false, &[])
            // Dify's NGINX_* keys reach the running nginx through its environment (the templates' placeholders).
            .append(".env", &NGINX_ENV.map(|(k, v)| format!("{k}={v}\n")).concat())
    })
}

/// Non-default values of Dify's NGINX_* keys in `.env`, and the directive each becomes in the running nginx.
const NGINX_ENV: [(&str, &str); 4] = [
    ("NGINX_CLIENT_MAX_BODY_SIZE", "3m"),
    ("NGINX_KEEPALIVE_TIMEOUT", "33"),
    ("NGINX_PROXY_READ_TIMEOUT", "1800s"),
    ("NGINX_WORKER_PROCESSES", "2"),
];
const NGINX_DIRECTIVES: [&str; 4] =
    ["client_max_body_size 3m;", "keepalive_timeout 33;", "proxy_read_timeout 1800s;", "worker_processes 2;"];

#[test]
fn nginx_serves_the_init_certificate_routes_limits_and_doctor_judges_it() {
    if !require_docker() {
        return;
    }
    let Some(curl) = require_tool("curl", &[]) else { return };
    let Some(openssl) = require_tool("openssl", &[]) else { return };
    let (http, https) = (free_port(), free_port());
    let stack = full_stack("nginx", http, https);
    stack.up();
    assert_eq!(
        docker(&["inspect", "--format", "{{.Config.Image}}", &stack.container("nginx")]).trim(),
        "ragctl-test/nginx:1"
    );
    let certs = stack.test.path().join("certs");
    let edge = Edge { curl, openssl, http, https, ca: certs.join("fullchain.pem") };

    // HTTPS answers with exactly the certificate `init` wrote (and curl verifies the chain against it alone).
    let written = std::fs::read(&edge.ca).unwrap();
    assert_eq!(edge.fingerprint(&edge.served_certificate()), edge.fingerprint(&written));
    let health = edge.curl(&[], &edge.https_url("/health"));
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    // Port 80: its own /health for probes, everything else to HTTPS on the published port.
    let plain = edge.curl(&[], &format!("http://{DOMAIN}:{http}/health"));
    assert_eq!(plain.status, 200);
    let redirect = edge.curl(&[], &format!("http://{DOMAIN}:{http}/console/api/setup?x=1"));
    assert_eq!(redirect.status, 301, "{}", redirect.body);
    assert_eq!(redirect.location, format!("https://{DOMAIN}:{https}/console/api/setup?x=1"));
    let followed = edge.curl(&["-L"], &format!("http://{DOMAIN}:{http}/signin"));
    assert_eq!(followed.status, 200, "{}", followed.body);
    assert_eq!(followed.json()["port"], WEB_PORT, "{}", followed.body);

    // Each location reaches its service: the stand-in says which port it was asked on.
    for (path, port) in [
        ("/console/api/apps", API_PORT),
        ("/api/parameters", API_PORT),
        ("/v1/chat-messages", API_PORT),
        ("/files/abc/file-preview", API_PORT),
        ("/e/hook-id/endpoint", PLUGIN_PORT),
        ("/apps", WEB_PORT),
        ("/", WEB_PORT),
    ] {
        let answer = edge.curl(&[], &edge.https_url(path));
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let echo = answer.json();
        assert_eq!(echo["port"], port, "{path}: {echo}");
        assert_eq!(echo["path"], path, "{path}: {echo}");
        assert_eq!(echo["headers"]["x-forwarded-proto"], "https", "{path}: {echo}");
        assert_eq!(echo["headers"]["host"], DOMAIN, "{path}: {echo}");
    }
    let hook = edge.curl(&[], &edge.https_url("/e/hook-id/endpoint?a=b")).json();
    // The hook URL a plugin hands out names the port clients reached nginx on.
    let hook_url = format!("https://{DOMAIN}:{https}/e/hook-id/endpoint?a=b");
    assert_eq!(hook["headers"]["dify-hook-url"], hook_url, "{hook}");

    // The NGINX_* values of .env are in the configuration nginx runs, and no placeholder is left.
    let running = docker(&["exec", &stack.container("nginx"), "nginx", "-T"]);
    for directive in NGINX_DIRECTIVES {
        assert!(running.contains(directive), "`{directive}` not in `nginx -T`:\n{running}");
    }
    assert!(!running.contains("${"), "a placeholder is left in `nginx -T`:\n{running}");

    // client_max_body_size from NGINX_CLIENT_MAX_BODY_SIZE=3m: 1 MiB goes through, one byte over 3 MiB is refused
    // before the API sees it.
    let scratch = tempfile::tempdir().unwrap();
    let body = |name: &str, len: u64| {
        let path = scratch.path().join(name);
        std::fs::File::create(&path).unwrap().set_len(len).unwrap();
        path.display().to_string()
    };
    let (small, big) = (body("small", 1 << 20), body("big", (3 << 20) + 1));
    let small = edge.curl(&["-T", &small, "-X", "POST"], &edge.https_url("/files/upload"));
    assert_eq!(small.status, 200, "{}", small.body);
    assert_eq!(small.json()["body_length"], 1 << 20);
    let big = edge.curl(&["-T", &big, "-X", "POST"], &edge.https_url("/files/upload"));
    assert_eq!(big.status, 413, "{}", big.body);

    // The API rate limit (10 r/s, burst 20): one connection, 60 requests as fast as curl sends them.
    let url = edge.https_url("/v1/rate-limited");
    let mut args: Vec<String> = ["-sS", "--max-time", "60", "--cacert"].map(String::from).to_vec();
    args.push(edge.ca.display().to_string());
    args.extend(edge.resolve());
    args.extend(["-w".to_string(), "%{http_code}\n".to_string()]);
    for _ in 0..60 {
        args.extend(["-o".to_string(), "/dev/null".to_string(), url.clone()]);
    }
    let out = Command::new(&edge.curl).args(&args).output().unwrap();
    let codes: Vec<u16> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(codes.len(), 60, "{codes:?} {}", String::from_utf8_lossy(&out.stderr));
    let passed = codes.iter().filter(|c| **c == 200).count();
    // The requests above spent a few of the burst's tokens; at least half of it is left, and the limit bites
    // long before 60.
    assert!(codes[..10].iter().all(|c| *c == 200), "the burst is refused: {codes:?}");
    assert!(passed <= 40, "the limit let {passed} of 60 through: {codes:?}");
    assert!(codes.iter().all(|c| [200, 429].contains(c)), "{codes:?}");
    // Outside the limited locations nothing is limited.
    assert_eq!(edge.curl(&[], &edge.https_url("/health")).status, 200);

    // doctor --strict on the whole stack: no failure, no warning.
    let strict = stack.ragctl(&["doctor", "--strict", "--format", "json"]);
    let report = strict.json();
    let bad: Vec<String> = report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {report}"))
        .iter()
        .filter(|c| c["status"] == "fail" || c["status"] == "warn")
        .map(|c| format!("{}: {} {} ({})", c["id"], c["status"], c["detail"], c["hint"]))
        .collect();
    assert!(bad.is_empty(), "doctor --strict:\n{}", bad.join("\n"));
    let checks = checks_of(&strict);
    let ids = ["nginx.config", "nginx.tls_certificate"];
    assert_check(&checks, "nginx.config", "pass", &["configuration is valid"], &[]);
    assert_check(&checks, "nginx.tls_certificate", "pass", &["valid until", "present and readable"], &[]);

    // A certificate that expires in 7 days fails; in 10 days it warns.
    self_signed(&edge.openssl, &certs, "7");
    let due = stack.doctor(&ids);
    assert_check(&due, "nginx.tls_certificate", "fail", &["expires in ", " days, on ", "7 days or less"], &["renew"]);
    assert_check(&due, "nginx.config", "pass", &[], &[]);
    self_signed(&edge.openssl, &certs, "10");
    assert_check(&stack.doctor(&ids), "nginx.tls_certificate", "warn", &["expires in ", " days, on "], &["renew"]);
    // Restarted, nginx serves the renewed pair.
    self_signed(&edge.openssl, &certs, "365");
    stack.ragctl(&["restart", "nginx"]).assert_status(0);
    let renewed = std::fs::read(&edge.ca).unwrap();
    assert_ne!(edge.fingerprint(&renewed), edge.fingerprint(&written));
    assert_eq!(edge.fingerprint(&edge.served_certificate()), edge.fingerprint(&renewed));
    assert_check(&stack.doctor(&ids), "nginx.tls_certificate", "pass", &["valid until"], &[]);

    // HTTPS moved in .env only: `up` re-creates nginx, which publishes and redirects to the new port, read from
    // its environment (nothing rendered names it).
    let moved = free_port();
    stack.test.set_dotenv("EXPOSE_NGINX_SSL_PORT", &moved.to_string());
    stack.ragctl(&["up"]).assert_status(0);
    let redirect = edge.curl(&[], &format!("http://{DOMAIN}:{http}/signin"));
    assert_eq!(redirect.location, format!("https://{DOMAIN}:{moved}/signin"));
    let edge = Edge { https: moved, ..edge };
    assert_eq!(edge.curl(&[], &edge.https_url("/health")).status, 200);
    assert_check(&stack.doctor(&["nginx.config"]), "nginx.config", "pass", &["configuration is valid"], &[]);

    // A project template that nginx rejects: rendered and restarted, nginx exits; doctor shows its [emerg] line.
    let builtin =
        std::fs::read_to_string(common::repo_root().join("templates/nginx/conf.d/default.conf.template.j2")).unwrap();
    let broken = builtin.replacen(
        "    ssl_session_tickets off;\n",
        "    ssl_session_tickets off;\n    bogus_directive on;\n",
        1,
    );
    assert_ne!(broken, builtin, "templates/nginx/conf.d/default.conf.template.j2 changed shape");
    let overrides = stack.test.path().join("templates/nginx/conf.d");
    std::fs::create_dir_all(&overrides).unwrap();
    std::fs::write(overrides.join("default.conf.template.j2"), broken).unwrap();
    stack.ragctl(&["render"]).assert_status(0);
    docker(&["restart", "-t", "1", &stack.container("nginx")]);
    let failed = await_condition("nginx.config to fail", Duration::from_secs(60), || {
        let checks = stack.doctor(&["nginx.config"]);
        match checks["nginx.config"].status.as_str() {
            "fail" if checks["nginx.config"].detail.contains("[emerg]") => Ok(checks),
            _ => Err(format!("{checks:?}")),
        }
    });
    assert_check(&failed, "nginx.config", "fail", &["[emerg]", "unknown directive \"bogus_directive\""], &["nginx -t"]);
}
