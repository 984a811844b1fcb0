//! No command that reads `.env` and talks to the Docker engine prints a secret value: `up`, `down`, `ps`,
//! `logs`, `restart`, `doctor`, `db check` and `backup`, each as text, as JSON and verbose, against a real stack
//! (the local test images, see tests/images), with a wrong `DB_PASSWORD` among them so that the error paths are scanned
//! too. The commands that need no engine (`init`, `render`, `env import`, `secret ...`) are scanned in
//! tests/secret_cli.rs. `secret list --show` proves the scan can fail: it does print every value.
//!
//! Runs under its own project name on free host ports; the [`Project`] guard removes whatever it created.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Project, require_docker};

/// How each command is run: text, JSON, and the most verbose text.
const VARIANTS: [&str; 3] = ["-v", "-v --format json", "-vv"];

/// A wrong password put into `.env` for the error paths; it must not be printed either.
const WRONG_DB_PASSWORD: &str = "Wrong0Db1Password2Never3Printed4abcdef";

/// Secret name → value in the project's `.env`, for the secrets `secret list --format json` names.
fn secrets_in_env(project: &Project) -> BTreeMap<String, String> {
    let list = project.ragctl(&["--format", "json", "secret", "list"]);
    list.assert_status(0);
    let names: BTreeSet<String> = list
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("secret list --format json is not an array:\n{}", list.stdout))
        .iter()
        .map(|row| row["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let value = project.test.dotenv_value(&name);
            (!value.is_empty()).then_some((name, value))
        })
        .collect()
}

/// Everything the commands printed, and every secret value `.env` held meanwhile.
struct Scan<'p> {
    project: &'p Project,
    transcripts: Vec<(String, String)>,
    needles: BTreeSet<String>,
}

impl Scan<'_> {
    /// `ragctl -p <project> LINE` (split on spaces), which must exit `expected`; keeps its output for the scan and
    /// collects the secret values `.env` holds afterwards (the first `up` generates them).
    #[track_caller]
    fn run(&mut self, line: &str, expected: i32) {
        let args: Vec<&str> = line.split_whitespace().collect();
        let run = self.project.ragctl(&args);
        run.assert_status(expected);
        self.transcripts.push((line.to_string(), format!("{}\n{}", run.stdout, run.stderr)));
        self.needles.extend(secrets_in_env(self.project).into_values());
    }

    /// `run` in every variant: `-v COMMAND`, `-v --format json COMMAND`, `-vv COMMAND`.
    #[track_caller]
    fn run_variants(&mut self, command: &str, expected: i32) {
        for variant in VARIANTS {
            self.run(&format!("{variant} {command}"), expected);
        }
    }
}

#[test]
fn no_engine_command_prints_a_secret_value_as_text_json_or_verbose() {
    if !require_docker() {
        return;
    }
    let project = Project::new("leaks");
    let mut scan = Scan { project: &project, transcripts: Vec::new(), needles: BTreeSet::new() };

    // The first `up` generates the secrets; the later ones find the stack deployed.
    scan.run_variants("up --progress plain", 0);
    for command in ["ps", "logs", "logs --tail 5 redis", "restart", "doctor", "db check", "backup"] {
        scan.run_variants(command, 0);
    }

    // The error paths: the data directory keeps the password it was initialised with, `.env` now says another.
    let db_password = project.test.dotenv_value("DB_PASSWORD");
    project.test.set_dotenv("DB_PASSWORD", WRONG_DB_PASSWORD);
    scan.run_variants("db check", 1);
    scan.run_variants("doctor --check postgres.version", 1);
    project.test.set_dotenv("DB_PASSWORD", &db_password);

    // `down` in each variant, with the stack brought up again in between.
    for (i, variant) in VARIANTS.iter().enumerate() {
        if i > 0 {
            scan.run("up --progress plain", 0);
        }
        scan.run(&format!("{variant} down"), 0);
    }

    let Scan { transcripts, needles, .. } = scan;
    let current = secrets_in_env(&project);
    assert!(current.len() >= 3, "DB_PASSWORD, REDIS_PASSWORD and WEAVIATE_API_KEY at least: {current:?}");
    assert!(needles.contains(WRONG_DB_PASSWORD), "the wrong password was not collected");
    assert!(needles.iter().all(|n| n.len() >= 12), "a short needle would make the scan meaningless: {needles:?}");
    assert_eq!(transcripts.len(), 3 * 8 + 3 * 2 + 2 + 3, "every command in every variant was scanned");
    for (command, output) in &transcripts {
        for needle in &needles {
            assert!(
                !output.contains(needle.as_str()),
                "`ragctl {command}` printed the secret value {needle:?}:\n{output}"
            );
        }
    }

    // The scan can fail: `secret list --show` prints every current value, as text and as JSON.
    let show = project.ragctl(&["secret", "list", "--show"]);
    show.assert_status(0);
    for (name, value) in &current {
        assert!(show.stdout.contains(value.as_str()), "--show must print {name}:\n{}", show.stdout);
    }
    let show_json = project.ragctl(&["--format", "json", "secret", "list", "--show"]);
    show_json.assert_status(0);
    let shown: BTreeMap<String, String> = show_json
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("secret list --show --format json is not an array:\n{}", show_json.stdout))
        .iter()
        .map(|row| (row["name"].as_str().unwrap_or_default().into(), row["value"].as_str().unwrap_or_default().into()))
        .collect();
    for (name, value) in &current {
        assert_eq!(shown.get(name), Some(value), "--show --format json must print {name}");
    }
}
