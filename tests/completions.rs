//! Shell completions and the man page are generated from the flag definitions.

mod common;
use common::Test;

#[test]
fn completion_scripts_for_every_shell() {
    let t = Test::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = t.run(["completions", shell]);
        r.assert_status(0);
        assert!(r.stdout.contains("doctor") && r.stdout.contains("profile"), "{shell}: {}", r.stdout);
    }
    let bash = t.run(["completions", "bash"]).stdout;
    std::fs::write(t.path().join("ragctl.bash"), bash).unwrap();
    let syntax = std::process::Command::new("bash").arg("-n").arg(t.path().join("ragctl.bash")).output().unwrap();
    assert!(syntax.status.success(), "bash rejects the script: {}", String::from_utf8_lossy(&syntax.stderr));
    t.run(["completions", "tcsh"]).assert_status(2);
}

#[test]
fn man_page_is_roff_with_every_command() {
    let r = Test::new().run(["man"]);
    r.assert_status(0);
    assert!(r.stdout.contains(".TH ragctl 1"), "{}", r.stdout);
    for cmd in ["render", "secret", "up", "down", "doctor", "db"] {
        assert!(r.stdout.contains(cmd), "man page lacks {cmd}");
    }
}
