//! Logical dumps and restores with the server image's own tools (`pg_dump`, `pg_dumpall`, `pg_restore`, `psql`)
//! run inside its container: the command lines, their environment, and the reading of their output. Running
//! them (Docker exec, stdout streamed out or stdin streamed in) is the caller's job.
//!
//! Every command connects over the container's local socket as the server's superuser (the image's
//! `POSTGRES_USER`); the password, when given, travels in the environment, never in argv.

use std::collections::BTreeMap;

/// Who runs the tools: the superuser and, optionally, its password.
#[derive(Debug, Clone)]
pub struct Superuser {
    pub user: String,
    pub password: Option<String>,
}

impl Superuser {
    /// The environment every command line here runs with.
    pub fn env(&self) -> Vec<String> {
        let mut env = vec!["PGAPPNAME=ragctl".to_string(), "LC_MESSAGES=C".to_string()];
        if let Some(p) = &self.password {
            env.push(format!("PGPASSWORD={p}"));
        }
        env
    }

    fn psql(&self, database: &str) -> Vec<String> {
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", &self.user, "-d", database]
            .map(str::to_string)
            .to_vec()
    }

    /// psql running one query in `database`, rows on stdout (unaligned, `|`-free: every query here returns one
    /// column or joins its own).
    pub fn query(&self, database: &str, sql: &str) -> Vec<String> {
        let mut argv = self.psql(database);
        argv.extend(["-c".to_string(), sql.to_string()]);
        argv
    }

    /// The databases to dump: every one that accepts connections, templates excepted.
    pub fn list_databases(&self) -> Vec<String> {
        self.query("postgres", "select datname from pg_database where not datistemplate and datallowconn order by 1")
    }

    /// `SHOW server_version_num` (e.g. 150018).
    pub fn server_version_num(&self) -> Vec<String> {
        self.query("postgres", "show server_version_num")
    }

    /// pg_dump of `database` in the custom format to stdout, uncompressed (the archive compresses it once).
    pub fn dump(&self, database: &str) -> Vec<String> {
        ["pg_dump", "-U", &self.user, "-d", database, "-Fc", "-Z", "0"].map(str::to_string).to_vec()
    }

    /// pg_dump of `database` (as [`Superuser::dump`]) in the snapshot of one REPEATABLE READ transaction that first
    /// counts the rows of every table: the counts are exactly the dump's. One psql session, its script on stdin
    /// (argv of `sh`, piped, never a file), exports the snapshot, prints the counts to stderr (each line prefixed
    /// with [`ROWS_MARK`]), and runs pg_dump with `--snapshot` while its transaction stays open; the dump goes to
    /// stdout, pg_dump's exit code to stderr after [`DUMP_EXIT_MARK`].
    pub fn snapshot_dump(&self, database: &str) -> Vec<String> {
        let script = format!(
            "\\set ON_ERROR_STOP 1\n\\o /dev/stderr\n\
             begin isolation level repeatable read, read only;\n\
             select pg_export_snapshot() as ragctl_snapshot \\gset\n\
             select '{ROWS_MARK}' || line from ({ROW_COUNTS_SQL}) counts(line);\n\
             \\setenv RAGCTL_SNAPSHOT :ragctl_snapshot\n\
             \\! {} --snapshot=\"$RAGCTL_SNAPSHOT\"; echo \"{DUMP_EXIT_MARK}$?\" >&2\n\
             commit;\n",
            self.dump(database).iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
        );
        let psql = self.psql(database).iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
        vec!["sh".into(), "-c".into(), format!("printf '%s' \"$1\" | {psql} -f -"), "sh".into(), script]
    }

    /// The roles and tablespaces (with their password hashes) as SQL to stdout.
    pub fn dump_globals(&self) -> Vec<String> {
        ["pg_dumpall", "-U", &self.user, "-g"].map(str::to_string).to_vec()
    }

    /// psql running the SQL on stdin (the globals): errors such as "role already exists" do not stop it.
    pub fn run_script(&self) -> Vec<String> {
        ["psql", "-X", "-q", "-U", &self.user, "-d", "postgres"].map(str::to_string).to_vec()
    }

