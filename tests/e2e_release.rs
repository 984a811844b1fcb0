//! End-to-end tests of the data's release record against the real Docker engine (the local `ragctl-test/*` images):
//! `up` records the release with the data, an older release is refused before anything starts, `--allow-downgrade`
//! proceeds, and the record survives a new project directory and a write killed halfway.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Project, Test, assert_check, docker, require_docker, stack_dir};

const NEW: &str = "1.13.3";
const OLD: &str = "1.10.1-fix.1";
/// Where the profile mounts db_postgres's volume; the record sits at its root, beside `pgdata/`.
const VOLUME_ROOT: &str = "/var/lib/postgresql/data";

/// Select `release` in the project's ragctl.yaml, as an operator would.
fn set_release(test: &Test, release: &str) {
    let text = test.read("ragctl.yaml");
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("release:")).collect();
    let line = format!("release: {release}");
    lines.push(&line);
    std::fs::write(test.path().join("ragctl.yaml"), lines.join("\n") + "\n").unwrap();
}

/// The copies of the record in the volume, by slot: (release, generation), `None` for a copy that is not valid.
fn copies(project: &Project) -> BTreeMap<u32, Option<(String, u64)>> {
    let mut out = BTreeMap::new();
    for slot in [0, 1] {
        let path = format!("{VOLUME_ROOT}/.ragctl-release.{slot}.json");
        let read = std::process::Command::new("docker")
            .args(["exec", &project.container("db_postgres"), "cat", &path])
            .output()
            .unwrap();
        if !read.status.success() {
            continue;
        }
        let parsed = serde_json::from_slice::<serde_json::Value>(&read.stdout)
            .ok()
            .map(|v| (v["release"].as_str().unwrap_or_default().to_string(), v["generation"].as_u64().unwrap_or(0)));
        out.insert(slot, parsed);
    }
    out
}

/// The newest valid copy: (release, generation).
fn newest(project: &Project) -> Option<(String, u64)> {
    copies(project).into_values().flatten().max_by_key(|(_, g)| *g)
}

