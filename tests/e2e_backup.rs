//! End-to-end tests of `ragctl backup`, `backup verify`, `restore` against the real Docker engine with a real
//! PostgreSQL 15 and Redis 7 (the local test images, see tests/images) and the weaviate stand-in's volume:
//! a round trip through `down --volumes`, a restore into another directory under another project name, a
//! damaged archive, SIGKILL and SIGINT during a backup, and a full disk for the output.
//!
//! Nothing here sleeps for a fixed time except the random moments at which a backup is killed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Project, Run, await_condition, docker, require_docker};

const WEAVIATE_DIR: &str = "/var/lib/weaviate";

fn psql(project: &Project, db: &str, sql: &str) -> String {
    docker(&["exec", &project.container("db_postgres"), "psql", "-U", "postgres", "-d", db, "-tAqc", sql])
        .trim()
        .to_string()
}

/// 10,000 rows in `dify` and in a second database, a file and a symlink in the weaviate volume, a Redis key.
fn seed(project: &Project) {
    psql(project, "dify", "create table docs(id int primary key, body text)");
    psql(project, "dify", "insert into docs select g, md5(g::text) from generate_series(1, 10000) g");
    psql(project, "postgres", "create database dify_plugin");
    psql(project, "dify_plugin", "create table plugins(id int); insert into plugins select generate_series(1, 10000)");
    let weaviate = project.container("weaviate");
    docker(&[
        "exec",
        &weaviate,
        "sh",
        "-c",
        &format!(
            "echo vectors > {WEAVIATE_DIR}/data.bin && ln -s data.bin {WEAVIATE_DIR}/current && chown 1234:1234 {WEAVIATE_DIR}/data.bin"
        ),
    ]);
    docker(&["exec", &project.container("redis"), "redis-cli", "set", "session", "kept"]);
}

fn assert_seeded(project: &Project) {
    assert_eq!(psql(project, "dify", "select count(*) from docs"), "10000");
    assert_eq!(psql(project, "dify_plugin", "select count(*) from plugins"), "10000");
    let weaviate = project.container("weaviate");
    assert_eq!(docker(&["exec", &weaviate, "readlink", &format!("{WEAVIATE_DIR}/current")]).trim(), "data.bin");
    assert_eq!(docker(&["exec", &weaviate, "cat", &format!("{WEAVIATE_DIR}/current")]).trim(), "vectors");
    assert_eq!(
        docker(&["exec", &weaviate, "stat", "-c", "%u:%g", &format!("{WEAVIATE_DIR}/data.bin")]).trim(),
        "1234:1234"
    );
    assert_eq!(docker(&["exec", &project.container("redis"), "redis-cli", "get", "session"]).trim(), "kept");
}

/// `backup --format json`, which must succeed: the archive's path.
fn backup(project: &Project, extra: &[&str]) -> PathBuf {
    let run = project.ragctl(&[&["backup", "--format", "json"], extra].concat());
    run.assert_status(0);
    let path = PathBuf::from(run.json()["archive"].as_str().unwrap());
    if path.is_absolute() { path } else { project.test.path().join(path) }
}

