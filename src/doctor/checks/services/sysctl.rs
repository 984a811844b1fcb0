//! Host kernel settings services need (`vm.max_map_count` for Elasticsearch-like services).

use std::io;

use super::endpoint::remote_docker_host;
use crate::doctor::{DoctorContext, Outcome};

/// The highest `vm.max_map_count` an enabled service declares, and which service.
pub(super) fn required_max_map_count(ctx: &DoctorContext) -> Option<(u64, String)> {
    let stack = ctx.stack.as_ref().ok()?;
    stack
        .services
        .values()
        .filter_map(|s| s.host_sysctls.get("vm.max_map_count").map(|v| (*v, s.name.clone())))
        .max_by_key(|(v, _)| *v)
}

pub(super) fn vm_max_map_count(ctx: &DoctorContext) -> Outcome {
    let Some((required, service)) = required_max_map_count(ctx) else {
        return Outcome::skip("no enabled service needs vm.max_map_count");
    };
    if let Some(remote) = ctx.settings.docker_host.as_deref().and_then(remote_docker_host)
        && remote != "localhost"
        && remote != "127.0.0.1"
    {
        return Outcome::skip(format!(
            "Docker runs on `{remote}`: run `sysctl vm.max_map_count` there (`{service}` needs {required})"
        ));
    }
    assess_max_map_count(std::fs::read_to_string("/proc/sys/vm/max_map_count"), required, &service)
}

fn assess_max_map_count(read: io::Result<String>, required: u64, service: &str) -> Outcome {
    let have = match read.map(|s| s.trim().parse::<u64>()) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return Outcome::fail(format!("/proc/sys/vm/max_map_count is not a number: {e}"), "check the kernel");
        }
        Err(e) => return Outcome::skip(format!("cannot read /proc/sys/vm/max_map_count ({e}): not a Linux host?")),
    };
    if have >= required {
        Outcome::pass(format!("vm.max_map_count is {have} (`{service}` needs {required})"))
    } else {
        Outcome::fail(
            format!("vm.max_map_count is {have}; `{service}` needs at least {required}"),
            format!(
                "sudo sysctl -w vm.max_map_count={required} (and `echo vm.max_map_count={required} | sudo tee \
                 /etc/sysctl.d/99-ragctl.conf` to keep it after a reboot)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn max_map_count_against_requirement() {
        assert_eq!(assess_max_map_count(Ok("262144\n".into()), 262144, "milvus").status, Status::Pass);
        let low = assess_max_map_count(Ok("65530\n".into()), 262144, "milvus");
        assert_eq!(low.status, Status::Fail);
        assert!(low.hint.unwrap().contains("sysctl -w vm.max_map_count=262144"));
        let missing = assess_max_map_count(Err(io::Error::from(io::ErrorKind::NotFound)), 1, "milvus");
        assert_eq!(missing.status, Status::Skip);
    }
}
