use std::collections::BTreeSet;
use std::path::Path;

use super::spec::{image_base_name, references};
use super::*;
use crate::docker::{ObservedSwarmNetwork, ObservedSwarmService, ObservedTask};
use crate::engine::spec::LABEL_PROJECT;
use crate::stack::Stack;

fn stack(profiles: &[&str], file: &str) -> Stack {
    crate::stack::test_support::embedded_stack(profiles, file)
}

fn vars(name: &str) -> Option<String> {
    crate::stack::test_support::fake_vars(name)
}

const MESH: SwarmFacts = SwarmFacts { routing: Routing::Mesh, data_nodes: false };

fn build(s: &Stack, vars: &dyn Fn(&str) -> Option<String>, facts: SwarmFacts) -> SwarmDesired {
    let d = crate::engine::spec::desired(s, vars, Path::new("/p/demo"), None).unwrap();
    swarm_desired(s, &d, vars, facts)
}

fn service<'a>(d: &'a SwarmDesired, name: &str) -> &'a SwarmServiceSpec {
    d.services.iter().find(|s| s.service == name).unwrap()
}

#[test]
fn the_postgres_password_becomes_a_file_secret_and_redis_keeps_its_environment() {
    let d = build(&stack(&["weaviate"], "project: demo\n"), &vars, MESH);
    let db = service(&d, "db_postgres");
    assert!(db.env.contains(&"POSTGRES_PASSWORD_FILE=/run/secrets/demo_db_password".to_string()), "{:?}", db.env);
    assert!(!db.env.iter().any(|e| e.contains("secret-DB_PASSWORD")), "no value in the environment");
    assert_eq!(d.secrets.len(), 1);
    let secret = &d.secrets[0];
    assert!(secret.name.starts_with("demo_db_password_") && secret.name.len() == "demo_db_password_".len() + 12);
    assert_eq!(secret.value, "secret-DB_PASSWORD");
    assert_eq!(db.secrets, [SecretMount { secret: secret.name.clone(), file: "demo_db_password".into() }]);
    // redis reads no `_FILE`: its password stays where compose puts it.
    assert!(service(&d, "redis").env.contains(&"REDISCLI_AUTH=secret-REDIS_PASSWORD".to_string()));
}

#[test]
fn a_rotated_secret_gets_a_new_name_and_changes_only_its_consumers_hash() {
    let s = stack(&["weaviate"], "project: demo\n");
    let a = build(&s, &vars, MESH);
    let rotated = |n: &str| if n == "DB_PASSWORD" { Some("rotated".into()) } else { vars(n) };
    let b = build(&s, &rotated, MESH);
    assert_ne!(a.secrets[0].name, b.secrets[0].name);
    assert_ne!(service(&a, "db_postgres").config_hash(), service(&b, "db_postgres").config_hash());
    assert_eq!(service(&a, "redis").config_hash(), service(&b, "redis").config_hash());
    assert_eq!(service(&a, "redis").config_hash(), service(&build(&s, &vars, MESH), "redis").config_hash());
}

#[test]
fn stateful_services_are_pinned_and_stop_first_stateless_start_first() {
    let s = stack(&["app"], "project: demo\nshape: full\n");
    let d = build(&s, &vars, MESH);
    let db = service(&d, "db_postgres");
    assert!(db.stateful);
    assert_eq!(db.constraints, ["node.role==manager"]);
    assert_eq!(db.update_order, UpdateOrder::StopFirst);
    assert_eq!(db.mounts[0].kind, MountKind::Volume);
    assert_eq!(db.mounts[0].source, "demo_db_data");
    assert_eq!(db.mounts[0].labels[LABEL_STACK_NAMESPACE], "demo");
    let api = service(&d, "api");
    assert!(!api.stateful && api.constraints.is_empty());
    assert_eq!(api.update_order, UpdateOrder::StartFirst);
    assert_eq!(api.replicas, 3);
    let labelled = build(&s, &vars, SwarmFacts { routing: Routing::Mesh, data_nodes: true });
    assert_eq!(service(&labelled, "db_postgres").constraints, ["node.labels.ragctl.data==true"]);
}

#[test]
fn only_nginx_publishes_in_the_full_shape_and_the_data_network_is_internal() {
    let d = build(&stack(&["app"], "project: demo\nshape: full\n"), &vars, MESH);
    let publishing: Vec<&str> = d.services.iter().filter(|s| !s.ports.is_empty()).map(|s| s.service.as_str()).collect();
    assert_eq!(publishing, ["nginx"]);
    let data = d.networks.iter().find(|n| n.name == "demo_data").unwrap();
    assert!(data.internal);
    assert_eq!(data.labels[LABEL_STACK_NAMESPACE], "demo");
    assert_eq!(data.labels[LABEL_PROJECT], "demo");
    let internal: Vec<&str> = d.networks.iter().filter(|n| n.internal).map(|n| n.name.as_str()).collect();
    assert_eq!(internal, ["demo_data", "demo_ssrf_proxy_network"]);
    let sandbox = service(&d, "sandbox");
    assert_eq!(sandbox.networks, ["demo_ssrf_proxy_network"], "the sandbox is only on the internal network");
    assert!(service(&d, "ssrf_proxy").networks.contains(&"demo_backend".to_string()));
}

#[test]
fn middleware_ports_are_published_and_the_ignored_bind_address_is_said() {
    let d = build(&stack(&["weaviate"], "project: demo\n"), &vars, MESH);
    let db = service(&d, "db_postgres");
    assert_eq!((db.ports[0].target, db.ports[0].published), (5432, 6543));
    assert!(d.notes.iter().any(|n| n.contains("6543") && n.contains("127.0.0.1")), "{:?}", d.notes);
}