    /// pg_restore of a custom-format dump read from stdin. `postgres` (the database it connects to) is restored
    /// in place; any other is dropped if present and created from the dump.
    pub fn restore(&self, database: &str) -> Vec<String> {
        let mut argv =
            ["pg_restore", "-U", &self.user, "--exit-on-error", "--clean", "--if-exists"].map(str::to_string).to_vec();
        if database == "postgres" {
            argv.extend(["-d".into(), "postgres".into()]);
        } else {
            argv.extend(["--create".into(), "-d".into(), "postgres".into()]);
        }
        argv
    }

    /// The exact row count of every table of `database`, one query: `schema.table<TAB>count` per line.
    pub fn row_counts(&self, database: &str) -> Vec<String> {
        self.query(database, ROW_COUNTS_SQL)
    }
}

/// `count(*)` of each ordinary or partitioned table outside the system schemas, through `query_to_xml` so one
/// statement counts them all.
const ROW_COUNTS_SQL: &str = "select format('%s.%s', n.nspname, c.relname) || chr(9) || \
     (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
     from pg_class c join pg_namespace n on n.oid = c.relnamespace \
     where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') \
     and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%' order by 1";

/// Marks a row-count line of [`Superuser::snapshot_dump`] on stderr.
pub const ROWS_MARK: &str = "ragctl-rows\t";
/// Marks pg_dump's exit code in [`Superuser::snapshot_dump`]'s stderr.
pub const DUMP_EXIT_MARK: &str = "ragctl-dump-exit ";

/// `arg` single-quoted for sh.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// The lines psql printed with `-A -t`, empty ones dropped.
pub fn lines(stdout: &str) -> Vec<String> {
    stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The output of [`Superuser::row_counts`] as table → rows.
pub fn parse_row_counts(stdout: &str) -> Result<BTreeMap<String, u64>, String> {
    lines(stdout)
        .into_iter()
        .map(|l| {
            let (table, n) = l.rsplit_once('\t').ok_or_else(|| format!("unexpected row-count line `{l}`"))?;
            let n = n.parse().map_err(|_| format!("unexpected row count in `{l}`"))?;
            Ok((table.to_string(), n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_travels_in_the_environment_and_dumps_are_custom_format() {
        let su = Superuser { user: "app".into(), password: Some("s3cret".into()) };
        let dump = su.dump("dify");
        assert_eq!(dump.join(" "), "pg_dump -U app -d dify -Fc -Z 0");
        assert!(!dump.iter().chain(su.restore("dify").iter()).any(|a| a.contains("s3cret")));
        assert!(su.env().contains(&"PGPASSWORD=s3cret".to_string()));
        assert!(su.restore("dify").join(" ").ends_with("--create -d postgres"));
        assert!(!su.restore("postgres").contains(&"--create".to_string()));
    }

    #[test]
    fn the_snapshot_dump_counts_and_dumps_in_one_transaction() {
        let su = Superuser { user: "o'brien".into(), password: Some("s3cret".into()) };
        let argv = su.snapshot_dump("dify");
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert!(argv[2].contains("'-U' 'o'\\''brien'"), "{}", argv[2]);
        let script = &argv[4];
        let at = |needle: &str| script.find(needle).unwrap_or_else(|| panic!("no `{needle}` in {script}"));
        assert!(at("begin isolation level repeatable read") < at("pg_export_snapshot()"));
        assert!(at("pg_export_snapshot()") < at(ROWS_MARK));
        assert!(at(ROWS_MARK) < at("--snapshot=\"$RAGCTL_SNAPSHOT\""));
        assert!(at("--snapshot=") < at("commit;"));
        assert!(!argv.iter().any(|a| a.contains("s3cret")));
    }

    #[test]
    fn majors_and_row_counts_are_read() {
        assert_eq!(crate::postgres::major_of("150018\n"), Some(15));
        assert_eq!(crate::postgres::major_of("90624"), Some(9));
        assert_eq!(crate::postgres::major_of("x"), None);
        let counts = parse_row_counts("public.a\t10000\n\npublic.b c\t0\n").unwrap();
        assert_eq!(counts, BTreeMap::from([("public.a".into(), 10000), ("public.b c".into(), 0)]));
        assert!(parse_row_counts("nonsense").is_err());
    }
}