fn paused_containers(project: &Project) -> Vec<String> {
    docker(&["ps", "-a", "--filter", &project.label_filter(), "--filter", "status=paused", "--format", "{{.Names}}"])
        .lines()
        .map(String::from)
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn backup_down_volumes_up_restore_brings_every_row_file_symlink_and_env_back() {
    if !require_docker() {
        return;
    }
    let project = Project::new("bkround");
    project.up();
    seed(&project);
    let archive = backup(&project, &[]);
    assert!(archive.starts_with(project.test.path().join("backups")), "{}", archive.display());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(archive.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let env_before = project.test.read(".env");
    let archive_arg = archive.to_str().unwrap();

    // verify, and --deep in throwaway containers of the same image.
    let verified = project.ragctl(&["backup", "verify", archive_arg, "--deep", "--format", "json"]);
    verified.assert_status(0);
    assert_eq!(verified.json()["ok"], true);
    assert_eq!(verified.json()["tables_checked"], 2, "{}", verified.stdout);
    let listed = project.ragctl(&["backup", "list", "--format", "json"]);
    assert_eq!(listed.json()["archives"].as_array().unwrap().len(), 1, "{}", listed.stdout);

    // Restore refuses while the project runs.
    let refused = project.ragctl(&["restore", archive_arg]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains("is running") && refused.stderr.contains("run `ragctl down`"),
        "{}",
        refused.stderr
    );

    // One flipped byte: verify names the member.
    let damaged = project.test.path().join("damaged.tar.zst");
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&damaged, bytes).unwrap();
    let bad = project.ragctl(&["backup", "verify", damaged.to_str().unwrap()]);
    bad.assert_status(1);
    assert!(bad.stderr.contains("is damaged: member `"), "{}", bad.stderr);

    // The data is gone; `up` makes empty volumes, one gets a stray file.
    project.ragctl(&["down", "--volumes", "-y"]).assert_status(0);
    project.up();
    assert_eq!(psql(&project, "postgres", "select count(*) from pg_database where datname = 'dify_plugin'"), "0");
    docker(&["exec", &project.container("weaviate"), "touch", &format!("{WEAVIATE_DIR}/stray")]);
    project.ragctl(&["down"]).assert_status(0);

    let restored = project.ragctl(&["restore", archive_arg, "--format", "json"]);
    restored.assert_status(0);
    let report = restored.json();
    assert_eq!(report["row_mismatches"].as_array().unwrap().len(), 0, "{}", restored.stdout);
    assert_eq!(report["tables_checked"], 2);
    assert_seeded(&project);
    let listing = docker(&["exec", &project.container("weaviate"), "ls", "-A", WEAVIATE_DIR]);
    assert!(!listing.contains("stray"), "a stray file survived the restore: {listing}");
    assert_eq!(project.test.read(".env"), env_before);

    // Into a fresh directory under another project name: its own ragctl.yaml differs, so --yes is needed.
    project.ragctl(&["down"]).assert_status(0);
    let other = Project::new("bkother");
    let asked = other.ragctl(&["restore", archive_arg]);
    asked.assert_status(2);
    assert!(asked.stderr.contains("ragctl.yaml") && asked.stderr.contains("--yes"), "{}", asked.stderr);
    other.ragctl(&["restore", archive_arg, "--yes"]).assert_status(0);
    assert_seeded(&other);
    assert_eq!(other.test.read(".env"), env_before);
}

/// A small pseudo-random sequence (no dependency): the moments at which a backup is killed.
fn moments(n: usize, max_ms: u64) -> Vec<u64> {
    let mut x = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % max_ms
        })
        .collect()
}

