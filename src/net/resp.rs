//! RESP, the Redis protocol: encode a command, parse a reply (incrementally, as bytes arrive).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One RESP reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<String>),
    Array(Option<Vec<Reply>>),
}

/// Parse one reply from the front of `buf`: `Ok(None)` when more bytes are needed, else the reply and its length.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let line = String::from_utf8_lossy(&buf[1..eol]).into_owned();
    let after = eol + 2;
    let int = |s: &str| s.parse::<i64>().map_err(|_| format!("malformed RESP length `{s}`"));
    match buf.first() {
        Some(b'+') => Ok(Some((Reply::Simple(line), after))),
        Some(b'-') => Ok(Some((Reply::Error(line), after))),
        Some(b':') => Ok(Some((Reply::Integer(int(&line)?), after))),
        Some(b'$') => {
            let len = int(&line)?;
            if len < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let end = after + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((Reply::Bulk(Some(String::from_utf8_lossy(&buf[after..end]).into_owned())), end + 2)))
        }
        Some(b'*') => {
            let len = int(&line)?;
            if len < 0 {
                return Ok(Some((Reply::Array(None), after)));
            }
            let mut items = Vec::new();
            let mut pos = after;
            for _ in 0..len {
                match parse_reply(&buf[pos..])? {
                    Some((item, used)) => {
                        items.push(item);
                        pos += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        Some(other) => Err(format!("not a Redis reply (starts with {:?})", *other as char)),
        None => Ok(None),
    }
}

pub fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A connection to a RESP server; replies are read as far as each command needs.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    timeout: Duration,
}

impl Connection {
    /// Speak RESP over `stream`; each command (request and reply) may take up to `timeout`.
    pub fn new(stream: TcpStream, timeout: Duration) -> Connection {
        Connection { stream, buf: Vec::new(), timeout }
    }

    /// Send one command and read its reply.
    pub async fn command(&mut self, args: &[&str]) -> io::Result<Reply> {
        tokio::time::timeout(self.timeout, async {
            self.stream.write_all(&encode_command(args)).await?;
            loop {
                if let Some((reply, used)) =
                    parse_reply(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no reply (timed out)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_replies_parse_incrementally() {
        assert_eq!(parse_reply(b"+PONG\r\n").unwrap(), Some((Reply::Simple("PONG".into()), 7)));
        assert_eq!(parse_reply(b"+PON").unwrap(), None);
        assert_eq!(
            parse_reply(b"-WRONGPASS invalid username-password pair\r\n").unwrap().unwrap().0,
            Reply::Error("WRONGPASS invalid username-password pair".into())
        );
        let config = b"*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n";
        assert_eq!(
            parse_reply(config).unwrap(),
            Some((
                Reply::Array(Some(vec![
                    Reply::Bulk(Some("maxmemory-policy".into())),
                    Reply::Bulk(Some("noeviction".into()))
                ])),
                config.len()
            ))
        );
        assert_eq!(parse_reply(&config[..config.len() - 3]).unwrap(), None, "incomplete bulk string");
        assert_eq!(parse_reply(b"$-1\r\n").unwrap().unwrap().0, Reply::Bulk(None));
        assert_eq!(parse_reply(b":12\r\n").unwrap().unwrap().0, Reply::Integer(12));
        assert!(parse_reply(b"HTTP/1.1 400\r\n").is_err());
    }

    #[test]
    fn commands_are_encoded_as_resp_arrays() {
        assert_eq!(encode_command(&["AUTH", "pw"]), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n".to_vec());
    }
}
