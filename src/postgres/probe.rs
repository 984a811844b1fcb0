//! `pg_isready`'s verdict over the wire, and the `pg_isready` command line for when the wire is out of reach.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `pg_isready`'s verdict, over the wire: send a protocol 3.0 startup message and read the server's first
/// reply. An authentication request, or any error but 57P03 (`cannot_connect_now`: starting up, shutting
/// down, in recovery), means the server accepts connections. Closing at the authentication request logs
/// nothing on the server; with `trust` authentication the session simply ends.
pub async fn accepting(ip: &str, port: u16, user: &str, database: &str, timeout: Duration) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect((ip, port)).await.ok()?;
        stream.write_all(&startup_message(user, database)).await.ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        // Read the whole message: closing with unread bytes would reset the connection, which the server logs.
        let mut body = vec![0u8; len.saturating_sub(4).min(4096)];
        stream.read_exact(&mut body).await.ok()?;
        let _ = stream.shutdown().await;
        match head[0] {
            // AuthenticationRequest, or NegotiateProtocolVersion: the server is past its startup checks.
            b'R' | b'v' => Some(true),
            b'E' => Some(sqlstate(&body) != Some("57P03")),
            _ => Some(false),
        }
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
}

/// `pg_isready` run next to the server (in its container): exit code 0 when it accepts connections.
pub fn isready_argv(port: u16, user: &str, database: &str) -> Vec<String> {
    ["pg_isready", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", user, "-d", database].map(str::to_string).to_vec()
}

fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (key, value) in [("user", user), ("database", database), ("application_name", "ragctl-ready")] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// The SQLSTATE (`C` field) of an ErrorResponse body.
fn sqlstate(body: &[u8]) -> Option<&str> {
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0)?;
        if code == b'C' {
            return std::str::from_utf8(&tail[..end]).ok();
        }
        rest = &tail[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(500);

    /// A listener that reads one startup message, checks it, and answers with `reply`.
    async fn fake_postgres(reply: Vec<u8>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).await.unwrap();
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
                s.read_exact(&mut body).await.unwrap();
                assert_eq!(&body[..4], &196_608u32.to_be_bytes());
                assert!(body.windows(14).any(|w| w == b"user\0app_user\0"), "startup message names the user");
                s.write_all(&reply).await.unwrap();
            }
        });
        port
    }

    fn error_response(sqlstate: &str) -> Vec<u8> {
        let mut body = b"SFATAL\0C".to_vec();
        body.extend_from_slice(sqlstate.as_bytes());
        body.extend_from_slice(b"\0Mthe database system is starting up\0\0");
        let mut msg = vec![b'E'];
        msg.extend(((body.len() + 4) as u32).to_be_bytes());
        msg.extend(body);
        msg
    }

    #[tokio::test(flavor = "current_thread")]
    async fn postgres_probe_decides_like_pg_isready() {
        let accepting = |port| accepting("127.0.0.1", port, "app_user", "app", TIMEOUT);
        // AuthenticationSASL request: accepting connections.
        let sasl = [b'R', 0, 0, 0, 23, 0, 0, 0, 10].iter().copied().chain(*b"SCRAM-SHA-256\0\0").collect();
        assert!(accepting(fake_postgres(sasl).await).await);
        // Starting up / shutting down: not yet.
        assert!(!accepting(fake_postgres(error_response("57P03")).await).await);
        // Any other error (unknown role, database): the server answers, so it accepts connections.
        assert!(accepting(fake_postgres(error_response("28000")).await).await);
        // Nothing listening.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        assert!(!accepting(closed).await);
        assert_eq!(sqlstate(&error_response("57P03")[5..]), Some("57P03"));
        assert_eq!(sqlstate(b"\0"), None);
    }

    #[test]
    fn pg_isready_asks_the_local_server_as_the_user() {
        assert_eq!(
            isready_argv(5432, "app_user", "app").join(" "),
            "pg_isready -h 127.0.0.1 -p 5432 -U app_user -d app"
        );
    }
}