#[test]
fn a_killed_backup_leaves_no_bad_archive_and_the_next_command_resumes_what_it_paused() {
    if !require_docker() {
        return;
    }
    // Its own state directory: the next command of ANY ragctl process sharing it resumes what a killed backup
    // paused, and the other tests' commands must not do it before this test looks.
    let project = Project::with("bkkill", |t| {
        let state = t.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let state = state.to_str().unwrap().to_string();
        t.env("TMPDIR", &state)
    });
    project.up();
    seed(&project);
    // 40 MiB in the volume: the service stays paused long enough to be caught paused.
    docker(&[
        "exec",
        &project.container("weaviate"),
        "sh",
        "-c",
        &format!("head -c 41943040 /dev/urandom > {WEAVIATE_DIR}/big"),
    ]);
    let dir = project.test.path().join("backups");

    // SIGKILL at random moments (19 here and one while paused below: 20): a file at a final name always verifies;
    // the next command unpauses.
    let started = Instant::now();
    let delays = moments(19, 3500);
    eprintln!("killing backups after {delays:?} ms");
    for delay in delays {
        let mut child = project.ragctl_command(&["backup"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        for name in files_in(&dir).iter().filter(|n| n.ends_with(".tar.zst")) {
            let path = dir.join(name);
            project.ragctl(&["backup", "verify", path.to_str().unwrap()]).assert_status(0);
            std::fs::remove_file(path).unwrap();
        }
        project.ragctl(&["ps"]).assert_status(0);
        assert_eq!(paused_containers(&project), Vec::<String>::new(), "paused after `ps` (killed after {delay} ms)");
        let helpers = docker(&["ps", "-aq", "--filter", &format!("label=org.ragctl.backup-helper={}", project.name)]);
        assert_eq!(helpers.trim(), "", "helper containers left after `ps` (killed after {delay} ms)");
    }
    eprintln!("kill rounds took {:?}", started.elapsed());

    // SIGKILL while the service is paused (for certain, not by chance): it stays paused until the next command.
    let mut child = project.ragctl_command(&["backup"]).spawn().unwrap();
    // Weaviate's, not a smaller volume's service (the sandbox's) paused for a moment before it.
    let weaviate_paused = || {
        let paused = paused_containers(&project);
        if paused == [project.container("weaviate")] { Ok(()) } else { Err(format!("paused: {paused:?}")) }
    };
    await_condition("weaviate paused by the backup", Duration::from_secs(60), weaviate_paused);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(paused_containers(&project), vec![project.container("weaviate")]);
    let next = project.ragctl(&["ps"]);
    next.assert_status(0);
    assert!(next.stderr.contains("resumed containers an interrupted backup had paused"), "{}", next.stderr);
    assert_eq!(paused_containers(&project), Vec::<String>::new());

    // SIGINT while the service is paused: resumed at once, exit 130, the partial file removed.
    let mut child = project.ragctl_command(&["backup"]).spawn().unwrap();
    // Weaviate's, not a smaller volume's service (the sandbox's) paused for a moment before it.
    let weaviate_paused = || {
        let paused = paused_containers(&project);
        if paused == [project.container("weaviate")] { Ok(()) } else { Err(format!("paused: {paused:?}")) }
    };
    await_condition("weaviate paused by the backup", Duration::from_secs(60), weaviate_paused);
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(paused_containers(&project), Vec::<String>::new(), "SIGINT left a container paused");
    // Its own partial file removed, and the temporary files of the killed backups before it too.
    assert_eq!(files_in(&dir), Vec::<String>::new(), "left behind in {}", dir.display());
}

#[test]
fn an_encrypted_backup_needs_its_identity_and_a_full_disk_is_a_clear_error_leaving_nothing() {
    if !require_docker() {
        return;
    }
    let project = Project::new("bkfull");
    project.up();
    seed(&project);
    let mount = tempfile::Builder::new().prefix("ragctl-full").tempdir().unwrap();
    let target = mount.path().to_str().unwrap().to_string();
    // Smaller than the archive (about 200 KiB, compressed): the backup runs out of space.
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs", &target]).status();
    if !mounted.is_ok_and(|s| s.success()) {
        assert!(!common::must_not_skip(), "mounting a tmpfs failed (the e2e tests run as root)");
        eprintln!("skipping: cannot mount a tmpfs (not root)");
        return;
    }
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(target.clone());

    // Encrypted to an age recipient: unreadable without the identity, verified with it.
    let key = age::x25519::Identity::generate();
    let identity = project.test.path().join("key.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&identity, format!("# test key\n{}\n", key.to_string().expose_secret())).unwrap();
    }
    let encrypted = backup(&project, &["--encrypt-to", &key.to_public().to_string()]);
    assert!(encrypted.to_str().unwrap().ends_with(".tar.zst.age"), "{}", encrypted.display());
    let locked = project.ragctl(&["backup", "verify", encrypted.to_str().unwrap()]);
    locked.assert_status(2);
    assert!(locked.stderr.contains("is encrypted") && locked.stderr.contains("--identity"), "{}", locked.stderr);
    project
        .ragctl(&["backup", "verify", encrypted.to_str().unwrap(), "--identity", identity.to_str().unwrap()])
        .assert_status(0);

    let run: Run = project.ragctl(&["backup", "--output", &target]);
    run.assert_status(1);
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    assert!(run.stderr.contains(&target), "the error names where: {}", run.stderr);
    assert_eq!(files_in(mount.path()), Vec::<String>::new(), "something partial was left");
    assert_eq!(paused_containers(&project), Vec::<String>::new());
}

#[test]
fn up_refuses_missing_or_emptied_data_another_major_and_an_unfinished_restore() {
    if !require_docker() {
        return;
    }
    let project = Project::new("bkguard");
    project.up();
    project.ragctl(&["down"]).assert_status(0);
    let weaviate_volume = format!("{}_weaviate_data", project.name);
    docker(&["volume", "rm", &weaviate_volume]);

    let refused = project.ragctl(&["up"]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains(&format!("`{weaviate_volume}` held this project's data but is missing")),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("ragctl restore") && refused.stderr.contains("--allow-empty-data"),
        "{}",
        refused.stderr
    );
    assert!(!project.volumes().contains(&weaviate_volume), "nothing was created");
    // The same directory under another project name: every volume is missing.
    let other = format!("{}-renamed", project.name);
    let renamed = project.test.run(["-p", &other, "up"]);
    renamed.assert_status(1);
    assert!(renamed.stderr.contains(&format!("created as project `{}`", project.name)), "{}", renamed.stderr);
    project.ragctl(&["up", "--allow-empty-data"]).assert_status(0);
    project.ragctl(&["down"]).assert_status(0);

    // A data directory of PostgreSQL 14 under the 15 image: refused before the container fails.
    let db_volume = format!("{}_db_data", project.name);
    let set_version = |v: &str| {
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{db_volume}:/d"),
            "ragctl-test/base:bookworm",
            "sh",
            "-c",
            &format!("echo {v} > /d/pgdata/PG_VERSION"),
        ]);
    };
    set_version("14");
    let refused = project.ragctl(&["up"]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains(&format!("volume `{db_volume}` was initialised by PostgreSQL 14")),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("ragctl backup") && refused.stderr.contains("ragctl restore"),
        "{}",
        refused.stderr
    );
    assert!(project.container_ids().is_empty(), "nothing was created: {:?}", project.container_ids());
    set_version("15");
    project.up();

    // The data directory emptied behind ragctl's back: refused, --allow-empty-data initialises it anew.
    project.ragctl(&["down"]).assert_status(0);
    docker(&["run", "--rm", "-v", &format!("{db_volume}:/d"), "ragctl-test/base:bookworm", "rm", "-rf", "/d/pgdata"]);
    let refused = project.ragctl(&["up"]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains(&format!("`{db_volume}` held this project's data but its PostgreSQL data directory")),
        "{}",
        refused.stderr
    );
    project.ragctl(&["up", "--allow-empty-data"]).assert_status(0);

    // A restore interrupted once it refills the volumes: `up` refuses the half-restored data; a rerun finishes.
    let archive = backup(&project, &[]);
    project.ragctl(&["down"]).assert_status(0);
    let mut child = project.ragctl_command(&["restore", archive.to_str().unwrap()]).spawn().unwrap();
    let helpers = format!("label=org.ragctl.backup-helper={}", project.name);
    await_condition("the restore's throwaway server", Duration::from_secs(60), || {
        let ids = docker(&["ps", "-aq", "--filter", &helpers]);
        if ids.trim().is_empty() { Err("none yet".to_string()) } else { Ok(()) }
    });
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(docker(&["ps", "-aq", "--filter", &helpers]).trim(), "", "helpers removed on SIGINT");
    let refused = project.ragctl(&["up"]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains("did not finish") && refused.stderr.contains("ragctl restore"),
        "{}",
        refused.stderr
    );
    project.ragctl(&["restore", archive.to_str().unwrap()]).assert_status(0);
}

