//! End-to-end test of `ragctl adopt` against the real Docker engine: a directory laid out like Dify's `docker/`
//! with real PostgreSQL 15 data (written by the test image through a bind mount, in two databases), a real Redis
//! dump, and a weaviate directory with a file and a symlink; refused while a container of that deployment runs
//! (by its compose label, and by a bind mount alone) and for another PostgreSQL major; adopted; rows, files, owners, the symlink and the `.env`
//! values checked in the project; the directory byte-identical afterwards; a second adopt refused because the
//! project's volumes hold data.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{LABEL_PROJECT, Project, await_condition, docker, require_docker};

const PGDATA: &str = "/var/lib/postgresql/data/pgdata";
const WEAVIATE_DIR: &str = "/var/lib/weaviate";

/// Containers the test starts outside any project; removed when dropped.
struct Started(Vec<String>);

impl Started {
    fn run(&mut self, name: &str, args: &[&str]) {
        docker(&[&["run", "-d", "--name", name][..], args].concat());
        self.0.push(name.to_string());
    }

    fn remove(&mut self, name: &str) {
        docker(&["rm", "-f", name]);
        self.0.retain(|n| n != name);
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

/// Every entry under `dir`: its kind, mode, owner, size, mtime and contents (or link target).
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    use sha2::Digest;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            "dir".to_string()
        } else {
            format!("file {:x}", sha2::Sha256::digest(std::fs::read(&path).unwrap()))
        };
        let line =
            format!("{what} {:o} {}:{} {} {}", meta.mode(), meta.uid(), meta.gid(), meta.len(), meta.mtime_nsec());
        out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), format!("{line} {}", meta.mtime()));
    }
    out
}

fn exec_ok(container: &str, argv: &[&str]) -> bool {
    Command::new("docker").args([&["exec", container][..], argv].concat()).output().is_ok_and(|o| o.status.success())
}

