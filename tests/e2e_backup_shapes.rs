//! End-to-end backup and restore of the stack shapes beyond the default one, against the real Docker engine and
//! the local test images (tests/images): pgvector (the extension, a vector table and its index come back),
//! pg_cluster (dumped from the primary; the replica streams again after the restore), and the full shape with the
//! app (its storage, the plugin daemon's and the sandbox's volumes round-trip).

mod common;

use std::path::PathBuf;

use common::{Project, docker, require_docker};

/// `psql` in the container of `service` as its own superuser, in its own database.
fn psql(project: &Project, service: &str, sql: &str) -> String {
    let script = "psql -U \"$POSTGRES_USER\" -d \"${POSTGRES_DB:-$POSTGRES_USER}\" -XAtqc \"$1\"";
    docker(&["exec", &project.container(service), "sh", "-c", script, "sh", sql]).trim().to_string()
}

/// `backup --format json`, which must succeed: the archive's path.
fn backup(project: &Project) -> PathBuf {
    let run = project.ragctl(&["backup", "--format", "json"]);
    run.assert_status(0);
    let path = PathBuf::from(run.json()["archive"].as_str().unwrap());
    if path.is_absolute() { path } else { project.test.path().join(path) }
}

/// `backup verify --deep`, `down --volumes`, `up` (empty volumes), `down`, `restore`: every row count compared.
fn round_trip(project: &Project, tables: usize) {
    let archive = backup(project);
    let archive = archive.to_str().unwrap();
    let verified = project.ragctl(&["backup", "verify", archive, "--deep", "--format", "json"]);
    verified.assert_status(0);
    assert_eq!(verified.json()["tables_checked"], tables, "{}", verified.stdout);
    project.ragctl(&["down", "--volumes", "-y"]).assert_status(0);
    project.up();
    project.ragctl(&["down"]).assert_status(0);
    let restored = project.ragctl(&["restore", archive, "--format", "json"]);
    restored.assert_status(0);
    assert_eq!(restored.json()["row_mismatches"], serde_json::json!([]), "{}", restored.stdout);
}

#[test]
fn pgvector_a_vector_table_its_index_and_the_extension_survive_backup_and_restore() {
    if !require_docker() {
        return;
    }
    let project = Project::with("bkpgvector", |t| t.env("RAGCTL_PROFILES", "pgvector"));
    project.up();
    psql(
        &project,
        "pgvector",
        "create extension if not exists vector; \
         create table embeddings(id int primary key, embedding vector(3)); \
         insert into embeddings values (1, '[1,2,3]'), (2, '[4,5,6]'), (3, '[1,1,1]'); \
         create index embeddings_hnsw on embeddings using hnsw (embedding vector_l2_ops)",
    );
    round_trip(&project, 1);
    assert_eq!(psql(&project, "pgvector", "select extname from pg_extension where extname = 'vector'"), "vector");
    assert_eq!(
        psql(
            &project,
            "pgvector",
            "select indexname from pg_indexes where tablename = 'embeddings' and indexdef like '%hnsw%'"
        ),
        "embeddings_hnsw"
    );
    let nearest = "set enable_seqscan = off; select id from embeddings order by embedding <-> '[3,4,5]' limit 1";
    assert_eq!(psql(&project, "pgvector", nearest), "2");
}

#[test]
fn pg_cluster_is_dumped_from_the_primary_and_the_replica_streams_again_after_restore() {
    if !require_docker() {
        return;
    }
    let project = Project::with("bkcluster", |t| t.env("RAGCTL_PROFILES", "weaviate,pg_cluster"));
    project.up();
    psql(
        &project,
        "db_postgres",
        "create table docs(id int primary key); insert into docs select generate_series(1, 500)",
    );
    let archive = backup(&project);
    let decoder = zstd::Decoder::new(std::fs::File::open(&archive).unwrap()).unwrap();
    let members: Vec<String> = tar::Archive::new(decoder)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    let members = members.join("\n");
    assert!(members.contains("postgres/db_postgres/dify.dump"), "{members}");
    let replica =
        |m: &str| m.starts_with("postgres/db_postgres_replica") || m.starts_with("volumes/") && m.contains("replica");
    assert!(!members.lines().any(replica), "the replica is neither dumped nor archived: {members}");
    std::fs::remove_file(&archive).unwrap();
    round_trip(&project, 1);
    assert_eq!(psql(&project, "db_postgres", "select count(*) from docs"), "500");
    // The replica cloned the restored primary and streams from it.
    let streaming = common::await_condition("the replica streaming", std::time::Duration::from_secs(60), || {
        let run = project.ragctl(&["db", "check", "--format", "json"]);
        if run.status == 0 { Ok(run.json()) } else { Err(run.stdout) }
    });
    assert_eq!(streaming["postgres"]["replication"]["replicas"][0]["standby"]["state"], "streaming", "{streaming}");
    assert_eq!(psql(&project, "db_postgres_replica", "select count(*) from docs"), "500");
    assert_eq!(psql(&project, "db_postgres_replica", "select pg_is_in_recovery()"), "t");
}

#[test]
fn the_full_shape_with_the_app_round_trips_every_volume() {
    if !require_docker() {
        return;
    }
    let project = Project::with("bkfull", |t| {
        t.init_full_app("rag.test", (common::free_port(), common::free_port()), false, &[])
    });
    project.up();
    psql(&project, "db_postgres", "create table apps(id int); insert into apps select generate_series(1, 50)");
    // (service, directory): one file in each stateful volume.
    let files = [
        ("api", "/app/api/storage"),
        ("plugin_daemon", "/app/storage"),
        ("sandbox", "/dependencies"),
        ("weaviate", "/var/lib/weaviate"),
    ];
    for (service, dir) in files {
        let write = format!("echo {service} > {dir}/kept-{service}");
        docker(&["exec", &project.container(service), "sh", "-c", &write]);
    }
    round_trip(&project, 1);
    for (service, dir) in files {
        let read = docker(&["exec", &project.container(service), "cat", &format!("{dir}/kept-{service}")]);
        assert_eq!(read.trim(), service, "{dir} in `{service}`");
    }
    assert_eq!(psql(&project, "db_postgres", "select count(*) from apps"), "50");
}
