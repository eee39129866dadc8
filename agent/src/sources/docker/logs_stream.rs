//! The logs API, read straight from the daemon's socket: many log entries per read.
//!
//! Why not bollard here: it reads the body through hyper, which hands it over one HTTP chunk
//! at a time, and dockerd writes every log entry as its own chunk. So every line cost a
//! wake-up of hyper's connection task and then of the follower: two thread switches, about a
//! quarter of the Docker source's CPU (measured with `perf` on `docker_bench`). This reader
//! sends the same `GET /containers/<id>/logs` on a connection of its own and decodes HTTP/1.1
//! (status line, headers, a chunked or plain body) and Docker's stream format from one
//! buffer, so one read of up to 64 KiB yields every entry in it. Entries are slices of that
//! buffer, not copies. Every other API call still goes through bollard.
//!
//! The items and errors are bollard's, decoded the way bollard decodes them (a first byte
//! above 2 means a TTY's raw stream, cut at newlines; otherwise 8-byte multiplexing headers),
//! so the follower cannot tell the two apart, and its tests feed either.

use bollard::container::LogOutput;
use bollard::errors::Error;
use bytes::{Buf, BytesMut};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How much is read from the socket at a time.
const READ_SIZE: usize = 64 * 1024;

/// Longest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Longest error body read to find Docker's message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How long connecting and receiving the response head may take (the body is a stream).
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The logs of container `id` on the daemon at `host` (as `client::resolve_host` gives it),
/// speaking API `version` (`"1.47"`), following, with timestamps, both streams, from Unix
/// second `since`.
pub fn logs(
    host: &str,
    version: &str,
    id: &str,
    since: i32,
) -> impl Stream<Item = Result<LogOutput, Error>> + Send + 'static {
    let request = format!(
        "GET /v{version}/containers/{id}/logs?follow=1&stdout=1&stderr=1&timestamps=1&since={since} HTTP/1.1\r\n\
         Host: docker\r\nUser-Agent: logship/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let host = host.to_owned();
    futures::stream::unfold(State::Connect { host, request }, |state| async move {
        let mut body = match state {
            State::Connect { host, request } => match open(&host, &request).await {
                Ok(body) => body,
                Err(e) => return Some((Err(e), State::Done)),
            },
            State::Body(body) => body,
            State::Done => return None,
        };
        match body.next_output().await {
            Ok(Some(output)) => Some((Ok(output), State::Body(body))),
            Ok(None) => None,
            Err(e) => Some((Err(e), State::Done)),
        }
    })
}

enum State {
    Connect { host: String, request: String },
    Body(Box<LogsBody>),
    Done,
}

/// Connects, sends `request`, and reads the response head; a status other than 200 becomes
/// bollard's `DockerResponseServerError` with Docker's message.
async fn open(host: &str, request: &str) -> Result<Box<LogsBody>, Error> {
    let head = async {
        let mut io = connect(host).await?;
        io.write_all(request.as_bytes()).await?;
        let mut body = Box::new(LogsBody::new(io));
        let status = body.read_head().await?;
        Ok::<_, Error>((status, body))
    };
    let (status, mut body) = tokio::time::timeout(HEAD_TIMEOUT, head)
        .await
        .map_err(|_| Error::RequestTimeoutError)??;
    if status == 200 {
        return Ok(body);
    }
    let text = body.read_to_end(MAX_ERROR_BODY).await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    let message = serde_json::from_slice::<Message>(&text)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&text).trim().to_owned());
    Err(Error::DockerResponseServerError {
        status_code: status,
        message,
    })
}

trait Io: AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

