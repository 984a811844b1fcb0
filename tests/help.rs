//! Every `--help` is pinned by a snapshot, so a changed flag or description is a reviewed change.

mod common;
use common::Test;

#[test]
fn help_of_every_command() {
    let commands: &[&[&str]] = &[
        &[],
        &["init"],
        &["render"],
        &["profiles"],
        &["secret"],
        &["secret", "gen"],
        &["secret", "list"],
        &["secret", "check"],
        &["env"],
        &["env", "import"],
        &["up"],
        &["down"],
        &["ps"],
        &["logs"],
        &["restart"],
        &["doctor"],
        &["db"],
        &["db", "check"],
        &["completions"],
        &["man"],
    ];
    let t = Test::new();
    for args in commands {
        let mut argv: Vec<&str> = args.to_vec();
        argv.push("--help");
        let r = t.run(&argv);
        r.assert_status(0);
        let name = if args.is_empty() { "ragctl".to_string() } else { format!("ragctl_{}", args.join("_")) };
        insta::assert_snapshot!(name, r.stdout);
    }
}

#[test]
fn version_prints_name_and_version() {
    let r = Test::new().run(["--version"]);
    r.assert_status(0);
    assert_eq!(r.stdout, format!("ragctl {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn missing_subcommand_is_a_usage_error() {
    let r = Test::new().run(Vec::<&str>::new());
    r.assert_status(2);
    assert!(r.stderr.contains("Usage: ragctl"), "{}", r.stderr);
}