#[test]
fn row_counts_are_the_dumps_own_while_a_writer_inserts_throughout_the_backup() {
    if !require_docker() {
        return;
    }
    let project = Project::new("bkwriter");
    project.up();
    seed(&project);
    psql(&project, "dify", "create table live(id bigserial primary key, at timestamptz default now())");
    // One session committing a row every millisecond, bounded (at most 120,000 rows), stopped after the backup.
    let db = project.container("db_postgres");
    docker(&[
        "exec",
        "-d",
        "-e",
        "PGAPPNAME=bkwriter",
        &db,
        "psql",
        "-U",
        "postgres",
        "-d",
        "dify",
        "-c",
        "do $$ begin for i in 1..120000 loop insert into live default values; commit; perform pg_sleep(0.001); end loop; end $$",
    ]);
    let count = || psql(&project, "dify", "select count(*) from live").parse::<u64>().unwrap();
    await_condition("the writer inserting", Duration::from_secs(30), || {
        if count() > 100 { Ok(()) } else { Err("fewer than 100 rows".to_string()) }
    });
    let before = count();
    let archive = backup(&project, &[]);
    let after = count();
    psql(
        &project,
        "postgres",
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'bkwriter'",
    );
    assert!(after > before, "the writer did not write during the backup ({before} → {after})");
    let archive_arg = archive.to_str().unwrap();

    let verified = project.ragctl(&["backup", "verify", archive_arg, "--deep", "--format", "json"]);
    verified.assert_status(0);
    assert_eq!(verified.json()["row_mismatches"], serde_json::json!([]), "{}", verified.stdout);
    assert_eq!(verified.json()["tables_checked"], 3, "{}", verified.stdout);

    project.ragctl(&["down"]).assert_status(0);
    let restored = project.ragctl(&["restore", archive_arg, "--format", "json"]);
    restored.assert_status(0);
    assert_eq!(restored.json()["row_mismatches"], serde_json::json!([]), "{}", restored.stdout);
    let kept = count();
    assert!(before <= kept && kept <= after, "restored {kept} rows, written {before}..{after} during the backup");
}

