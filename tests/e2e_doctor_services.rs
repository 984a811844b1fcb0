//! End-to-end tests of the doctor's service checks (`redis.*`, `weaviate.*`, `network.reachability`,
//! `nginx.tls_certificate`) through the real binary: `ragctl doctor --check ID --format json` against a real stack
//! of the local test images (tests/images), each test under its own project name on free host ports, with faults
//! injected the way they happen in the field (a password edited in .env without `up`, a key that differs from the
//! server's, an old image, a container cut off from its network, a misnamed DB_HOST, an expiring certificate).
//!
//! A [`Project`] guard runs `ragctl down --volumes -y` and removes whatever is still labelled with the project.
//! Nothing sleeps: every check is a single doctor run against a state the test has already established.

mod common;

use std::process::Command;

use common::{Project, Test, assert_check, docker, doctor, free_port, require_docker, require_tool};

/// Change `key` in the project's `.env`, as an operator editing it by hand would: the key is there (`up` wrote it).
fn edit_env(stack: &Project, key: &str, value: &str) {
    let _before = stack.test.dotenv_value(key); // panics, showing `.env`, when the key is missing
    stack.test.set_dotenv(key, value);
}

#[test]
fn redis_ping_tells_wrongpass_and_noauth_apart_and_judges_the_eviction_policy() {
    if !require_docker() {
        return;
    }
    let stack = Project::new("redis");
    stack.up();

    let healthy = stack.doctor(&["redis.ping", "redis.maxmemory_policy"]);
    assert_check(&healthy, "redis.ping", "pass", &["PONG", "authenticated with REDIS_PASSWORD"], &[]);
    assert_check(&healthy, "redis.maxmemory_policy", "pass", &["no maxmemory limit"], &[]);

    // A cache with a limit and the default noeviction policy: writes fail with OOM once full.
    // (REDISCLI_AUTH in the container authenticates redis-cli.)
    let set = docker(&["exec", &stack.container("redis"), "redis-cli", "CONFIG", "SET", "maxmemory", "100mb"]);
    assert_eq!(set.trim(), "OK");
    let limited = stack.doctor(&["redis.maxmemory_policy"]);
    assert_check(&limited, "redis.maxmemory_policy", "warn", &["100.0 MiB", "noeviction"], &["volatile-lru"]);

    // REDIS_PASSWORD edited in .env, redis not recreated.
    edit_env(&stack, "REDIS_PASSWORD", "edited-by-hand-not-applied");
    let wrong = stack.doctor(&["redis.ping", "redis.maxmemory_policy"]);
    assert_check(
        &wrong,
        "redis.ping",
        "fail",
        &["WRONGPASS"],
        &["REDIS_PASSWORD in .env differs from the running server's requirepass", "`ragctl up` recreates redis"],
    );
    assert_check(&wrong, "redis.maxmemory_policy", "skip", &["redis.ping did not pass"], &[]);

    // REDIS_PASSWORD emptied: Redis says NOAUTH, which is a different fix.
    edit_env(&stack, "REDIS_PASSWORD", "");
    let empty = stack.doctor(&["redis.ping"]);
    assert_check(&empty, "redis.ping", "fail", &["NOAUTH", "REDIS_PASSWORD is empty"], &["set REDIS_PASSWORD in .env"]);
}

#[test]
fn redis_that_is_not_running_fails_with_the_command_that_starts_it() {
    if !require_docker() {
        return;
    }
    let stack = Project::new("redisdown");
    stack.up();
    docker(&["stop", "-t", "1", &stack.container("redis")]);

    let checks = stack.doctor(&["redis.ping"]);
    assert_check(&checks, "redis.ping", "fail", &["exited"], &["ragctl up", "ragctl logs redis"]);
}

