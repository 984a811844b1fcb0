//! One HTTP/1.0 `GET`: HTTP/1.0 so the answer is never chunked and the server closes when it is done.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response's status and body (headers are not kept: no caller needs them).
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

impl HttpResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How long a [`get`] may take: to connect, then to send the request and read the answer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub exchange: Duration,
}

/// GET `path` from `host:port` (with `Authorization: Bearer` when `bearer` is set) and read the answer to the end.
pub async fn get(
    host: &str,
    port: u16,
    path: &str,
    bearer: Option<&str>,
    timeouts: Timeouts,
) -> io::Result<HttpResponse> {
    let mut stream = super::connect((host, port), timeouts.connect).await?;
    let auth = bearer.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n{auth}Connection: close\r\n\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))
    };
    tokio::time::timeout(timeouts.exchange, exchange)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no HTTP response (timed out)")))
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next()?;
    if !status_line.starts_with("HTTP/") {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some(HttpResponse { status, body: body.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_and_body() {
        let r = parse_response(b"HTTP/1.0 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (401, "{}"));
        assert!(!r.is_success());
        assert!(parse_response(b"-ERR wrong protocol\r\n").is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn get_talks_to_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let reply = if req.starts_with("GET /ready ") && req.contains("Authorization: Bearer k\r\n") {
                    "HTTP/1.0 200 OK\r\n\r\nready"
                } else {
                    "HTTP/1.0 503 No\r\n\r\n"
                };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        let timeouts = Timeouts { connect: Duration::from_millis(500), exchange: Duration::from_millis(500) };
        let ready = get("127.0.0.1", port, "/ready", Some("k"), timeouts).await.unwrap();
        assert!(ready.is_success());
        assert_eq!(ready.body, "ready");
        assert_eq!(get("127.0.0.1", port, "/ready", None, timeouts).await.unwrap().status, 503);
        assert_eq!(get("127.0.0.1", port, "/other", Some("k"), timeouts).await.unwrap().status, 503);
    }
}
