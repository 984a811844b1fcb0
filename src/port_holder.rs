//! Host-side answer to "can `ragctl up` publish this port, and if not, who holds it?".
//!
//! [`is_free`] tries to bind the address; [`holders`] maps a taken TCP port to the local processes listening on it
//! by reading `/proc/net/tcp{,6}` and the `/proc/PID/fd` socket links (Linux only; elsewhere it finds nobody).
//! This module must not talk to Docker: when the holder is `docker-proxy`, the caller asks Docker which container
//! published the port. It must not kill or signal anything either; it only reports.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

/// Why a port could not be probed. A taken port is not an error (`is_free` returns `Ok(false)`); these are the
/// cases where the answer is unknown.
#[derive(Debug, thiserror::Error)]
pub enum PortProbeError {
    /// The host part of a port mapping is not an IP address.
    #[error("invalid host address `{ip}` for port {port}")]
    InvalidAddress { ip: String, port: u16 },

    /// The address is not assigned to any interface of this host (EADDRNOTAVAIL), so nothing could ever bind it.
    #[error("failed to bind `{addr}`: the address is not on this host")]
    AddressNotAvailable { addr: SocketAddr },

    /// Binding a privileged port needs root or `CAP_NET_BIND_SERVICE`; whether the port is taken is unknown.
    #[error("failed to bind `{addr}`: permission denied")]
    PermissionDenied { addr: SocketAddr },

    #[error("failed to bind `{addr}`: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl PortProbeError {
    /// The next step for the operator, shown after the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            PortProbeError::InvalidAddress { .. } => {
                Some("use an IP address such as `0.0.0.0`, `127.0.0.1` or `::` as the host part".to_string())
            }
            PortProbeError::AddressNotAvailable { .. } => Some(
                "publish on `0.0.0.0` or on an address listed by `ip -brief address`, or change it in `.env`"
                    .to_string(),
            ),
            PortProbeError::PermissionDenied { addr } => Some(format!(
                "ports below 1024 can only be checked as root; run `sudo ss -ltnp 'sport = :{}'` to see who holds it",
                addr.port()
            )),
            PortProbeError::Bind { .. } => None,
        }
    }
}

/// Whether TCP `ip:port` can be bound right now (`ip` is e.g. `0.0.0.0`, `127.0.0.1`, `::` or `[::]`).
///
/// Binds a listener and drops it at once. `Ok(false)` means the address is in use; errors mean the question
/// cannot be answered (see [`PortProbeError`]). std sets `SO_REUSEADDR` on Unix, so connections lingering in
/// TIME_WAIT do not count as "in use" — only a listener does, which is what would make `docker run -p` fail.
pub fn is_free(ip: &str, port: u16) -> Result<bool, PortProbeError> {
    // Docker and compose files write IPv6 hosts both bare (`::`) and bracketed (`[::]`).
    let bare = ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(ip);
    let ip_addr: IpAddr = bare.parse().map_err(|_| PortProbeError::InvalidAddress { ip: ip.to_string(), port })?;
    let addr = SocketAddr::new(ip_addr, port);
    match TcpListener::bind(addr) {
        Ok(listener) => {
            drop(listener);
            Ok(true)
        }
        Err(e) => match e.kind() {
            io::ErrorKind::AddrInUse => Ok(false),
            io::ErrorKind::AddrNotAvailable => Err(PortProbeError::AddressNotAvailable { addr }),
            io::ErrorKind::PermissionDenied => Err(PortProbeError::PermissionDenied { addr }),
            _ => Err(PortProbeError::Bind { addr, source: e }),
        },
    }
}

/// A local process that has a listening TCP socket on the port asked about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortHolder {
    pub pid: u32,
    /// `/proc/PID/comm`: the executable name, at most 15 bytes (kernel limit).
    pub name: String,
    /// `/proc/PID/cmdline` with arguments joined by spaces, shortened to about [`CMDLINE_MAX_CHARS`] characters.
    pub cmdline: String,
}

/// Long enough to tell `postgres -D /var/lib/...` from `nginx: worker process`, short enough for one line.
pub const CMDLINE_MAX_CHARS: usize = 120;

impl PortHolder {
    /// True when the holder is Docker's userland proxy: the port belongs to a container, which the caller looks up.
    pub fn is_docker_proxy(&self) -> bool {
        self.name == "docker-proxy"
    }
}