#[test]
fn weaviate_passes_on_a_healthy_stack_and_a_mismatched_key_fails_with_401() {
    if !require_docker() {
        return;
    }
    let mut stack = Project::new("wvkey");
    stack.up();

    let ids = ["weaviate.ready", "weaviate.version", "weaviate.grpc", "weaviate.subnet"];
    let healthy = stack.doctor(&ids);
    assert_check(&healthy, "weaviate.ready", "pass", &["HTTP 200"], &[]);
    assert_check(&healthy, "weaviate.version", "pass", &["Weaviate 1.27.0", "API key accepted"], &[]);
    assert_check(&healthy, "weaviate.grpc", "pass", &["50051"], &[]);
    assert_check(&healthy, "weaviate.subnet", "pass", &["private address"], &[]);

    // Only WEAVIATE_API_KEY changes: the running Weaviate still allows the old key.
    edit_env(&stack, "WEAVIATE_API_KEY", "NotTheKeyWeaviateWasCreatedWith0123456789");
    let mismatched = stack.doctor(&ids);
    assert_check(&mismatched, "weaviate.ready", "pass", &[], &[]);
    assert_check(
        &mismatched,
        "weaviate.version",
        "fail",
        &["rejected WEAVIATE_API_KEY", "HTTP 401"],
        &["WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", "`ragctl secret check`"],
    );

    // Weaviate on a non-private subnet (TEST-NET-2 is routable, not RFC 1918).
    let public_net = format!("{}-public", stack.name);
    docker(&["network", "create", "--subnet", "198.51.100.0/24", &public_net]);
    stack.remove_on_drop(&public_net);
    docker(&["network", "connect", &public_net, &stack.container("weaviate")]);
    let public = stack.doctor(&["weaviate.subnet"]);
    assert_check(
        &public,
        "weaviate.subnet",
        "warn",
        &["198.51.100.", "outside the private ranges"],
        &["default-address-pools"],
    );
    // Leave the network removable by `down` and the guard.
    docker(&["network", "disconnect", &public_net, &stack.container("weaviate")]);
}

#[test]
fn weaviate_older_than_1_27_without_grpc_fails_version_and_grpc() {
    if !require_docker() {
        return;
    }
    // A project copy of the weaviate profile: the stand-in reports 1.19.0 and serves no gRPC on 50051.
    let builtin = std::fs::read_to_string(common::repo_root().join("profiles/weaviate.yaml")).unwrap();
    let anchor = "      PERSISTENCE_DATA_PATH: /var/lib/weaviate\n";
    assert!(builtin.contains(anchor), "profiles/weaviate.yaml changed shape");
    let old = builtin
        .replace(anchor, &format!("{anchor}      WEAVIATE_STANDIN_VERSION: \"1.19.0\"\n      GRPC_PORT: \"50052\"\n"));
    let stack = Project::with("wvold", |t| t.file("profiles/weaviate.yaml", &old));
    stack.up();

    let checks = stack.doctor(&["weaviate.ready", "weaviate.version", "weaviate.grpc"]);
    assert_check(&checks, "weaviate.ready", "pass", &[], &[]);
    assert_check(
        &checks,
        "weaviate.version",
        "fail",
        &["Weaviate 1.19.0", "1.27 or newer"],
        &["semitechnologies/weaviate:1.27.0"],
    );
    assert_check(&checks, "weaviate.grpc", "fail", &["50051", "connection refused"], &["weaviate.version"]);
}

#[test]
fn network_reachability_names_a_service_cut_off_from_the_network_and_its_hint_fixes_it() {
    if !require_docker() {
        return;
    }
    let stack = Project::new("netcut");
    stack.up();

    let healthy = stack.doctor(&["network.reachability"]);
    assert_check(
        &healthy,
        "network.reachability",
        "pass",
        &["routes answer", "redis → db_postgres:5432", "db_postgres → weaviate:8080", "sandbox → ssrf_proxy:3128"],
        &[],
    );
    // The sandbox is only on the internal ssrf_proxy_network: it reaching nothing else is not probed as a fault.
    let detail = &healthy["network.reachability"].detail;
    assert!(!detail.contains("sandbox → db_postgres") && !detail.contains("sandbox → redis"), "{detail}");

    let network = format!("{}_default", stack.name);
    docker(&["network", "disconnect", &network, &stack.container("weaviate")]);
    let cut = stack.doctor(&["network.reachability"]);
    assert_check(
        &cut,
        "network.reachability",
        "fail",
        &["`weaviate` is cut off", "db_postgres → weaviate:8080: could not translate host name `weaviate`"],
        &[&format!("docker network connect --alias weaviate {network} {}", stack.container("weaviate"))],
    );

    // The hint's command is the fix.
    let hint = &cut["network.reachability"].hint;
    let command = hint.split('`').find(|s| s.starts_with("docker network connect")).unwrap();
    docker(&command.split_whitespace().skip(1).collect::<Vec<_>>());
    assert_check(&stack.doctor(&["network.reachability"]), "network.reachability", "pass", &[], &[]);

    // A stopped dependency is a different fault with a different fix.
    docker(&["stop", "-t", "1", &stack.container("weaviate")]);
    let stopped = stack.doctor(&["network.reachability", "weaviate.ready"]);
    assert_check(
        &stopped,
        "network.reachability",
        "fail",
        &["db_postgres → weaviate:8080: could not translate host name `weaviate`"],
        &["`weaviate` is not running", "`ragctl up` starts it"],
    );
    assert_check(&stopped, "weaviate.ready", "fail", &["exited"], &["ragctl up"]);
}

