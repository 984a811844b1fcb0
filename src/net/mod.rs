//! The small protocol clients ragctl speaks by hand: a TCP connect with a deadline, one HTTP/1.0 `GET`
//! ([`http`]) and a RESP (Redis) connection ([`resp`]). A probe needs one request and the start of an answer,
//! not a client library. A seam: it imports nothing of ragctl, and it decides nothing (what an answer means for
//! a service is the caller's business).

pub mod http;
pub mod resp;

use std::io;
use std::time::Duration;

use tokio::net::{TcpStream, ToSocketAddrs};

/// Open a TCP connection to `addr`, giving up after `timeout` (reported as [`io::ErrorKind::TimedOut`]).
pub async fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<TcpStream> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {timeout:?}"))),
    }
}

/// Whether something accepts TCP connections at `addr` within `timeout`.
pub async fn answers(addr: impl ToSocketAddrs, timeout: Duration) -> bool {
    connect(addr, timeout).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_listener_answers_and_a_closed_port_does_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(answers(("127.0.0.1", port), Duration::from_millis(500)).await);
        drop(listener);
        let refused = connect(("127.0.0.1", port), Duration::from_millis(500)).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }
}