/// Every process listening on TCP `port` on any local address, IPv4 or IPv6, each pid once, sorted by pid.
///
/// Processes whose fds this user cannot read (other users', without root) are skipped, so an empty result for a
/// port that [`is_free`] reports taken means "held by a process this user cannot see". Always empty off Linux.
pub fn holders(port: u16) -> Vec<PortHolder> {
    #[cfg(target_os = "linux")]
    {
        linux::holders(port)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        Vec::new()
    }
}

/// The TCP state code of a listening socket in `/proc/net/tcp` (`TCP_LISTEN` in the kernel's `tcp_states.h`).
const TCP_LISTEN_STATE: &str = "0A";

/// Socket inodes of the LISTEN-state sockets on `port` in the text of `/proc/net/tcp` or `/proc/net/tcp6`,
/// sorted and without duplicates. Lines that do not parse (the header, a future format) are ignored, because a
/// probe that finds nobody is better than one that aborts `up`.
fn listening_inodes(text: &str, port: u16) -> Vec<u64> {
    let mut inodes: Vec<u64> = text
        .lines()
        .filter_map(|line| {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != TCP_LISTEN_STATE {
                return None;
            }
            // The local address is HEXADDR:HEXPORT; the port is big-endian hex for both v4 and v6.
            let (_, port_hex) = local.rsplit_once(':')?;
            if u16::from_str_radix(port_hex, 16).ok()? != port {
                return None;
            }
            // Inode 0 means the socket is being torn down and no fd can point at it.
            inode.parse::<u64>().ok().filter(|&i| i != 0)
        })
        .collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes
}