/// A Dify-like `docker/` directory: `.env`, `docker-compose.yaml`, PostgreSQL data with 10,000 rows in `dify`
/// and 5,000 in `dify_plugin` (written by a real server, then stopped), a Redis dump, weaviate files.
fn deployment(started: &mut Started, compose: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::Builder::new().prefix("ragctl-adopt").tempdir().unwrap();
    let dir = root.path().join(compose);
    for d in ["volumes/db/data", "volumes/redis/data", "volumes/weaviate", "volumes/app/storage"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(
        dir.join(".env"),
        "DB_USERNAME=postgres\nDB_PASSWORD=adopted-db-pw-7f3a\nDB_DATABASE=dify\nREDIS_PASSWORD=adopted-redis-pw-91c2\n\
         SECRET_KEY=sk-adopted-5e8d1c\nPGDATA=/var/lib/postgresql/data/pgdata\nCOMPOSE_PROFILES=weaviate\n",
    )
    .unwrap();
    std::fs::write(dir.join("docker-compose.yaml"), "services: {}\n").unwrap();
    let label = format!("{LABEL_PROJECT}={compose}");

    let db = format!("{compose}-db_postgres-1");
    let bind = format!("{}:/var/lib/postgresql/data", dir.join("volumes/db/data").display());
    started.run(
        &db,
        &[
            "--label",
            &label,
            "-e",
            "POSTGRES_PASSWORD=adopted-db-pw-7f3a",
            "-e",
            "POSTGRES_DB=dify",
            "-e",
            &format!("PGDATA={PGDATA}"),
            "-v",
            &bind,
            "ragctl-test/postgres:15",
        ],
    );
    await_condition("the deployment's PostgreSQL", Duration::from_secs(120), || {
        if exec_ok(&db, &["psql", "-U", "postgres", "-h", "127.0.0.1", "-d", "dify", "-tAc", "select 1"]) {
            Ok(())
        } else {
            Err("not ready".into())
        }
    });
    let psql =
        |database: &str, sql: &str| docker(&["exec", &db, "psql", "-U", "postgres", "-d", database, "-tAqc", sql]);
    psql("dify", "create table docs(id int primary key, body text)");
    psql("dify", "insert into docs select g, md5(g::text) from generate_series(1, 10000) g");
    psql("postgres", "create database dify_plugin");
    psql("dify_plugin", "create table plugins(id int); insert into plugins select generate_series(1, 5000)");

    let redis = format!("{compose}-redis-1");
    let bind = format!("{}:/data", dir.join("volumes/redis/data").display());
    started.run(&redis, &["--label", &label, "-v", &bind, "ragctl-test/redis:7", "redis-server"]);
    await_condition("the deployment's Redis", Duration::from_secs(60), || {
        if exec_ok(&redis, &["redis-cli", "ping"]) { Ok(()) } else { Err("not ready".into()) }
    });
    docker(&["exec", &redis, "redis-cli", "set", "session", "adopted"]);
    docker(&["exec", &redis, "redis-cli", "save"]);
    started.remove(&redis);

    let weaviate = dir.join("volumes/weaviate");
    std::fs::write(weaviate.join("data.bin"), "vectors").unwrap();
    std::os::unix::fs::symlink("data.bin", weaviate.join("current")).unwrap();
    std::os::unix::fs::chown(weaviate.join("data.bin"), Some(1234), Some(1234)).unwrap();
    (root, dir)
}

#[test]
fn adopt_takes_over_a_dify_directory_with_its_data_and_leaves_it_untouched() {
    if !require_docker() {
        return;
    }
    let mut started = Started(Vec::new());
    let compose = format!("dify-adopt-{}", std::process::id());
    let (_root, dir) = deployment(&mut started, &compose);
    let dir_arg = dir.to_str().unwrap();
    let project = Project::new("adopt");

    // Refused while a container of the deployment runs: found by its compose label…
    let refused = project.ragctl(&["adopt", dir_arg]);
    refused.assert_status(1);
    assert!(refused.stderr.contains("is running") && refused.stderr.contains("db_postgres-1"), "{}", refused.stderr);
    assert!(!project.test.exists(".env"), "a refused adopt wrote .env");
    let db = format!("{compose}-db_postgres-1");
    docker(&["stop", "-t", "30", &db]);
    started.remove(&db);

    // …or by a bind mount of the directory alone.
    let holder = format!("{compose}-holder");
    let bind = format!("{}:/mnt:ro", dir.join("volumes/app/storage").display());
    started.run(&holder, &["-v", &bind, "ragctl-test/base:bookworm", "sleep", "300"]);
    let refused = project.ragctl(&["adopt", dir_arg]);
    refused.assert_status(1);
    assert!(refused.stderr.contains(&holder), "{}", refused.stderr);
    started.remove(&holder);

    // Another PostgreSQL major than the project's image: refused with the fix, before anything is written.
    let other = tempfile::Builder::new().prefix("ragctl-adopt-pg14").tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("volumes/db/data/pgdata")).unwrap();
    std::fs::write(other.path().join("volumes/db/data/pgdata/PG_VERSION"), "14\n").unwrap();
    std::fs::copy(dir.join(".env"), other.path().join(".env")).unwrap();
    let refused = project.ragctl(&["adopt", other.path().to_str().unwrap()]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains("holds PostgreSQL 14 data") && refused.stderr.contains("(PostgreSQL 15)"),
        "{}",
        refused.stderr
    );
    assert!(!project.test.exists(".env"), "a refused adopt wrote .env");
    assert!(project.volumes().is_empty(), "a refused adopt created volumes: {:?}", project.volumes());

    let before = tree(&dir);
    let adopted = project.ragctl(&["adopt", dir_arg, "--yes", "--format", "json"]);
    adopted.assert_status(0);
    let report = adopted.json();
    assert_eq!(report["row_mismatches"].as_array().unwrap().len(), 0, "{}", adopted.stdout);
    assert_eq!(report["compose_project"], compose.as_str());
    let tables = report["tables_checked"].as_u64().unwrap();
    assert!(tables >= 2, "{}", adopted.stdout);
    let copied: Vec<&str> =
        report["copied"].as_array().unwrap().iter().map(|c| c["source"].as_str().unwrap()).collect();
    for source in ["volumes/db/data", "volumes/redis/data", "volumes/weaviate"] {
        assert!(copied.contains(&source), "{source} not copied: {}", adopted.stdout);
    }

    // The data, in the project's own containers.
    let psql = |database: &str, sql: &str| {
        docker(&["exec", &project.container("db_postgres"), "psql", "-U", "postgres", "-d", database, "-tAqc", sql])
            .trim()
            .to_string()
    };
    assert_eq!(psql("dify", "select count(*) from docs"), "10000");
    assert_eq!(psql("dify", "select body from docs where id = 42"), "a1d0c6e83f027327d8461063f4ac58a6");
    assert_eq!(psql("dify_plugin", "select count(*) from plugins"), "5000");
    assert_eq!(docker(&["exec", &project.container("redis"), "redis-cli", "get", "session"]).trim(), "adopted");
    let weaviate = project.container("weaviate");
    assert_eq!(docker(&["exec", &weaviate, "readlink", &format!("{WEAVIATE_DIR}/current")]).trim(), "data.bin");
    assert_eq!(docker(&["exec", &weaviate, "cat", &format!("{WEAVIATE_DIR}/current")]).trim(), "vectors");
    assert_eq!(
        docker(&["exec", &weaviate, "stat", "-c", "%u:%g", &format!("{WEAVIATE_DIR}/data.bin")]).trim(),
        "1234:1234"
    );
    // The deployment's values, which its data needs.
    assert_eq!(project.test.dotenv_value("DB_PASSWORD"), "adopted-db-pw-7f3a");
    assert_eq!(project.test.dotenv_value("SECRET_KEY"), "sk-adopted-5e8d1c");
    assert_eq!(project.test.dotenv_value("REDIS_PASSWORD"), "adopted-redis-pw-91c2");

    // The deployment's directory was only read.
    assert_eq!(tree(&dir), before, "adopt changed the deployment's directory");

    // Once the project's volumes hold data, adopting again is refused.
    project.ragctl(&["down"]).assert_status(0);
    let again = project.ragctl(&["adopt", dir_arg, "--yes"]);
    again.assert_status(1);
    assert!(again.stderr.contains("already holds data") && again.stderr.contains("--replace-data"), "{}", again.stderr);
    assert_eq!(tree(&dir), before);
}