/// A service that reaches the database through DB_HOST, as the Dify API does.
const CLIENT_PROFILE: &str = r#"name: client
description: an API stand-in that reaches PostgreSQL through DB_HOST
env:
  DB_HOST: { default: db_postgres, description: PostgreSQL host of the client }
services:
  client:
    image: ragctl-test/app-standin:1
    environment:
      DB_HOST: ${DB_HOST:-db_postgres}
      DB_PORT: "5432"
    depends_on:
      db_postgres: healthy
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:5001/health"]
      interval: 1s
      start_period: 1s
"#;

#[test]
fn network_reachability_probes_db_host_as_the_service_resolves_it() {
    if !require_docker() {
        return;
    }
    let stack = Project::with("dbhost", |t| {
        t.append("ragctl.yaml", "profiles: [weaviate, client]\n").file("profiles/client.yaml", CLIENT_PROFILE)
    });
    stack.up();
    let healthy = stack.doctor(&["network.reachability"]);
    assert_check(&healthy, "network.reachability", "pass", &["client → db_postgres:5432"], &[]);

    // The classic: DB_HOST=db from an old compose file; `up` applies it.
    let env_path = stack.test.path().join(".env");
    let mut env = std::fs::read_to_string(&env_path).unwrap();
    env.push_str("DB_HOST=db\n");
    std::fs::write(&env_path, env).unwrap();
    stack.up();
    let misnamed = stack.doctor(&["network.reachability"]);
    assert_check(
        &misnamed,
        "network.reachability",
        "fail",
        &["client → db:5432 (DB_HOST): could not translate host name `db`"],
        &["`db` is not a service of this stack", "set DB_HOST in .env", "the default is `db_postgres`"],
    );
}

/// nginx in front of an API stand-in, the shape of the app profile without its other services.
const EDGE_PROFILE: &str = r#"name: edge
description: nginx proxying /health to an API stand-in
env:
  EXPOSE_NGINX_PORT: { default: "80", description: Host port of nginx }
services:
  api:
    image: ragctl-test/app-standin:1
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:5001/health"]
      interval: 1s
      start_period: 1s
  nginx:
    image: ragctl-test/nginx:1
    volumes:
      - ./edge.conf:/etc/nginx/conf.d/default.conf:ro
    ports:
      - { target: 80, env: EXPOSE_NGINX_PORT, default: 80, description: HTTP }
    depends_on:
      api: healthy
    ready:
      http: { port: 80, path: /health }
"#;

/// A short proxy_connect_timeout, so a vanished API is a 504 within the check's time rather than a hang.
const EDGE_CONF: &str = "server {\n    listen 80;\n    proxy_connect_timeout 1s;\n    location = /health { return 200; }\n    location = /health/api { proxy_pass http://api:5001/health; }\n}\n";

