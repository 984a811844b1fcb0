//! `ragctl secret gen | list | check` and `ragctl env import` driven through the real binary: what lands in
//! `.env` (and its backups), what the commands print, and that no secret value ever reaches their output, nor
//! that of `init`, `render` and `profiles`. The commands that need a Docker engine are scanned in
//! tests/e2e_leaks.rs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Run, Test, ragctl_bin, require_tool};
use ragctl::dotenv::DotEnv;

/// The app stack with Weaviate, as most tests here deploy it.
const APP: &str = "--profile app,weaviate --shape full";

const DIFY_DB_PASSWORD: &str = "difyai123456";
const DIFY_SECRET_KEY: &str = "sk-9f73s3ljTXVcMT3Blb3ljTqtsKiGHXVcMT3BlbkFJLK7U";
const DIFY_WEAVIATE_API_KEY: &str = "WVF5YThaHlkYwhGUSmCRgsX3tD5ngdN8pkih";

/// Run `ragctl` with a command line as it would appear in a shell transcript (arguments split on spaces).
fn ragctl(t: &Test, line: &str) -> Run {
    t.run(line.split_whitespace())
}

fn mode(t: &Test, rel: &str) -> u32 {
    std::fs::metadata(t.path().join(rel)).unwrap_or_else(|e| panic!("stat {rel}: {e}")).permissions().mode() & 0o777
}

fn inode(t: &Test, rel: &str) -> u64 {
    std::fs::metadata(t.path().join(rel)).unwrap().ino()
}

#[track_caller]
fn parse(text: &str) -> DotEnv {
    DotEnv::parse(text).unwrap_or_else(|e| panic!("not a valid .env ({e}):\n{text}"))
}