async fn connect(host: &str) -> std::io::Result<Box<dyn Io>> {
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(Box::new(tokio::net::UnixStream::connect(path).await?));
    }
    if host.starts_with('/') {
        return Ok(Box::new(tokio::net::UnixStream::connect(host).await?));
    }
    let addr = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host)
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(Box::new(stream))
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Transfer-Encoding: chunked`: decoding, in this state.
    Chunked(Chunk),
    /// `Content-Length`: this many bytes left.
    Length(u64),
    /// Neither: the body ends when the connection does.
    UntilClose,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// The last (empty) chunk was seen.
    Last,
}

/// A logs response after its head: raw socket bytes in, Docker's stream out.
struct LogsBody {
    io: Box<dyn Io>,
    /// Bytes read but not yet de-framed from HTTP.
    raw: BytesMut,
    /// The body so far, not yet cut into log entries.
    body: BytesMut,
    framing: Framing,
    /// The body has ended (no more bytes will be added to `body`).
    ended: bool,
    /// The 8-byte header of the entry being waited for: stream type and length.
    pending: Option<(u8, usize)>,
}

fn io_error(message: &str) -> Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned()).into()
}

impl LogsBody {
    fn new(io: Box<dyn Io>) -> Self {
        Self {
            io,
            raw: BytesMut::with_capacity(READ_SIZE),
            body: BytesMut::new(),
            framing: Framing::UntilClose,
            ended: false,
            pending: None,
        }
    }

    /// Reads more from the socket into `raw`; false at the end of the connection.
    async fn fill(&mut self) -> Result<bool, Error> {
        self.raw.reserve(READ_SIZE);
        Ok(self.io.read_buf(&mut self.raw).await? > 0)
    }

    /// Reads the status line and headers; returns the status code.
    async fn read_head(&mut self) -> Result<u16, Error> {
        let end = loop {
            if let Some(i) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if self.raw.len() > MAX_HEAD {
                return Err(io_error(
                    "the Docker daemon sent an over-long response head",
                ));
            }
            if !self.fill().await? {
                return Err(io_error(
                    "the Docker daemon closed the connection before answering",
                ));
            }
        };
        let head = self.raw.split_to(end + 4);
        let text = String::from_utf8_lossy(&head);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io_error("the Docker daemon sent no HTTP status"))?;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                self.framing = Framing::Chunked(Chunk::Size);
            } else if name.eq_ignore_ascii_case("content-length")
                && !matches!(self.framing, Framing::Chunked(_))
            {
                let n = value
                    .parse()
                    .map_err(|_| io_error("the Docker daemon sent a bad Content-Length"))?;
                self.framing = Framing::Length(n);
            }
        }
        self.unframe()?;
        Ok(status)
    }

    /// Moves what `raw` holds of the body into `body`, undoing the HTTP framing.
    fn unframe(&mut self) -> Result<(), Error> {
        loop {
            match self.framing {
                Framing::UntilClose => {
                    self.body.extend_from_slice(&self.raw);
                    self.raw.clear();
                    return Ok(());
                }
                Framing::Length(left) => {
                    let left = self.take_body(left);
                    self.framing = Framing::Length(left);
                    self.ended |= left == 0;
                    return Ok(());
                }
                Framing::Chunked(Chunk::Size) => {
                    let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                        if self.raw.len() > 1024 {
                            return Err(io_error("the Docker daemon sent a bad chunk size"));
                        }
                        return Ok(());
                    };
                    let line = &self.raw[..eol];
                    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
                        .ok_or_else(|| io_error("the Docker daemon sent a bad chunk size"))?;
                    self.raw.advance(eol + 2);
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Last
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    if self.raw.is_empty() {
                        return Ok(());
                    }
                    let left = self.take_body(left);
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if self.raw.len() < 2 {
                        return Ok(());
                    }
                    if &self.raw[..2] != b"\r\n" {
                        return Err(io_error("the Docker daemon sent a bad chunk"));
                    }
                    self.raw.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Last) => {
                    // Trailers, if any, are of no interest.
                    self.ended = true;
                    self.raw.clear();
                    return Ok(());
                }
            }
        }
    }

    /// Moves up to `left` body bytes from `raw` to `body`; returns how many are still to come.
    fn take_body(&mut self, left: u64) -> u64 {
        let n = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(self.raw.len());
        self.body.extend_from_slice(&self.raw[..n]);
        self.raw.advance(n);
        left - n as u64
    }

    /// The next log entry, or `None` at the end of the log.
    async fn next_output(&mut self) -> Result<Option<LogOutput>, Error> {
        loop {
            if let Some(output) = self.cut() {
                return Ok(Some(output));
            }
            if self.ended {
                return Ok(self.rest());
            }
            if !self.fill().await? {
                if matches!(self.framing, Framing::UntilClose) {
                    self.ended = true;
                    continue;
                }
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            self.unframe()?;
        }
    }

    /// Cuts the next whole entry off `body`, as bollard's decoder does.
    fn cut(&mut self) -> Option<LogOutput> {
        if self.pending.is_none() {
            let first = *self.body.first()?;
            if first > 2 {
                // A TTY's raw stream: one item per line.
                let nl = self.body.iter().position(|&b| b == b'\n')?;
                let message = self.body.split_to(nl + 1).freeze();
                return Some(LogOutput::Console { message });
            }
            if self.body.len() < 8 {
                return None;
            }
            let h = self.body.split_to(8);
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            self.pending = Some((h[0], len));
        }
        let (kind, len) = self.pending?;
        if self.body.len() < len {
            return None;
        }
        self.pending = None;
        let message = self.body.split_to(len).freeze();
        Some(match kind {
            0 => LogOutput::StdIn { message },
            1 => LogOutput::StdOut { message },
            _ => LogOutput::StdErr { message },
        })
    }

    /// At the end of the body: whatever is left, as one console item (bollard's `decode_eof`).
    fn rest(&mut self) -> Option<LogOutput> {
        self.pending = None;
        if self.body.is_empty() {
            return None;
        }
        Some(LogOutput::Console {
            message: self.body.split().freeze(),
        })
    }

    /// The rest of the body, at most `limit` bytes (an error's JSON).
    async fn read_to_end(&mut self, limit: usize) -> Result<BytesMut, Error> {
        while !self.ended && self.body.len() < limit {
            if !self.fill().await? {
                break;
            }
            self.unframe()?;
        }
        Ok(std::mem::take(&mut self.body))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixListener;

    use super::*;

    fn frame(kind: u8, text: &str) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(text.len() as u32).to_be_bytes());
        f.extend_from_slice(text.as_bytes());
        f
    }

    /// Serves one connection: checks the request line, then writes `response` in `pieces`.
    async fn serve(response: Vec<u8>, pieces: usize) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut req = vec![0; 4096];
            let n = conn.read(&mut req).await.unwrap();
            let req = String::from_utf8_lossy(&req[..n]).to_string();
            assert!(
                req.starts_with("GET /v1.47/containers/abc/logs?follow=1&stdout=1&stderr=1&timestamps=1&since=5 HTTP/1.1\r\n"),
                "{req}"
            );
            let step = response.len().div_ceil(pieces.max(1)).max(1);
            for piece in response.chunks(step) {
                conn.write_all(piece).await.unwrap();
                conn.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        });
        (dir, format!("unix://{}", path.display()))
    }

    fn chunked(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut out =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for p in parts {
            out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    fn text(o: &LogOutput) -> (&'static str, String) {
        match o {
            LogOutput::StdOut { message } => ("out", String::from_utf8_lossy(message).into()),
            LogOutput::StdErr { message } => ("err", String::from_utf8_lossy(message).into()),
            LogOutput::Console { message } => ("tty", String::from_utf8_lossy(message).into()),
            LogOutput::StdIn { message } => ("in", String::from_utf8_lossy(message).into()),
        }
    }

    #[tokio::test]
    async fn multiplexed_entries_across_chunks_and_reads() {
        // One entry split over two HTTP chunks, two entries in one chunk, in 7 socket writes.
        let a = frame(1, "2026-01-01T00:00:00Z first\n");
        let b = frame(2, "2026-01-01T00:00:01Z second\n");
        let c = frame(1, "2026-01-01T00:00:02Z third\n");
        let mut bc = b.clone();
        bc.extend_from_slice(&c);
        let parts = vec![a[..5].to_vec(), a[5..].to_vec(), bc];
        let (_dir, host) = serve(chunked(&parts), 7).await;
        let got: Vec<_> = logs(&host, "1.47", "abc", 5)
            .map(|r| text(&r.unwrap()))
            .collect()
            .await;
        assert_eq!(
            got,
            [
                ("out", "2026-01-01T00:00:00Z first\n".to_owned()),
                ("err", "2026-01-01T00:00:01Z second\n".to_owned()),
                ("out", "2026-01-01T00:00:02Z third\n".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn a_tty_stream_is_cut_at_newlines_and_its_tail_kept() {
        let body =
            b"2026-01-01T00:00:00Z one\r\n2026-01-01T00:00:01Z two\r\n2026-01-01T00:00:02Z tail";
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(body);
        let (_dir, host) = serve(response, 3).await;
        let got: Vec<_> = logs(&host, "1.47", "abc", 5)
            .map(|r| text(&r.unwrap()))
            .collect()
            .await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1], ("tty", "2026-01-01T00:00:01Z two\r\n".to_owned()));
        assert_eq!(got[2], ("tty", "2026-01-01T00:00:02Z tail".to_owned()));
    }

    #[tokio::test]
    async fn an_error_status_carries_dockers_message() {
        let body = br#"{"message":"No such container: abc"}"#;
        let mut response = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        let (_dir, host) = serve(response, 2).await;
        let got: Vec<_> = logs(&host, "1.47", "abc", 5).collect().await;
        assert_eq!(got.len(), 1);
        match &got[0] {
            Err(Error::DockerResponseServerError {
                status_code,
                message,
            }) => {
                assert_eq!(*status_code, 404);
                assert_eq!(message, "No such container: abc");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_connection_lost_mid_body_is_an_error_after_the_entries_it_brought() {
        let mut response = chunked(&[frame(1, "2026-01-01T00:00:00Z first\n")]);
        response.truncate(response.len() - 5); // no last chunk: the daemon went away
        let (_dir, host) = serve(response, 1).await;
        let got: Vec<_> = logs(&host, "1.47", "abc", 5).collect().await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].is_ok());
        assert!(matches!(got[1], Err(Error::IOError { .. })), "{got:?}");
    }
}