/// The socket inode an fd link points at: `socket:[12345]` → 12345. Other links (files, pipes) give `None`.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// `/proc/PID/cmdline` bytes as one line: NUL-separated arguments joined by spaces, shortened with `…`.
fn format_cmdline(raw: &[u8]) -> String {
    let joined = String::from_utf8_lossy(raw).replace('\0', " ");
    let trimmed = joined.trim_end();
    match trimmed.char_indices().nth(CMDLINE_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{PortHolder, format_cmdline, listening_inodes, socket_inode};
    use std::fs;
    use std::path::Path;

    pub(super) fn holders(port: u16) -> Vec<PortHolder> {
        let mut inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            // A host without IPv6 has no tcp6 file; that only means no IPv6 listener.
            .filter_map(|path| fs::read_to_string(path).ok())
            .flat_map(|text| listening_inodes(&text, port))
            .collect();
        inodes.sort_unstable();
        inodes.dedup();
        if inodes.is_empty() {
            return Vec::new();
        }

        let Ok(proc_entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut found: Vec<PortHolder> = proc_entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| owns_any(pid, &inodes))
            .filter_map(describe)
            .collect();
        found.sort_by_key(|h| h.pid);
        found
    }

    /// Whether one of `pid`'s fds is a socket in `inodes` (sorted). Stops at the first match; a process whose
    /// fd directory cannot be read (another user's, or one that just exited) counts as not owning it.
    fn owns_any(pid: u32, inodes: &[u64]) -> bool {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
            .any(|link| link.to_str().and_then(socket_inode).is_some_and(|inode| inodes.binary_search(&inode).is_ok()))
    }

    /// Name and command line of `pid`; `None` when it exited since its fds were read, as it no longer holds the port.
    fn describe(pid: u32) -> Option<PortHolder> {
        let dir = Path::new("/proc").join(pid.to_string());
        let name = fs::read_to_string(dir.join("comm")).ok()?.trim_end_matches('\n').to_string();
        // Kernel threads and zombies have an empty cmdline; the name still identifies them.
        let cmdline = fs::read(dir.join("cmdline")).map(|raw| format_cmdline(&raw)).unwrap_or_default();
        Some(PortHolder { pid, name, cmdline })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP4: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 41111 1 0000000000000000 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 42222 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1538 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   999        0 43333 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:D2F0 0100007F:1538 01 00000000:00000000 00:00000000 00000000  1000        0 44444 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:1538 0100007F:D2F2 06 00000000:00000000 03:00000F2A 00000000     0        0 0 3 0000000000000000
";

    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 51111 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 52222 1 0000000000000000 100 0 0 10 0
   2: 00000000000000000000000001000000:1538 00000000000000000000000001000000:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 53333 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn ipv4_listener_on_5432_is_found_and_established_connections_are_not() {
        // 0100007F:1538 is 127.0.0.1:5432; line 2 is an accepted connection on the same local port (state 01).
        assert_eq!(listening_inodes(TCP4, 5432), vec![41111]);
    }

    #[test]
    fn ipv4_port_is_matched_exactly() {
        assert_eq!(listening_inodes(TCP4, 80), vec![42222]);
        // 0xD2F0 is only ever a client-side port here, never listening.
        assert_eq!(listening_inodes(TCP4, 0xD2F0), Vec::<u64>::new());
        assert_eq!(listening_inodes(TCP4, 5433), Vec::<u64>::new());
    }

    #[test]
    fn ipv6_listeners_are_found() {
        assert_eq!(listening_inodes(TCP6, 5432), vec![51111]);
        assert_eq!(listening_inodes(TCP6, 8080), vec![52222]);
    }

    #[test]
    fn header_garbage_and_empty_text_give_nothing() {
        assert!(listening_inodes("", 5432).is_empty());
        assert!(listening_inodes("not a table\n 0: zz:zz 00:00 0A x y z 1 2 notanumber\n", 5432).is_empty());
    }

    #[test]
    fn duplicate_inodes_are_listed_once() {
        let doubled = format!("{TCP4}{}", TCP4.lines().nth(1).unwrap_or_default());
        assert_eq!(listening_inodes(&doubled, 5432), vec![41111]);
    }

    #[test]
    fn socket_links_are_parsed_and_other_links_ignored() {
        assert_eq!(socket_inode("socket:[41111]"), Some(41111));
        assert_eq!(socket_inode("pipe:[41111]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn cmdline_nuls_become_spaces_and_long_lines_are_cut() {
        assert_eq!(format_cmdline(b"nginx: worker process\0"), "nginx: worker process");
        assert_eq!(format_cmdline(b"postgres\0-D\0/var/lib/postgresql/data\0"), "postgres -D /var/lib/postgresql/data");
        assert_eq!(format_cmdline(b""), "");
        let long = format_cmdline("é".repeat(300).as_bytes());
        assert_eq!(long.chars().count(), CMDLINE_MAX_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn docker_proxy_is_recognised_by_name() {
        let proxy = PortHolder { pid: 1, name: "docker-proxy".into(), cmdline: String::new() };
        let nginx = PortHolder { pid: 2, name: "nginx".into(), cmdline: String::new() };
        assert!(proxy.is_docker_proxy());
        assert!(!nginx.is_docker_proxy());
    }

    #[test]
    fn a_bound_port_is_taken_and_held_by_this_process_until_dropped() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();

        assert!(!is_free("127.0.0.1", port).expect("probe 127.0.0.1"));
        // A wildcard publish overlaps the loopback listener, which is what `docker run -p PORT:..` would hit.
        assert!(!is_free("0.0.0.0", port).expect("probe 0.0.0.0"));

        #[cfg(target_os = "linux")]
        {
            let found = holders(port);
            let me = found.iter().find(|h| h.pid == std::process::id());
            let me = me.unwrap_or_else(|| panic!("own pid not among holders of {port}: {found:?}"));
            assert!(!me.name.is_empty());
            assert!(!me.is_docker_proxy());
        }

        drop(listener);
        assert!(is_free("127.0.0.1", port).expect("probe after drop"));
        Ok(())
    }

    #[test]
    fn a_free_port_has_no_holders() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        assert!(holders(port).is_empty());
        Ok(())
    }

    #[test]
    fn an_address_not_on_this_host_is_a_typed_error() {
        // 203.0.113.0/24 is TEST-NET-3 (RFC 5737): never assigned to a real interface.
        match is_free("203.0.113.7", 5432) {
            Err(PortProbeError::AddressNotAvailable { addr }) => {
                assert_eq!(addr.to_string(), "203.0.113.7:5432");
            }
            other => panic!("expected AddressNotAvailable, got {other:?}"),
        }
    }

    #[test]
    fn a_malformed_address_is_a_typed_error() {
        assert!(matches!(is_free("localhost", 80), Err(PortProbeError::InvalidAddress { .. })));
        assert!(matches!(is_free("[::1", 80), Err(PortProbeError::InvalidAddress { .. })));
    }

    #[test]
    fn bracketed_ipv6_is_accepted() -> io::Result<()> {
        // Skip silently only when this host has no IPv6 loopback at all.
        let Ok(listener) = TcpListener::bind("[::1]:0") else { return Ok(()) };
        let port = listener.local_addr()?.port();
        assert!(!is_free("[::1]", port).expect("probe [::1]"));
        assert!(!is_free("::1", port).expect("probe ::1"));
        Ok(())
    }
}