#[test]
fn up_refuses_a_stateful_volume_emptied_behind_its_back() {
    if !require_docker() {
        return;
    }
    let project = Project::new("bkempty");
    project.up();
    docker(&["exec", &project.container("weaviate"), "sh", "-c", &format!("echo vectors > {WEAVIATE_DIR}/data.bin")]);
    project.ragctl(&["down"]).assert_status(0);
    // This `up` finds the volume holding files and records it.
    project.up();
    let record: serde_json::Value = serde_json::from_str(&project.test.read(".ragctl-data.json")).unwrap();
    assert!(record["filled"].as_array().unwrap().contains(&"weaviate_data".into()), "{record}");
    project.ragctl(&["down"]).assert_status(0);

    let volume = format!("{}_weaviate_data", project.name);
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/d"),
        "ragctl-test/base:bookworm",
        "find",
        "/d",
        "-mindepth",
        "1",
        "-delete",
    ]);
    let refused = project.ragctl(&["up"]);
    refused.assert_status(1);
    assert!(
        refused
            .stderr
            .contains(&format!("`{volume}` (`weaviate` at {WEAVIATE_DIR}) held this project's data but is empty")),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--allow-empty-data"), "{}", refused.stderr);
    assert!(project.container_ids().is_empty(), "nothing was started: {:?}", project.container_ids());
    project.ragctl(&["up", "--allow-empty-data"]).assert_status(0);
    project.ragctl(&["down"]).assert_status(0);
    // Accepted empty once: no longer recorded as holding files.
    project.up();
}
