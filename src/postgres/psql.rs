//! `psql` in the server's container, for when the host cannot route to it: the command line, its environment
//! (the password travels there, never in argv), and the reading of its output. Running it is the caller's job.

use std::time::Duration;

use super::{Failure, Login, PORT};

/// psql's own field separator: a control character no value of ours contains.
const FIELD_SEPARATOR: &str = "\x1f";

/// How to run one query with psql: `argv(sql)` with `env`.
#[derive(Debug, Clone)]
pub struct Psql {
    base: Vec<String>,
    pub env: Vec<String>,
}

impl Psql {
    /// psql connecting over TCP to `host` (the container's own address, so the password is checked as for any
    /// client: the image trusts local socket connections).
    pub fn new(host: &str, login: &Login, connect_timeout: Duration) -> Psql {
        let port = PORT.to_string();
        let base = [
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            FIELD_SEPARATOR,
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            host,
            "-p",
            &port,
            "-U",
            &login.user,
            "-d",
            &login.database,
            "-c",
        ]
        .map(str::to_string)
        .to_vec();
        let env = vec![
            format!("PGPASSWORD={}", login.password),
            format!("PGCONNECT_TIMEOUT={}", connect_timeout.as_secs()),
            "PGAPPNAME=ragctl".into(),
            "LC_MESSAGES=C".into(),
        ];
        Psql { base, env }
    }

    /// The command line that runs `sql`.
    pub fn argv(&self, sql: &str) -> Vec<String> {
        let mut argv = self.base.clone();
        argv.push(sql.to_string());
        argv
    }
}

/// The rows psql printed (unaligned, tuples only, a control character between columns), or, when it failed, what
/// it said.
pub fn rows(exit_code: i64, stdout: &str, stderr: &str) -> Result<Vec<Vec<String>>, String> {
    if exit_code != 0 {
        let stderr = stderr.trim();
        return Err(if stderr.is_empty() { format!("psql exited {exit_code}") } else { stderr.into() });
    }
    Ok(stdout.lines().map(|l| l.split(FIELD_SEPARATOR).map(str::to_string).collect()).collect())
}

/// What psql's complaint at connection time means. psql does not print SQLSTATE codes on connection failures;
/// its messages are stable (`LC_MESSAGES=C`), so the code is recovered from them.
pub fn connection_failure(stderr: &str) -> Failure {
    let message = last_line(stderr);
    let sqlstate = if stderr.contains("password authentication failed") {
        "28P01"
    } else if stderr.contains("database \"") && stderr.contains("does not exist") {
        "3D000"
    } else if stderr.contains("role \"") && stderr.contains("does not exist") || stderr.contains("no pg_hba.conf entry")
    {
        "28000"
    } else if stderr.contains("starting up") || stderr.contains("shutting down") || stderr.contains("in recovery mode")
    {
        "57P03"
    } else {
        return Failure::Other(message);
    };
    Failure::Server { sqlstate: sqlstate.into(), message }
}

fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().replace("psql: error: ", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_travels_in_the_environment_not_argv() {
        let login = Login { user: "app".into(), password: "s3cret".into(), database: "dify".into() };
        let psql = Psql::new("172.18.0.2", &login, Duration::from_secs(2));
        let argv = psql.argv("select 1");
        assert_eq!(argv.last().map(String::as_str), Some("select 1"));
        assert!(argv.join(" ").contains("-h 172.18.0.2 -p 5432 -U app -d dify -c"));
        assert!(!argv.iter().any(|a| a.contains("s3cret")));
        assert!(psql.env.contains(&"PGPASSWORD=s3cret".to_string()));
        assert!(psql.env.contains(&"PGCONNECT_TIMEOUT=2".to_string()));
    }

    #[test]
    fn output_is_split_into_rows_and_failures_keep_stderr() {
        assert_eq!(rows(0, "a\x1fb\nc\x1f\n", ""), Ok(vec![vec!["a".into(), "b".into()], vec!["c".into(), "".into()]]));
        assert_eq!(rows(2, "", "  psql: error: boom\n"), Err("psql: error: boom".into()));
        assert_eq!(rows(1, "", ""), Err("psql exited 1".into()));
    }

    #[test]
    fn connection_failures_are_given_their_sqlstate() {
        let failed = |stderr: &str| match connection_failure(stderr) {
            Failure::Server { sqlstate, message } => (sqlstate, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            failed("psql: error: connection to server at \"10.0.0.2\", port 5432 failed: FATAL:  password authentication failed for user \"app\"\n"),
            (
                "28P01".into(),
                "connection to server at \"10.0.0.2\", port 5432 failed: FATAL:  password authentication failed for user \"app\"".into()
            )
        );
        assert_eq!(failed("FATAL:  database \"nope\" does not exist").0, "3D000");
        assert_eq!(failed("FATAL:  role \"x\" does not exist").0, "28000");
        assert_eq!(failed("FATAL:  the database system is starting up").0, "57P03");
        assert_eq!(
            connection_failure("could not translate host name\n"),
            Failure::Other("could not translate host name".into())
        );
    }
}