/// Every key with its value, as docker compose would read the file.
fn values(text: &str) -> BTreeMap<String, String> {
    parse(text).entries().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Names of the files in the project directory.
fn files(t: &Test) -> BTreeSet<String> {
    std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// Names of the `.env` backups in the project directory.
fn backups(t: &Test) -> BTreeSet<String> {
    files(t).into_iter().filter(|n| n.starts_with(".env.bak")).collect()
}

/// The secrets of the selected profiles as `secret list --format json` reports them: name → profile.
fn secret_profiles(t: &Test, flags: &str) -> BTreeMap<String, String> {
    let list = ragctl(t, &format!("{flags} --format json secret list"));
    list.assert_status(0);
    list.json()
        .as_array()
        .expect("secret list --format json is an array")
        .iter()
        .map(|row| (row["name"].as_str().unwrap().to_string(), row["profile"].as_str().unwrap().to_string()))
        .collect()
}

/// Replace the project's `.env` with an edited copy (the edit goes through the crate's own lossless model).
fn edit_env(t: &Test, edit: impl FnOnce(&mut DotEnv)) {
    let mut doc = parse(&t.read(".env"));
    edit(&mut doc);
    std::fs::write(t.path().join(".env"), doc.render()).unwrap();
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A `Command` for the real binary in `t`'s directory, as hermetic as `Test::run`.
fn raw_ragctl(t: &Test, line: &str) -> Command {
    let mut cmd = Command::new(ragctl_bin());
    cmd.current_dir(t.path()).args(line.split_whitespace());
    for (k, _) in std::env::vars() {
        if k.starts_with("RAGCTL_") || k.starts_with("COMPOSE_") || k == "NO_COLOR" || k == "DOCKER_HOST" {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

#[test]
fn secret_gen_creates_a_private_env_with_one_group_per_profile_and_a_second_run_changes_nothing() {
    let t = Test::new();
    let gen1 = ragctl(&t, &format!("{APP} secret gen"));
    gen1.assert_status(0);
    assert!(gen1.stderr.contains("generated "), "{}", gen1.stderr);

    let env = t.read(".env");
    assert_eq!(mode(&t, ".env"), 0o600, "a fresh .env must be private");
    let header: Vec<&str> = env.lines().take_while(|l| !l.is_empty()).collect();
    assert!(!header.is_empty() && header.iter().all(|l| l.starts_with("# ")), "no header comment:\n{env}");
    assert!(!header.iter().any(|l| l.starts_with("# ---")), "the header is not a group:\n{env}");

    // One `# --- <profile> ---` group per enabled profile, and each secret sits in its own profile's group.
    let profiles = secret_profiles(&t, APP);
    let expected_groups: BTreeSet<&str> = profiles.values().map(String::as_str).collect();
    assert_eq!(expected_groups, BTreeSet::from(["app", "base", "runtime", "weaviate"]));
    let groups: Vec<&str> =
        env.lines().filter_map(|l| l.strip_prefix("# --- ").and_then(|g| g.strip_suffix(" ---"))).collect();
    assert_eq!(groups.len(), expected_groups.len(), "each group exactly once:\n{env}");
    assert_eq!(groups.iter().copied().collect::<BTreeSet<_>>(), expected_groups);
    let mut group_of_key = BTreeMap::new();
    let mut current = None;
    for line in env.lines() {
        if let Some(g) = line.strip_prefix("# --- ").and_then(|g| g.strip_suffix(" ---")) {
            current = Some(g);
        } else if let Some((key, _)) = line.split_once('=') {
            group_of_key.insert(key, current.expect("a secret before any group header"));
        }
    }
    for (name, profile) in &profiles {
        assert_eq!(group_of_key.get(name.as_str()), Some(&profile.as_str()), "{name} is not under its group:\n{env}");
    }

    let gen2 = ragctl(&t, &format!("{APP} secret gen"));
    gen2.assert_status(0);
    assert!(gen2.stderr.contains("nothing changed"), "{}", gen2.stderr);
    assert_eq!(t.read(".env"), env, "the second run must leave .env byte-identical");
    assert!(backups(&t).is_empty(), "plain gen keeps no backups: {:?}", backups(&t));
}

#[test]
fn secret_gen_adds_only_missing_secrets_to_a_hand_written_env_and_keeps_every_existing_line() {
    let lines = [
        "# my deployment, edited by hand",
        "",
        "export LOG_LEVEL=DEBUG",
        r#"DB_PASSWORD="my own \"quoted\" password 0123456789""#,
        "  # indented comment",
        "UNRELATED=value # trailing comment",
        "REDIS_PASSWORD=short1",
        "export WEAVIATE_API_KEY='single-quoted-key-0123456789abcdefghijkl'",
        "LAST=no-final-newline",
    ];
    for newline in ["\n", "\r\n"] {
        let original = lines.join(newline);
        let t = Test::new().file(".env", &original);
        std::fs::set_permissions(t.path().join(".env"), std::fs::Permissions::from_mode(0o644)).unwrap();

        ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
        let after = t.read(".env");
        let added = after.strip_prefix(original.as_str()).unwrap_or_else(|| {
            panic!("existing lines changed ({newline:?}):\n--- before ---\n{original}\n--- after ---\n{after}")
        });
        assert!(
            added.split_inclusive('\n').all(|l| l.ends_with(newline) && !l[..l.len() - newline.len()].contains('\r')),
            "added lines must use the file's line ending {newline:?}: {added:?}"
        );
        assert_eq!(mode(&t, ".env"), 0o600);

        let v = values(&after);
        // Existing secrets are never changed by plain gen, not even the weak one.
        assert_eq!(v["DB_PASSWORD"], r#"my own "quoted" password 0123456789"#);
        assert_eq!(v["REDIS_PASSWORD"], "short1");
        assert_eq!(v["WEAVIATE_API_KEY"], "single-quoted-key-0123456789abcdefghijkl");
        assert_eq!(v["LOG_LEVEL"], "DEBUG");
        assert_eq!(v["UNRELATED"], "value");
        assert_eq!(v["LAST"], "no-final-newline");
        // Missing partners and derived values follow the existing ones.
        assert_eq!(v["WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"], v["WEAVIATE_API_KEY"]);
        assert_eq!(v["CELERY_BROKER_URL"], "redis://:short1@redis:6379/1");
        assert_eq!(v["CODE_EXECUTION_API_KEY"], v["SANDBOX_API_KEY"]);
        for name in secret_profiles(&t, APP).keys() {
            assert!(v.get(name).is_some_and(|v| !v.is_empty()), "{name} was not filled:\n{after}");
        }

        let check = ragctl(&t, &format!("{APP} secret check"));
        check.assert_status(1);
        assert!(check.stdout.contains("✗ REDIS_PASSWORD: weak"), "{}", check.stdout);

        ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
        assert_eq!(t.read(".env"), after, "a second gen must change nothing");
    }
}

#[test]
fn rotation_needs_yes_changes_the_secret_and_everything_following_it_and_keeps_every_previous_file() {
    let t = Test::new();
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    let generated = t.read(".env");

    // No TTY and no --yes: refuse, touch nothing.
    let refused = ragctl(&t, &format!("{APP} secret gen --rotate REDIS_PASSWORD"));
    refused.assert_status(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(t.read(".env"), generated);
    assert!(backups(&t).is_empty(), "{:?}", backups(&t));

    // REDIS_PASSWORD takes CELERY_BROKER_URL with it; nothing else moves.
    let rotated = ragctl(&t, &format!("{APP} secret gen --rotate REDIS_PASSWORD --yes"));
    rotated.assert_status(0);
    let (old, new) = (values(&generated), values(&t.read(".env")));
    assert_ne!(new["REDIS_PASSWORD"], old["REDIS_PASSWORD"]);
    assert_eq!(new["CELERY_BROKER_URL"], format!("redis://:{}@redis:6379/1", new["REDIS_PASSWORD"]));
    for (k, v) in &old {
        if k != "REDIS_PASSWORD" && k != "CELERY_BROKER_URL" {
            assert_eq!(&new[k], v, "{k} must not change when rotating REDIS_PASSWORD");
        }
    }
    assert_eq!(mode(&t, ".env"), 0o600);
    let first_backup = backups(&t);
    assert_eq!(first_backup.len(), 1, "{first_backup:?}");
    let first_backup = first_backup.into_iter().next().unwrap();
    assert!(rotated.stderr.contains(&first_backup), "the backup is named:\n{}", rotated.stderr);
    assert_eq!(mode(&t, &first_backup), 0o600);
    assert_eq!(t.read(&first_backup), generated, "the backup holds the previous content");

    // CODE_EXECUTION_API_KEY and SANDBOX_API_KEY are one secret seen from two services.
    let before = t.read(".env");
    ragctl(&t, &format!("{APP} secret gen --rotate CODE_EXECUTION_API_KEY --yes")).assert_status(0);
    let (old, new) = (values(&before), values(&t.read(".env")));
    assert_ne!(new["CODE_EXECUTION_API_KEY"], old["CODE_EXECUTION_API_KEY"]);
    assert_eq!(new["CODE_EXECUTION_API_KEY"], new["SANDBOX_API_KEY"]);
    for (k, v) in &old {
        if k != "CODE_EXECUTION_API_KEY" && k != "SANDBOX_API_KEY" {
            assert_eq!(&new[k], v, "{k} must not change when rotating CODE_EXECUTION_API_KEY");
        }
    }
    ragctl(&t, &format!("{APP} secret check")).assert_status(0);

    // Rotate until two rotations certainly fell into the same wall-clock second; no backup is ever replaced.
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    for name in backups(&t) {
        kept.insert(name.clone(), t.read(&name));
    }
    let mut previous_start: Option<u64> = None;
    let mut same_second = false;
    for _ in 0..20 {
        let before = t.read(".env");
        let start = unix_seconds();
        ragctl(&t, &format!("{APP} secret gen --rotate DB_PASSWORD --yes")).assert_status(0);
        let end = unix_seconds();
        let new_backups: Vec<String> = backups(&t).into_iter().filter(|b| !kept.contains_key(b)).collect();
        assert_eq!(new_backups.len(), 1, "each rotation keeps exactly one new backup: {new_backups:?}");
        kept.insert(new_backups[0].clone(), before);
        for (name, content) in &kept {
            assert_eq!(&t.read(name), content, "backup {name} was overwritten");
            assert_eq!(mode(&t, name), 0o600, "{name}");
        }
        // The previous rotation started in the second this one ended in: both ran within that second.
        same_second = previous_start == Some(end);
        if same_second {
            break;
        }
        previous_start = Some(start);
    }
    assert!(same_second, "never managed two rotations within one second");
}

/// Apply `edit`, expect `secret check` to flag `name` with `detail` and a hint, then follow the hint.
#[track_caller]
fn check_flags_and_hint_fixes(name: &str, edit: impl FnOnce(&mut DotEnv), detail: &str, hint: &str) {
    let t = Test::new();
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    edit_env(&t, edit);

    let check = ragctl(&t, &format!("{APP} secret check"));
    check.assert_status(1);
    let lines: Vec<&str> = check.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("✗ {name}: ")))
        .unwrap_or_else(|| panic!("no line for {name}:\n{}", check.stdout));
    assert!(lines[at].contains(detail), "{name}: expected {detail:?} in {:?}", lines[at]);
    let hint_line = lines.get(at + 1).copied().unwrap_or_default();
    assert!(hint_line.trim_start().starts_with("hint: "), "no hint after {:?}:\n{}", lines[at], check.stdout);
    assert!(hint_line.contains(&format!("`{hint}`")), "{name}: expected `{hint}` in {hint_line:?}");
    assert!(check.stdout.contains(" found"), "the summary counts the problems:\n{}", check.stdout);

    // The hint is a command that works.
    let fix = ragctl(&t, &format!("{APP} --yes {}", hint.strip_prefix("ragctl ").unwrap()));
    fix.assert_status(0);
    ragctl(&t, &format!("{APP} secret check")).assert_status(0);
}

#[test]
fn secret_check_flags_public_defaults_weak_values_pair_mismatches_and_missing_secrets_with_a_working_hint() {
    let t = Test::new();
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    let ok = ragctl(&t, &format!("{APP} secret check"));
    ok.assert_status(0);
    assert!(ok.stdout.starts_with("✓ "), "{}", ok.stdout);
    let json = ragctl(&t, &format!("{APP} --format json secret check"));
    json.assert_status(0);
    let report = json.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["problems"], 0);
    assert!(report["secrets"].as_array().unwrap().iter().all(|s| s["status"] == "set"), "{report:#}");

    let public = "publicly known default";
    let dify_db = |d: &mut DotEnv| d.set("DB_PASSWORD", DIFY_DB_PASSWORD);
    check_flags_and_hint_fixes("DB_PASSWORD", dify_db, public, "ragctl secret gen --rotate DB_PASSWORD");
    let dify_weaviate = |d: &mut DotEnv| d.set("WEAVIATE_API_KEY", DIFY_WEAVIATE_API_KEY);
    check_flags_and_hint_fixes(
        "WEAVIATE_API_KEY",
        dify_weaviate,
        public,
        "ragctl secret gen --rotate WEAVIATE_API_KEY",
    );
    let dify_secret_key = |d: &mut DotEnv| d.set("SECRET_KEY", DIFY_SECRET_KEY);
    check_flags_and_hint_fixes("SECRET_KEY", dify_secret_key, public, "ragctl secret gen --rotate SECRET_KEY");
    let weak = |d: &mut DotEnv| d.set("PLUGIN_DAEMON_KEY", "password1");
    check_flags_and_hint_fixes("PLUGIN_DAEMON_KEY", weak, "weak", "ragctl secret gen --rotate PLUGIN_DAEMON_KEY");
    let mismatch = |d: &mut DotEnv| {
        d.set("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", "Another0Strong1Key2Of3Forty4Chars5xxxxxx")
    };
    check_flags_and_hint_fixes(
        "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS",
        mismatch,
        "WEAVIATE_API_KEY",
        "ragctl secret gen --rotate WEAVIATE_API_KEY",
    );
    let missing = |d: &mut DotEnv| assert!(d.remove("SECRET_KEY"));
    check_flags_and_hint_fixes("SECRET_KEY", missing, "missing", "ragctl secret gen");

    // All of it at once, as JSON.
    edit_env(&t, |d| {
        d.set("DB_PASSWORD", DIFY_DB_PASSWORD);
        d.set("PLUGIN_DAEMON_KEY", "password1");
        d.set("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", "Another0Strong1Key2Of3Forty4Chars5xxxxxx");
        d.remove("SECRET_KEY");
    });
    let json = ragctl(&t, &format!("{APP} --format json secret check"));
    json.assert_status(1);
    let report = json.json();
    assert_eq!(report["ok"], false, "{report:#}");
    assert_eq!(report["problems"], 4, "{report:#}");
    let by_name: BTreeMap<&str, &serde_json::Value> =
        report["secrets"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap(), s)).collect();
    assert_eq!(by_name["DB_PASSWORD"]["status"], "public_default");
    assert_eq!(by_name["DB_PASSWORD"]["hint"], "run `ragctl secret gen --rotate DB_PASSWORD`");
    assert_eq!(by_name["PLUGIN_DAEMON_KEY"]["status"], "weak");
    assert!(by_name["PLUGIN_DAEMON_KEY"]["bits"].as_u64().is_some_and(|b| b < 96), "{report:#}");
    let mismatched = by_name["WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"];
    assert_eq!(mismatched["status"], "pair_mismatch");
    assert_eq!(mismatched["other"], "WEAVIATE_API_KEY");
    assert!(mismatched["hint"].as_str().unwrap().contains("ragctl secret gen --rotate WEAVIATE_API_KEY"));
    assert_eq!(by_name["SECRET_KEY"]["status"], "missing");
    assert_eq!(by_name["SECRET_KEY"]["hint"], "run `ragctl secret gen`");
    assert_eq!(by_name["REDIS_PASSWORD"]["status"], "set");
    assert_eq!(by_name["REDIS_PASSWORD"]["hint"], serde_json::Value::Null);
    assert!(report["secrets"].as_array().unwrap().iter().all(|s| s.get("value").is_none()), "check never shows values");
}

#[test]
fn a_malformed_env_stops_every_command_with_its_location_and_is_left_untouched() {
    let malformed = "# hand-written\nDB_PASSWORD=Zq8sX2p9Lm4nB7vC1xK5wE3rT6yU0iO2\nKEY=\"unterminated\nOTHER=1\n";
    let t = Test::new().file(".env", malformed).file("other.env", "LOG_LEVEL=INFO\n");
    let before_files = files(&t);
    for command in [
        "secret gen",
        "secret gen --rotate DB_PASSWORD --yes",
        "secret list",
        "secret list --show",
        "--format json secret list",
        "secret check",
        "--format json secret check",
        "env import other.env",
        "env import other.env --overwrite",
    ] {
        let run = ragctl(&t, &format!("{APP} {command}"));
        run.assert_status(2);
        assert!(run.stderr.contains(".env:3:5"), "`{command}` must name .env:3:5 (line:column):\n{}", run.stderr);
        assert!(run.stdout.is_empty(), "`{command}` printed data:\n{}", run.stdout);
        assert_eq!(t.read(".env"), malformed, "`{command}` changed .env");
        assert_eq!(files(&t), before_files, "`{command}` left files behind");
    }

    // A malformed import source is named by its own path.
    let t =
        Test::new().file("legacy/dify.env", "# from the reference deployment\nLOG_LEVEL=INFO\nKEY=\"unterminated\n");
    let import = ragctl(&t, &format!("{APP} env import legacy/dify.env"));
    import.assert_status(2);
    assert!(import.stderr.contains("legacy/dify.env:3:5"), "{}", import.stderr);
    assert!(!t.exists(".env"), "a failed import must not create .env");
}

#[test]
fn a_non_utf8_env_stops_every_command_with_exit_2_naming_the_first_invalid_byte() {
    // `é` is valid UTF-8 (one character, two bytes); the Latin-1 `\xe9` after `caf` is not. The column counts
    // characters: S-I-T-E-_-N-A-M-E-= is 10, `é` 11, space 12, `caf` 13..15, the bad byte 16.
    let bytes: &[u8] =
        b"# hand-written\nDB_PASSWORD=Zq8sX2p9Lm4nB7vC1xK5wE3rT6yU0iO2\nSITE_NAME=\xc3\xa9 caf\xe9\nOTHER=1\n";
    let t = Test::new().file("other.env", "LOG_LEVEL=INFO\n").env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    std::fs::write(t.path().join(".env"), bytes).unwrap();
    let before_files = files(&t);
    for command in [
        "secret gen",
        "secret gen --rotate DB_PASSWORD --yes",
        "secret list",
        "--format json secret check",
        "env import other.env",
        "render --target kubernetes",
        "up --dry-run",
        "up",
    ] {
        let run = ragctl(&t, &format!("{APP} {command}"));
        run.assert_status(2);
        assert!(run.stderr.contains(".env:3:16"), "`{command}` must name .env:3:16 (line:column):\n{}", run.stderr);
        assert!(run.stderr.contains("UTF-8"), "`{command}` must say what is wrong:\n{}", run.stderr);
        assert!(run.stdout.is_empty(), "`{command}` printed data:\n{}", run.stdout);
        assert_eq!(std::fs::read(t.path().join(".env")).unwrap(), bytes, "`{command}` changed .env");
        assert_eq!(files(&t), before_files, "`{command}` left files behind");
    }
}

#[test]
fn a_read_only_env_is_never_replaced_and_the_hint_that_makes_it_writable_works() {
    let partial = "# kept read-only on purpose\nLOG_LEVEL=INFO\n";
    let t = Test::new().file(".env", partial).file("other.env", "SECRET_KEY=sk-imported-value-that-is-long-enough-1\n");
    let read_only =
        |t: &Test| std::fs::set_permissions(t.path().join(".env"), std::fs::Permissions::from_mode(0o400)).unwrap();
    read_only(&t);
    let before_files = files(&t);
    let before_inode = inode(&t, ".env");

    // The tests run as root, who could write it anyway: ragctl must go by the mode bits, not by EACCES.
    for command in ["secret gen", "env import other.env --overwrite"] {
        let run = ragctl(&t, &format!("{APP} {command}"));
        run.assert_status(1);
        assert!(run.stderr.contains("read-only"), "`{command}` says why:\n{}", run.stderr);
        assert!(run.stderr.contains("hint:") && run.stderr.contains("chmod 600"), "`{command}`:\n{}", run.stderr);
        assert_eq!(t.read(".env"), partial, "`{command}` changed .env");
        assert_eq!(mode(&t, ".env"), 0o400, "`{command}` changed its mode");
        assert_eq!(inode(&t, ".env"), before_inode, "`{command}` replaced the file");
        assert_eq!(files(&t), before_files, "`{command}` left files behind");
    }

    // Following the hint works.
    std::fs::set_permissions(t.path().join(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    let generated = t.read(".env");
    assert!(generated.starts_with(partial), "{generated}");

    // A refused rotation keeps no backup either.
    read_only(&t);
    let before_files = files(&t);
    let rotate = ragctl(&t, &format!("{APP} secret gen --rotate DB_PASSWORD --yes"));
    rotate.assert_status(1);
    assert!(rotate.stderr.contains("chmod 600"), "{}", rotate.stderr);
    assert_eq!(t.read(".env"), generated, "the rotation changed .env");
    assert_eq!(files(&t), before_files, "the refused rotation left files behind");
    assert!(backups(&t).is_empty(), "{:?}", backups(&t));
}

const DIFY_ENV: &str = "\
# ------------------------------
# Environment of the reference deployment
# ------------------------------
LOG_LEVEL=INFO
SECRET_KEY=sk-9f73s3ljTXVcMT3Blb3ljTqtsKiGHXVcMT3BlbkFJLK7U

# database, the old way
POSTGRES_USER=x
DB_PASSWORD=difyai123456
DB_HOST=db

# redis
REDIS_PASSWORD=difyai123456
CELERY_BROKER_URL=redis://:${REDIS_PASSWORD}@redis:6379/1
WEAVIATE_API_KEY=WVF5YThaHlkYwhGUSmCRgsX3tD5ngdN8pkih
";

#[test]
fn env_import_keeps_values_maps_renames_reports_public_defaults_and_respects_existing_values() {
    let t = Test::new().file("dify.env", DIFY_ENV);
    let import = ragctl(&t, &format!("{APP} env import dify.env"));
    import.assert_status(0);
    assert_eq!(mode(&t, ".env"), 0o600);
    let imported = t.read(".env");
    let v = values(&imported);
    assert_eq!(v["DB_PASSWORD"], DIFY_DB_PASSWORD);
    assert_eq!(v["REDIS_PASSWORD"], DIFY_DB_PASSWORD);
    assert_eq!(v["SECRET_KEY"], DIFY_SECRET_KEY);
    assert_eq!(v["WEAVIATE_API_KEY"], DIFY_WEAVIATE_API_KEY);
    assert_eq!(v["CELERY_BROKER_URL"], "redis://:difyai123456@redis:6379/1", "references arrive resolved");
    assert!(!imported.contains("${"), "{imported}");
    assert_eq!(v["DB_USERNAME"], "x");
    assert!(!v.contains_key("POSTGRES_USER"), "the old name is not written:\n{imported}");
    assert_eq!(
        (v["LOG_LEVEL"].as_str(), v["DB_HOST"].as_str()),
        ("INFO", "db_postgres"),
        "`db` is the old service name"
    );
    assert!(import.stderr.contains("renamed POSTGRES_USER → DB_USERNAME"), "{}", import.stderr);
    for name in ["DB_PASSWORD", "REDIS_PASSWORD", "SECRET_KEY", "WEAVIATE_API_KEY"] {
        assert!(
            import
                .stderr
                .contains(&format!("warning: `{name}` holds the reference deployment's publicly known default")),
            "no warning for {name}:\n{}",
            import.stderr
        );
        assert!(import.stderr.contains(&format!("ragctl secret gen --rotate {name}")), "{}", import.stderr);
    }

    // Again, as JSON: everything is unchanged, the defaults are still reported, the file is not rewritten.
    let ino = inode(&t, ".env");
    let again = ragctl(&t, &format!("{APP} --format json env import dify.env"));
    again.assert_status(0);
    let report = again.json();
    assert_eq!(report["imported"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["conflicts"], serde_json::json!([]), "{report:#}");
    let unchanged: BTreeSet<&str> =
        report["unchanged"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    let source_keys: BTreeSet<&str> = ["LOG_LEVEL", "SECRET_KEY", "DB_USERNAME", "DB_PASSWORD", "DB_HOST"]
        .into_iter()
        .chain(["REDIS_PASSWORD", "CELERY_BROKER_URL", "WEAVIATE_API_KEY"])
        .collect();
    assert_eq!(unchanged, source_keys);
    assert_eq!(
        report["renamed"],
        serde_json::json!([{"from": "POSTGRES_USER", "to": "DB_USERNAME"}, {"from": "DB_HOST=db", "to": "DB_HOST=db_postgres"}])
    );
    let defaults: BTreeSet<&str> =
        report["public_defaults"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    for name in ["DB_PASSWORD", "REDIS_PASSWORD", "SECRET_KEY", "WEAVIATE_API_KEY"] {
        assert!(defaults.contains(name), "{name} missing from public_defaults: {defaults:?}");
    }
    assert_eq!(t.read(".env"), imported);
    assert_eq!(inode(&t, ".env"), ino, "an import that changes nothing must not rewrite .env");

    // A project that already has its own secrets keeps them unless --overwrite.
    let t = Test::new().file("dify.env", DIFY_ENV);
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    let own = values(&t.read(".env"));
    let kept = ragctl(&t, &format!("{APP} --format json env import dify.env"));
    kept.assert_status(0);
    let report = kept.json();
    let conflicts: BTreeSet<&str> =
        report["conflicts"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(
        conflicts,
        BTreeSet::from(["DB_PASSWORD", "REDIS_PASSWORD", "SECRET_KEY", "CELERY_BROKER_URL", "WEAVIATE_API_KEY"]),
        "{report:#}"
    );
    assert_eq!(report["public_defaults"], serde_json::json!([]), "the kept values are not defaults: {report:#}");
    let after = values(&t.read(".env"));
    for name in &conflicts {
        assert_eq!(after[*name], own[*name], "{name} was replaced without --overwrite");
    }
    assert_eq!(after["LOG_LEVEL"], "INFO", "non-conflicting keys are still imported");
    let text = ragctl(&t, &format!("{APP} env import dify.env"));
    text.assert_status(0);
    assert!(text.stderr.contains("--overwrite"), "{}", text.stderr);

    ragctl(&t, &format!("{APP} env import dify.env --overwrite")).assert_status(0);
    let overwritten = values(&t.read(".env"));
    assert_eq!(overwritten["DB_PASSWORD"], DIFY_DB_PASSWORD);
    assert_eq!(overwritten["CELERY_BROKER_URL"], "redis://:difyai123456@redis:6379/1");
    assert_eq!(mode(&t, ".env"), 0o600);
}

#[test]
fn a_second_import_of_a_file_with_empty_values_reports_them_unchanged() {
    let t = Test::new().file("dify.env", "CONSOLE_API_URL=\nLOG_LEVEL=INFO\n");
    ragctl(&t, &format!("{APP} env import dify.env")).assert_status(0);
    let first = t.read(".env");
    let ino = inode(&t, ".env");
    let again = ragctl(&t, &format!("{APP} --format json env import dify.env"));
    again.assert_status(0);
    let report = again.json();
    assert_eq!(report["imported"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["unchanged"], serde_json::json!(["CONSOLE_API_URL", "LOG_LEVEL"]), "{report:#}");
    assert_eq!(t.read(".env"), first);
    assert_eq!(inode(&t, ".env"), ino, "an import that changes nothing must not rewrite .env");
}

#[test]
fn no_command_ever_prints_a_secret_value_except_secret_list_show() {
    const FLAGS: &str = "--profile app,weaviate,monitoring --shape full";
    // The same stack as `init` answers; `--force` so that it can run again.
    const INIT: &str = "--shape full init --yes --force --app --monitoring --vector-store weaviate \
                        --domain rag.example.com --self-signed";
    let own_grafana = "Own0Grafana1Password2Set3By4Hand5abcdef";
    let broken_secret = "Unterminated0Secret1Value2Never3Echoed4";
    let t = Test::new()
        .file("legacy.env", &format!("# grafana from the old host\nGRAFANA_ADMIN_PASSWORD={own_grafana}\nTZ=UTC\n"))
        .file("broken.env", &format!("TZ=UTC\nDB_PASSWORD=\"{broken_secret}\nX=1\n"));

    let mut names: BTreeSet<String> = BTreeSet::new();
    // Values that must never be printed: every secret value ever in .env or a backup, plus the ones in the inputs.
    let mut needles: BTreeSet<String> = BTreeSet::from([own_grafana.to_string(), broken_secret.to_string()]);
    let mut outputs: Vec<(String, String)> = Vec::new();
    let steps: &[(&str, i32)] = &[
        ("secret gen", 0),
        ("secret gen", 0),
        ("secret list", 0),
        ("--format json secret list", 0),
        ("-vv secret list", 0),
        ("secret check", 0),
        ("--format json secret check", 0),
        ("secret gen --rotate REDIS_PASSWORD --yes", 0),
        ("-vv secret gen --rotate SECRET_KEY,GRAFANA_ADMIN_PASSWORD --yes", 0),
        ("--format json secret gen --rotate DB_PASSWORD,CODE_EXECUTION_API_KEY --yes", 0),
        ("render", 0),
        ("render --check", 0),
        ("-v render", 0),
        ("-v --format json render", 0),
        ("-v --format json render --check", 0),
        ("-vv render", 0),
        ("render --stdout", 0),
        ("profiles", 0),
        ("--format json profiles", 0),
        ("env import legacy.env", 0),
        ("--format json env import legacy.env", 0),
        ("-v env import legacy.env", 0),
        ("-v --format json env import legacy.env --overwrite", 0),
        ("-vv env import legacy.env --overwrite", 0),
        ("secret check", 0),
        ("secret gen --rotate NOPE --yes", 2),
        ("secret gen --rotate REDIS_PASSWORD", 2),
        ("env import broken.env", 2),
        ("env import missing.env", 1),
        ("--env-file broken.env secret check", 2),
    ];
    let mut collect = |t: &Test, command: &str, expected: i32, outputs: &mut Vec<(String, String)>| {
        let run = ragctl(t, command);
        run.assert_status(expected);
        outputs.push((command.to_string(), format!("{}\n{}", run.stdout, run.stderr)));
        if names.is_empty() {
            names.extend(secret_profiles(t, FLAGS).into_keys());
        }
        for file in files(t).into_iter().filter(|f| f == ".env" || f.starts_with(".env.bak")) {
            for (k, v) in values(&t.read(&file)) {
                if names.contains(&k) && !v.is_empty() {
                    needles.insert(v);
                }
            }
        }
    };
    for (command, expected) in steps {
        collect(&t, &format!("{FLAGS} {command}"), *expected, &mut outputs);
    }
    // A pair mismatch: both values are on screen only by name.
    edit_env(&t, |d| d.set("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", "Mismatched0Allowed1Key2Value3abcdefghij"));
    collect(&t, &format!("{FLAGS} secret check"), 1, &mut outputs);
    collect(&t, &format!("{FLAGS} --format json secret check"), 1, &mut outputs);
    collect(&t, &format!("{FLAGS} secret gen --rotate WEAVIATE_API_KEY --yes"), 0, &mut outputs);
    // `init` generates the same secrets in a new project, then keeps them (`--force`) in every variant.
    let fresh = Test::new();
    for variant in ["-v", "-v --format json", "-vv"] {
        collect(&fresh, &format!("{variant} {INIT}"), 0, &mut outputs);
    }
    assert_eq!(secret_profiles(&fresh, ""), secret_profiles(&t, FLAGS), "init chose another set of secrets");

    let current = values(&t.read(".env"));
    assert_eq!(names.len(), 12, "{names:?}");
    for name in &names {
        assert!(needles.contains(&current[name]), "{name}'s current value was not collected");
    }
    assert!(needles.iter().all(|n| n.len() >= 12), "a short needle would make the scan meaningless");
    for (command, output) in &outputs {
        for needle in &needles {
            assert!(
                !output.contains(needle.as_str()),
                "`ragctl {command}` printed the secret value {needle:?}:\n{output}"
            );
        }
    }

    // The scan can fail: --show does print the current values.
    let show = ragctl(&t, &format!("{FLAGS} secret list --show"));
    show.assert_status(0);
    for name in &names {
        assert!(show.stdout.contains(&current[name]), "--show must print {name}:\n{}", show.stdout);
    }
    let show_json = ragctl(&t, &format!("{FLAGS} --format json secret list --show"));
    show_json.assert_status(0);
    for row in show_json.json().as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        assert_eq!(row["value"].as_str(), Some(current[name].as_str()), "{name}");
    }
}

#[test]
fn docker_compose_reads_the_same_secrets_as_are_in_env() {
    let Some(compose) = require_tool("docker-compose", &["/usr/bin/docker-compose".into()]) else { return };
    let t = Test::new();
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    ragctl(&t, &format!("{APP} render")).assert_status(0);
    let env = values(&t.read(".env"));

    let mut cmd = Command::new(compose);
    cmd.current_dir(t.path()).args(["-p", "t", "-f", "docker-compose.yaml", "config"]);
    // Only .env may supply the values: nothing from this process's environment.
    for (k, _) in std::env::vars() {
        if env.contains_key(&k) || k.starts_with("COMPOSE_") || k == "DOCKER_HOST" {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run docker-compose");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "docker-compose config failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let config: yaml_serde::Value = yaml_serde::from_str(&stdout).expect("docker-compose config prints YAML");
    // docker-compose 1.29 prints a literal `$` as `$$`.
    let text = |v: &yaml_serde::Value, what: &str| -> String {
        v.as_str().unwrap_or_else(|| panic!("{what} is not a string: {v:?}\n{stdout}")).replace("$$", "$")
    };
    let services = &config["services"];

    assert_eq!(
        text(&services["db_postgres"]["environment"]["POSTGRES_PASSWORD"], "POSTGRES_PASSWORD"),
        env["DB_PASSWORD"]
    );
    let redis_command: Vec<String> = services["redis"]["command"]
        .as_sequence()
        .unwrap_or_else(|| panic!("redis command is not a list:\n{stdout}"))
        .iter()
        .map(|a| text(a, "redis argument"))
        .collect();
    let at = redis_command.iter().position(|a| a == "--requirepass").expect("redis runs with --requirepass");
    assert_eq!(redis_command.get(at + 1), Some(&env["REDIS_PASSWORD"]));
    assert_eq!(text(&services["api"]["environment"]["SECRET_KEY"], "SECRET_KEY"), env["SECRET_KEY"]);
    assert_eq!(
        text(&services["worker"]["environment"]["CELERY_BROKER_URL"], "CELERY_BROKER_URL"),
        env["CELERY_BROKER_URL"]
    );
    assert!(env["CELERY_BROKER_URL"].contains(&env["REDIS_PASSWORD"]));
}

#[test]
fn a_rotation_killed_at_any_moment_leaves_either_the_old_or_a_complete_new_env() {
    let t = Test::new();
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    let rotate = format!("{APP} secret gen --rotate DB_PASSWORD,REDIS_PASSWORD --yes");

    // How long an uninterrupted rotation takes here, so the kills spread over the whole run, write included.
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            assert!(raw_ragctl(&t, &rotate).status().unwrap().success());
            started.elapsed()
        })
        .collect();
    runs.sort();
    let full_run = runs[runs.len() / 2];
    let mut window_us = (full_run.as_micros() as u64 * 3 / 2).max(6_000);

    let (mut old, mut new, mut killed) = (0, 0, 0);
    let mut previous = t.read(".env");
    let started = Instant::now();
    for iteration in 0..160u64 {
        // Runs here can be slower than the calibration runs: widen (or narrow) the window if one outcome is rare.
        if iteration > 0 && iteration % 40 == 0 {
            if new * 10 < iteration {
                window_us = window_us * 3 / 2;
            } else if old * 10 < iteration {
                window_us = window_us * 2 / 3;
            }
        }
        // A tiny LCG per iteration: reproducible, and no dependency.
        let lcg = iteration.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_micros((lcg >> 33) % window_us);
        let mut child = raw_ragctl(&t, &rotate).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(9) {
            killed += 1;
        }

        ragctl(&t, &format!("{APP} --format json secret list")).assert_status(0);
        let current = t.read(".env");
        assert_eq!(mode(&t, ".env"), 0o600);
        if current == previous {
            old += 1;
            continue;
        }
        let (before, after) = (values(&previous), values(&current));
        let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<BTreeSet<_>>();
        assert_eq!(keys(&after), keys(&before), "iteration {iteration}: a new version must keep every key");
        for (k, v) in &before {
            match k.as_str() {
                "DB_PASSWORD" | "REDIS_PASSWORD" => assert_ne!(&after[k], v, "iteration {iteration}: {k} half-rotated"),
                "CELERY_BROKER_URL" => {
                    assert_eq!(after[k], format!("redis://:{}@redis:6379/1", after["REDIS_PASSWORD"]))
                }
                _ => assert_eq!(&after[k], v, "iteration {iteration}: {k} changed"),
            }
        }
        new += 1;
        previous = current;
    }
    // A kill between creating the temp file and renaming it leaves the temp file behind: proof some landed mid-write.
    let mid_write = files(&t).iter().filter(|f| f.contains("ragctl-tmp")).count();
    eprintln!(
        "160 kills (final window {window_us} µs, one full rotation {full_run:?}): {old} left the old .env, {new} a new one; \
         {killed} died of SIGKILL, {mid_write} temp files left behind; took {:?}",
        started.elapsed()
    );
    assert!(old > 0 && new > 0, "the kills must land both before and after the write: old {old}, new {new}");
}

// ---- issue 13, item 6: import and secret fixes ----

/// A strong value that is not any generated format, so a test can tell it from a freshly generated one.
const OWN_REDIS_PASSWORD: &str = "Own0Redis1Password2Zq8sX2p9Lm4nB7v";

/// The `ragctl ...` commands named in `hint:` lines of `stderr`, as printed.
fn printed_hints(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("hint: run `"))
        .filter_map(|rest| rest.split_once('`').map(|(cmd, _)| cmd.to_string()))
        .collect()
}

#[test]
fn an_old_env_has_its_old_names_mapped_and_reported_and_the_old_postgres_host_follows_the_service_rename() {
    let old = "\
DB_USERNAME=dify_user
DB_PASSWORD=Own0Db1Password2Zq8sX2p9Lm4nB7vC1xK
DB_DATABASE=dify_db
PGUSER=${DB_USERNAME}
POSTGRES_PASSWORD=${DB_PASSWORD}
POSTGRES_DB=${DB_DATABASE}
DB_HOST=db
";
    let t = Test::new().file("old.env", old);
    let import = ragctl(&t, &format!("{APP} --format json env import old.env"));
    import.assert_status(0);
    let report = import.json();
    let renamed: BTreeSet<(String, String)> = report["renamed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["from"].as_str().unwrap().to_string(), r["to"].as_str().unwrap().to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("PGUSER", "DB_USERNAME"),
        ("POSTGRES_PASSWORD", "DB_PASSWORD"),
        ("POSTGRES_DB", "DB_DATABASE"),
        ("DB_HOST=db", "DB_HOST=db_postgres"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(renamed, expected, "{report:#}");
    let v = values(&t.read(".env"));
    assert_eq!(v["DB_HOST"], "db_postgres", "the api must not be pointed at a host that does not exist");
    assert_eq!((v["DB_USERNAME"].as_str(), v["DB_DATABASE"].as_str()), ("dify_user", "dify_db"));
    for old_name in ["PGUSER", "POSTGRES_PASSWORD", "POSTGRES_DB"] {
        assert!(!v.contains_key(old_name), "{old_name} written under its old name");
    }
    let compose = ragctl(&t, &format!("{APP} render --stdout"));
    compose.assert_status(0);
    assert!(!compose.stdout.contains("DB_HOST: db\n"), "{}", compose.stdout);

    // In text, each mapping is one line; an old name whose value disagrees with the current one is said so.
    let t = Test::new().file("old.env", "DB_PASSWORD=Own0Db1Password2Zq8sX2p9Lm4nB7vC1xK\nPOSTGRES_PASSWORD=other\n");
    let text = ragctl(&t, &format!("{APP} env import old.env"));
    text.assert_status(0);
    assert!(text.stderr.contains("renamed POSTGRES_PASSWORD → DB_PASSWORD"), "{}", text.stderr);
    assert!(text.stderr.contains("`POSTGRES_PASSWORD` differs from `DB_PASSWORD`"), "{}", text.stderr);
    assert_eq!(t.dotenv_value("DB_PASSWORD"), "Own0Db1Password2Zq8sX2p9Lm4nB7vC1xK");
}

#[test]
fn an_old_ragctl_env_has_its_postgres_port_key_mapped_to_difys_and_reported() {
    let t = Test::new().file("old.env", "EXPOSE_DB_PORT=5433\n");
    let import = ragctl(&t, "--format json env import old.env");
    import.assert_status(0);
    let report = import.json();
    assert_eq!(report["renamed"], serde_json::json!([{"from": "EXPOSE_DB_PORT", "to": "EXPOSE_POSTGRES_PORT"}]));
    let v = values(&t.read(".env"));
    assert_eq!(v.get("EXPOSE_POSTGRES_PORT").map(String::as_str), Some("5433"));
    assert!(!v.contains_key("EXPOSE_DB_PORT"), "written under its old name:\n{}", t.read(".env"));
    // The stack reads it: render is not refused, and docker compose would publish PostgreSQL there.
    ragctl(&t, "render").assert_status(0);
    let text = ragctl(&t, "env import old.env");
    assert!(text.stderr.contains("renamed EXPOSE_DB_PORT → EXPOSE_POSTGRES_PORT"), "{}", text.stderr);
}

#[test]
fn import_into_an_initialised_project_rebuilds_the_broker_url_around_the_kept_redis_password() {
    let t = Test::new().file(
        "dify.env",
        &format!("REDIS_PASSWORD={OWN_REDIS_PASSWORD}\nCELERY_BROKER_URL=redis://:${{REDIS_PASSWORD}}@redis:6379/1\n"),
    );
    t.run(["init"]).assert_status(0);
    let project_redis = t.dotenv_value("REDIS_PASSWORD");
    assert_ne!(project_redis, OWN_REDIS_PASSWORD);

    let import = ragctl(&t, "env import dify.env");
    import.assert_status(0);
    assert_eq!(t.dotenv_value("REDIS_PASSWORD"), project_redis, "the project's own password is kept");
    assert_eq!(t.dotenv_value("CELERY_BROKER_URL"), format!("redis://:{project_redis}@redis:6379/1"));
    ragctl(&t, "secret check").assert_status(0);

    // A broker URL that carries another password is found in the middleware shape too.
    t.set_dotenv("CELERY_BROKER_URL", &format!("redis://:{OWN_REDIS_PASSWORD}@redis:6379/1"));
    let check = ragctl(&t, "secret check");
    check.assert_status(1);
    assert!(check.stdout.contains("✗ CELERY_BROKER_URL: differs from `REDIS_PASSWORD`"), "{}", check.stdout);
}

#[test]
fn rotating_the_redis_password_in_the_middleware_shape_rewrites_the_broker_url() {
    let t = Test::new().file(
        "dify.env",
        &format!("REDIS_PASSWORD={OWN_REDIS_PASSWORD}\nCELERY_BROKER_URL=redis://:${{REDIS_PASSWORD}}@redis:6379/1\n"),
    );
    ragctl(&t, "env import dify.env").assert_status(0);
    ragctl(&t, "secret gen").assert_status(0);
    let rotate = ragctl(&t, "--format json secret gen --rotate REDIS_PASSWORD --yes");
    rotate.assert_status(0);
    let redis = t.dotenv_value("REDIS_PASSWORD");
    assert_ne!(redis, OWN_REDIS_PASSWORD);
    assert_eq!(t.dotenv_value("CELERY_BROKER_URL"), format!("redis://:{redis}@redis:6379/1"));
    let report = rotate.json();
    let names: Vec<&str> = report["secrets"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["REDIS_PASSWORD", "CELERY_BROKER_URL"]);
    ragctl(&t, "secret check").assert_status(0);
}

#[test]
fn every_hint_an_import_prints_runs_as_printed_in_a_default_project() {
    let dify = "\
SECRET_KEY=sk-9f73s3ljTXVcMT3Blb3ljTqtsKiGHXVcMT3BlbkFJLK7U
DB_PASSWORD=difyai123456
REDIS_PASSWORD=difyai123456
CELERY_BROKER_URL=redis://:difyai123456@redis:6379/1
SANDBOX_API_KEY=dify-sandbox
CODE_EXECUTION_API_KEY=dify-sandbox
PLUGIN_DAEMON_KEY=lYkiYYT6owG+71oLerGzA7GXCgOT++6ovaezWAjpCjf+Sjc3ZtU+qUEi
WEAVIATE_API_KEY=WVF5YThaHlkYwhGUSmCRgsX3tD5ngdN8pkih
";
    let t = Test::new().file("dify.env", dify).env("RAGCTL_YES", "1");
    let import = ragctl(&t, "env import dify.env");
    import.assert_status(0);
    let hints = printed_hints(&import.stderr);
    assert!(hints.iter().any(|h| h.contains("--rotate SECRET_KEY")), "{}", import.stderr);
    assert!(hints.len() >= 6, "{}", import.stderr);
    for hint in &hints {
        let line = hint.strip_prefix("ragctl ").unwrap_or_else(|| panic!("not a ragctl command: {hint}"));
        let run = ragctl(&t, line);
        assert_eq!(run.status, 0, "`{hint}` failed as printed:\n{}", run.stderr);
    }
    let v = values(&t.read(".env"));
    assert_ne!(v["SECRET_KEY"], DIFY_SECRET_KEY);
    assert_ne!(v["SANDBOX_API_KEY"], "dify-sandbox");
    assert_eq!(v["CODE_EXECUTION_API_KEY"], v["SANDBOX_API_KEY"], "the pair follows its rotated root");
    assert_eq!(v["CELERY_BROKER_URL"], format!("redis://:{}@redis:6379/1", v["REDIS_PASSWORD"]));
}

#[test]
fn rotating_secret_key_warns_about_signed_sessions_not_a_data_directory() {
    let t = Test::new();
    ragctl(&t, &format!("{APP} secret gen")).assert_status(0);
    let rotate = ragctl(&t, &format!("{APP} secret gen --rotate SECRET_KEY --yes"));
    rotate.assert_status(0);
    assert!(rotate.stderr.contains("warning: "), "{}", rotate.stderr);
    assert!(!rotate.stderr.contains("data directory"), "{}", rotate.stderr);
    assert!(rotate.stderr.contains("stops verifying"), "{}", rotate.stderr);
    // DB_PASSWORD's warning still says where the old value lives.
    let rotate = ragctl(&t, &format!("{APP} secret gen --rotate DB_PASSWORD --yes"));
    rotate.assert_status(0);
    assert!(rotate.stderr.contains("PostgreSQL keeps the password it was initialised with"), "{}", rotate.stderr);
}

/// Dify's `.env.example` of the newest recorded release, every key with its default, and the publicly known
/// secrets replaced by strong values (a careful migration).
fn dify_env_example() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("releases");
    let mut newest: Option<(Vec<u64>, std::path::PathBuf)> = None;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".yaml")) else {
            continue;
        };
        let version: Vec<u64> = stem.split(['.', '-']).map_while(|p| p.parse().ok()).collect();
        if newest.as_ref().is_none_or(|(v, _)| version > *v) {
            newest = Some((version, path));
        }
    }
    let (_, path) = newest.expect("no release files");
    let doc: serde_json::Value = yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = String::new();
    for (key, value) in doc["dotenv"].as_object().unwrap() {
        let value = value.as_str().unwrap();
        let strong = match key.as_str() {
            "SECRET_KEY" | "PLUGIN_DAEMON_KEY" | "PLUGIN_DIFY_INNER_API_KEY" | "INNER_API_KEY_FOR_PLUGIN" => {
                Some("Zq8sX2p9Lm4nB7vC1xK5wE3rT6yU0iO2aB4cD6eF8gH0jK2l")
            }
            "DB_PASSWORD" | "REDIS_PASSWORD" => Some(OWN_REDIS_PASSWORD),
            "SANDBOX_API_KEY" | "CODE_EXECUTION_API_KEY" => Some("Own0Sandbox1Key2Zq8sX2p9Lm4nB7vC1x"),
            "WEAVIATE_API_KEY" | "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS" => {
                Some("Own0Weaviate1Key2Zq8sX2p9Lm4nB7v")
            }
            "CELERY_BROKER_URL" => Some("redis://:${REDIS_PASSWORD}@redis:6379/1"),
            _ => None,
        };
        out.push_str(&format!("{key}={}\n", strong.unwrap_or(value)));
    }
    out
}

#[test]
fn doctor_passes_its_config_checks_right_after_a_clean_import_of_difys_env() {
    let ids = ["secrets", "config.hosts", "config.profiles"];
    let full = ["--profile", "app,weaviate", "--shape", "full"];
    for global in [&[][..], &full[..]] {
        let t = Test::new().file("dify.env", &dify_env_example());
        t.run(global.iter().copied().chain(["env", "import", "dify.env"])).assert_status(0);
        t.run(global.iter().copied().chain(["secret", "gen"])).assert_status(0);
        let checks = common::doctor(&t, global, &ids);
        for id in ids {
            common::assert_check(&checks, id, "pass", &[], &[]);
        }
        if global.is_empty() {
            continue;
        }
        // The checks still judge what the stack uses.
        t.set_dotenv("REDIS_HOST", "rediss");
        t.set_dotenv("COMPOSE_PROFILES", "qdrant");
        let checks = common::doctor(&t, global, &ids);
        common::assert_check(&checks, "config.hosts", "fail", &["REDIS_HOST=rediss"], &[]);
        common::assert_check(&checks, "config.profiles", "fail", &["COMPOSE_PROFILES=qdrant"], &[]);
    }
}