#[test]
fn up_records_the_release_an_older_one_is_refused_before_anything_starts_and_allow_downgrade_proceeds() {
    if !require_docker() {
        return;
    }
    let project = Project::with("rel-down", |t| t.append("ragctl.yaml", &format!("release: {NEW}\n")));
    project.up();
    assert_eq!(newest(&project), Some((NEW.to_string(), 1)));
    assert!(project.test.exists(".env"));
    let checks = project.doctor(&["data.release"]);
    assert_check(&checks, "data.release", "pass", &[&format!("data last run by {NEW}, selected {NEW}")], &[]);
    // A no-op `up` of the same release keeps the record as it is.
    project.up();
    assert_eq!(newest(&project), Some((NEW.to_string(), 1)));

    // An older release on the running stack: refused, nothing recreated.
    set_release(&project.test, OLD);
    let before = project.container_ids();
    let run = project.ragctl(&["up", "--progress", "plain"]);
    run.assert_status(1);
    assert!(
        run.stderr.contains(&format!("this data was last run by Dify {NEW}; release {OLD} is older")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("set `release: {NEW}` in ragctl.yaml")), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-downgrade"), "{}", run.stderr);
    assert_eq!(project.container_ids(), before, "nothing may be recreated");
    let checks = project.doctor(&["data.release"]);
    assert_check(
        &checks,
        "data.release",
        "fail",
        &[&format!("data last run by {NEW}, selected {OLD}")],
        &[&format!("release: {NEW}")],
    );

    // The same with the stack removed (volumes kept): the record is read through a helper container, and no
    // container is created.
    project.ragctl(&["down"]).assert_status(0);
    assert!(project.container_ids().is_empty());
    let run = project.ragctl(&["up", "--progress", "plain"]);
    run.assert_status(1);
    assert!(run.stderr.contains("is older"), "{}", run.stderr);
    assert!(project.container_ids().is_empty(), "nothing may be created: {:?}", project.container_ids());

    // --allow-downgrade proceeds and records the older release (the only way the record goes down).
    project.ragctl(&["up", "--progress", "plain", "--allow-downgrade"]).assert_status(0);
    assert_eq!(newest(&project), Some((OLD.to_string(), 2)));
    // Both copies are valid: the previous generation stays beside the new one.
    assert_eq!(copies(&project).values().filter(|c| c.is_some()).count(), 2);
    // And a newer release raises it again.
    set_release(&project.test, NEW);
    project.up();
    assert_eq!(newest(&project), Some((NEW.to_string(), 3)));
}

#[test]
fn the_record_survives_a_new_project_directory() {
    if !require_docker() {
        return;
    }
    let project = Project::with("rel-dir", |t| t.append("ragctl.yaml", &format!("release: {NEW}\n")));
    project.up();
    project.ragctl(&["down"]).assert_status(0);

    // A new directory (no .ragctl-data.json, no state of the old one), the same project name and .env, the older
    // release: refused, nothing created.
    let (fresh, _) = stack_dir(&[]);
    let fresh = fresh.file(".env", &project.test.read(".env"));
    set_release(&fresh, OLD);
    let run = fresh.run(["-p", &project.name, "up", "--progress", "plain"]);
    run.assert_status(1);
    assert!(run.stderr.contains(&format!("this data was last run by Dify {NEW}")), "{}", run.stderr);
    assert!(project.container_ids().is_empty());
    // With the release the data was last run by, it comes up.
    set_release(&fresh, NEW);
    fresh.run(["-p", &project.name, "up", "--progress", "plain"]).assert_status(0);
    assert_eq!(newest(&project), Some((NEW.to_string(), 1)));
    fresh.run(["-p", &project.name, "down"]).assert_status(0);
}

#[test]
fn a_write_killed_halfway_never_leaves_a_torn_record_in_force() {
    if !require_docker() {
        return;
    }
    let project = Project::with("rel-torn", |t| t.append("ragctl.yaml", &format!("release: {NEW}\n")));
    project.up();
    assert_eq!(newest(&project), Some((NEW.to_string(), 1)));
    // What a write of generation 2 killed halfway leaves: its slot holds a prefix of the JSON.
    docker(&[
        "exec",
        &project.container("db_postgres"),
        "sh",
        "-c",
        &format!("printf '{{\"release\":\"{OLD}\",\"ragctl_v' > {VOLUME_ROOT}/.ragctl-release.0.json"),
    ]);
    assert_eq!(copies(&project).get(&0), Some(&None), "the torn copy is in place");
    let checks = project.doctor(&["data.release"]);
    assert_check(&checks, "data.release", "pass", &[&format!("data last run by {NEW}")], &[]);
    // Read afresh (the container removed, so neither it nor the cache serves): the valid copy stands.
    project.ragctl(&["down"]).assert_status(0);
    set_release(&project.test, OLD);
    project.ragctl(&["up", "--progress", "plain"]).assert_status(1);
    set_release(&project.test, NEW);
    project.up();

    // Real kills: `up --allow-downgrade` alternating releases, SIGKILLed at spread delays; after each, the record
    // has a valid newest copy naming one of the two releases.
    for (i, delay_ms) in [150u64, 400, 800, 1500].into_iter().enumerate() {
        let release = if i % 2 == 0 { OLD } else { NEW };
        let mut child = project
            .ragctl_command(&["up", "--progress", "quiet", "--allow-downgrade"])
            .env("RAGCTL_RELEASE", release)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let (found, _) = newest(&project).expect("a valid copy after a kill");
        assert!(found == OLD || found == NEW, "{found}");
    }
    // A clean run afterwards records again.
    project.ragctl(&["up", "--progress", "plain", "--allow-downgrade"]).assert_status(0);
    assert_eq!(newest(&project).map(|(r, _)| r), Some(NEW.to_string()));
}

#[test]
fn backup_carries_the_release_and_restore_into_an_older_release_is_refused() {
    if !require_docker() {
        return;
    }
    let project = Project::with("rel-bk", |t| t.append("ragctl.yaml", &format!("release: {NEW}\n")));
    project.up();
    let run = project.ragctl(&["backup", "--format", "json"]);
    run.assert_status(0);
    let archive = std::path::PathBuf::from(run.json()["archive"].as_str().unwrap());
    let archive = if archive.is_absolute() { archive } else { project.test.path().join(archive) };
    let archive = archive.to_str().unwrap();
    let verified = project.ragctl(&["backup", "verify", archive, "--format", "json"]);
    verified.assert_status(0);
    assert_eq!(verified.json()["release"], NEW, "{}", verified.stdout);
    project.ragctl(&["down"]).assert_status(0);
    let volumes = project.volumes();

    // The selected release after the restore is older (RAGCTL_RELEASE over the archive's ragctl.yaml): refused
    // before anything is stopped, removed or written.
    let out = project.ragctl_command(&["restore", archive]).env("RAGCTL_RELEASE", OLD).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("this data was last run by Dify {NEW}; release {OLD} is older")), "{stderr}");
    assert_eq!(project.volumes(), volumes);
    assert!(project.container_ids().is_empty());

    // Restored into another project: the record comes with the data.
    let other = Project::new("rel-bk2");
    other.ragctl(&["restore", archive, "--yes"]).assert_status(0);
    assert_eq!(newest(&other).map(|(r, _)| r), Some(NEW.to_string()));
    let checks = other.doctor(&["data.release"]);
    assert_check(&checks, "data.release", "pass", &[&format!("data last run by {NEW}, selected {NEW}")], &[]);
}