fn observed_service(spec: &SwarmServiceSpec, hash: &str) -> ObservedSwarmService {
    ObservedSwarmService {
        id: format!("id-{}", spec.name),
        name: spec.name.clone(),
        service: spec.service.clone(),
        config_hash: hash.into(),
        version: 7,
        replicas: spec.replicas,
        running: spec.replicas,
        image: spec.image.clone(),
        ports: vec![],
        update_state: None,
        update_message: None,
    }
}

#[test]
fn the_plan_creates_what_is_missing_updates_what_differs_and_keeps_the_rest() {
    let s = stack(&["weaviate"], "project: demo\n");
    let d = build(&s, &vars, MESH);
    let fresh = plan_swarm(&d, &SwarmObserved::default(), false).unwrap();
    assert_eq!(fresh.create_networks.len(), 2, "default and the internal ssrf_proxy_network");
    assert_eq!(fresh.create_secrets.len(), 1);
    assert!(fresh.services.iter().all(|(_, a)| *a == ServiceAction::Create));

    let db = service(&d, "db_postgres");
    let observed = SwarmObserved {
        networks: ["demo_default", "demo_ssrf_proxy_network"]
            .map(|name| ObservedSwarmNetwork { name: name.into(), driver: "overlay".into() })
            .into(),
        secrets: vec![d.secrets[0].name.clone(), "demo_db_password_000000000000".into()],
        services: d
            .services
            .iter()
            .map(|s| observed_service(s, if s.service == "redis" { "old" } else { s.config_hash() }))
            .chain([ObservedSwarmService { name: "demo_gone".into(), ..observed_service(db, "x") }])
            .collect(),
    };
    let plan = plan_swarm(&d, &observed, false).unwrap();
    let lines = plan.describe();
    assert_eq!(
        lines,
        [
            "keep service demo_db_postgres",
            "update service demo_redis (configuration changed; rolling, stop-first)",
            "keep service demo_sandbox",
            "keep service demo_ssrf_proxy",
            "keep service demo_plugin_daemon",
            "keep service demo_weaviate",
            "remove secret demo_db_password_000000000000 (no longer referenced)",
        ]
    );
    assert_eq!(plan.orphans.len(), 1);
    assert!(matches!(plan.services[1].1, ServiceAction::Update { version: 7, .. }));

    let bridge = SwarmObserved {
        networks: vec![ObservedSwarmNetwork { name: "demo_default".into(), driver: "bridge".into() }],
        ..Default::default()
    };
    let err = plan_swarm(&d, &bridge, false).err().unwrap();
    assert!(err.to_string().contains("runs as containers on this engine"), "{err}");
}

fn task(id: &str, state: &str, desired: &str, current: bool) -> ObservedTask {
    ObservedTask {
        id: id.into(),
        name: format!("demo_redis.{id}"),
        state: state.into(),
        desired_state: desired.into(),
        message: String::new(),
        err: String::new(),
        exit_code: None,
        node_id: "n1".into(),
        updated_at: id.into(),
        current,
    }
}

#[test]
fn convergence_needs_every_current_task_running_and_fails_on_a_new_failure_only() {
    let d = build(&stack(&["weaviate"], "project: demo\n"), &vars, MESH);
    let redis = service(&d, "redis");
    let none = BTreeSet::new();
    assert_eq!(assess(redis, None, None, &[task("a", "running", "running", true)], &none), Convergence::Converged);
    // An update the orchestrator has not acted on yet: the running task is of the old spec.
    assert!(matches!(
        assess(redis, None, None, &[task("a", "running", "running", false)], &none),
        Convergence::Waiting(w) if w.starts_with("0/1 tasks running and healthy")
    ));
    let mut failed = task("b", "failed", "shutdown", true);
    failed.exit_code = Some(3);
    failed.err = "task: non-zero exit (3)".into();
    let tasks = [failed.clone(), task("c", "starting", "running", true)];
    assert_eq!(
        assess(redis, None, None, &tasks, &none),
        Convergence::Failed {
            message: "task `demo_redis.b` exited with code 3: task: non-zero exit (3)".into(),
            task: Some("b".into())
        }
    );
    let known = BTreeSet::from(["b".to_string()]);
    assert!(matches!(assess(redis, None, None, &tasks, &known), Convergence::Waiting(_)));
    assert!(matches!(
        assess(redis, Some("rollback_completed"), Some("update rolled back"), &[], &none),
        Convergence::Failed { message, .. } if message == "update rollback completed: update rolled back"
    ));
    let mut pending = task("d", "pending", "running", true);
    pending.err = "no suitable node (scheduling constraints not satisfied on 1 node)".into();
    assert!(matches!(
        assess(redis, None, None, &[pending], &none),
        Convergence::Waiting(w) if w.contains("1 pending") && w.contains("no suitable node")
    ));
}

#[test]
fn references_match_whole_variable_names() {
    assert!(references("${DB_PASSWORD:?x}", "DB_PASSWORD"));
    assert!(references("a $DB_PASSWORD b", "DB_PASSWORD"));
    assert!(!references("${DB_PASSWORD_OLD}", "DB_PASSWORD"));
    assert!(!references("$DB_PASSWORDS", "DB_PASSWORD"));
    assert_eq!(image_base_name("reg:5000/library/postgres:15-alpine"), "postgres");
    assert_eq!(image_base_name("ragctl-test/postgres:15"), "postgres");
    assert_eq!(image_base_name("pgvector/pgvector:pg16"), "pgvector");
}