#[test]
fn nginx_config_and_api_health_through_nginx() {
    if !require_docker() {
        return;
    }
    // Continues ragctl.yaml's `ports:` map, then enables the profile.
    let yaml = format!("  EXPOSE_NGINX_PORT: {}\nprofiles: [weaviate, edge]\n", free_port());
    let stack = Project::with("edge", |t| {
        t.append("ragctl.yaml", &yaml).file("profiles/edge.yaml", EDGE_PROFILE).file("edge.conf", EDGE_CONF)
    });
    stack.up();

    let healthy = stack.doctor(&["nginx.config", "api.health", "api.pip_check"]);
    assert_check(&healthy, "nginx.config", "pass", &["configuration is valid"], &[]);
    assert_check(&healthy, "api.health", "pass", &["HTTP 200", " ms"], &[]);
    // The stand-in image has neither pip nor uv: nothing to check, said so.
    assert_check(&healthy, "api.pip_check", "skip", &["neither uv nor pip"], &[]);

    // A broken edit of the mounted config: the running nginx keeps serving, `nginx -t` says what is wrong.
    std::fs::write(stack.test.path().join("edge.conf"), "server {\n    listen 80;\n    bogus_directive on;\n}\n")
        .unwrap();
    let broken = stack.doctor(&["nginx.config"]);
    assert_check(&broken, "nginx.config", "fail", &["unknown directive \"bogus_directive\""], &["nginx -t"]);

    // The API gone: nginx gives up on it with 504.
    docker(&["stop", "-t", "1", &stack.container("api")]);
    let down = stack.doctor(&["api.health"]);
    assert_check(&down, "api.health", "fail", &["HTTP 504"], &["nginx cannot reach the API"]);
}

#[test]
fn tls_certificate_missing_valid_expiring_and_expired() {
    let Some(openssl) = require_tool("openssl", &[]) else { return };
    // The full shape with nginx; the check reads files only, so no Docker is needed.
    let test = Test::new()
        .file("ragctl.yaml", "shape: full\nprofiles: [weaviate, app]\n")
        .file(".env", "NGINX_CERT_DIR=./tls\n");
    let doctor = || doctor(&test, &[], &["nginx.tls_certificate"]);
    let tls = test.path().join("tls");
    let cert = tls.join("fullchain.pem");
    let key = tls.join("privkey.pem");

    let missing = doctor();
    assert_check(
        &missing,
        "nginx.tls_certificate",
        "fail",
        &["tls/fullchain.pem` does not exist"],
        &["NGINX_CERT_DIR"],
    );

    std::fs::create_dir_all(&tls).unwrap();
    let self_signed = |days: &str| {
        let out = Command::new(&openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-subj", "/CN=localhost", "-days", days, "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    };

    self_signed("365");
    let valid = doctor();
    assert_check(&valid, "nginx.tls_certificate", "pass", &["valid until", "private key", "present and readable"], &[]);

    // Within 14 days a warning, within 7 a failure.
    self_signed("10");
    let expiring = doctor();
    assert_check(
        &expiring,
        "nginx.tls_certificate",
        "warn",
        &["expires in ", " days, on "],
        &["renew the certificate"],
    );
    self_signed("1");
    let due = doctor();
    assert_check(
        &due,
        "nginx.tls_certificate",
        "fail",
        &["expires in 2", " hours", "7 days or less"],
        &["renew the certificate"],
    );

    // An expired certificate: `openssl ca` is the portable way to set explicit dates in the past.
    let ca = tls.join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::write(ca.join("index.txt"), "").unwrap();
    std::fs::write(ca.join("serial"), "01\n").unwrap();
    std::fs::write(
        ca.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&openssl).current_dir(&ca).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        .into_iter()
        .chain(["-subj", "/CN=localhost", "-keyout", "../privkey.pem", "-out", "req.csr"])
        .collect::<Vec<_>>());
    run(&[
        "ca",
        "-batch",
        "-notext",
        "-config",
        "ca.cnf",
        "-selfsign",
        "-keyfile",
        "../privkey.pem",
        "-in",
        "req.csr",
        "-out",
        "../fullchain.pem",
        "-startdate",
        "20200101000000Z",
        "-enddate",
        "20200201000000Z",
    ]);
    let expired = doctor();
    assert_check(&expired, "nginx.tls_certificate", "fail", &["expired on 2020-02-01"], &["renew the certificate"]);

    self_signed("365");
    std::fs::remove_file(&key).unwrap();
    let no_key = doctor();
    assert_check(&no_key, "nginx.tls_certificate", "fail", &["privkey.pem` does not exist", "valid until"], &[]);
}
