//! CRI (containerd, CRI-O) log lines and Kubernetes pod log paths.
//!
//! The kubelet's container runtime writes `/var/log/pods/<namespace>_<pod>_<uid>/<container>/
//! <restart>.log`, one line per record: `<RFC 3339 time> <stream> <tags> <log>`, e.g.
//! `2016-10-06T00:17:09.669794202Z stdout F the message`. The tag `P` marks a partial line
//! (the runtime split a long line; the pieces are joined with [`crate::partial::PartialMerger`]);
//! `F` marks a full one. The log is not escaped, so [`parse_cri`] borrows it from the line.
//!
//! [`parse_cri_path`] takes namespace, pod, pod UID and container from the file's path, since
//! the lines themselves do not carry them.

use memchr::memchr;

use crate::stream::Stream;
use crate::timestamp::parse_timestamp;

/// Why a CRI line could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CriError {
    /// The line does not start with an RFC 3339 timestamp followed by a space.
    #[error("CRI line does not start with an RFC 3339 timestamp")]
    InvalidTime,
    /// The stream field is missing or not `stdout`/`stderr`.
    #[error("CRI line has no valid stream (stdout or stderr) at byte {offset}")]
    InvalidStream {
        /// Byte offset where the stream was expected.
        offset: usize,
    },
    /// The tags field is missing or empty.
    #[error("CRI line has no tags (F or P) at byte {offset}")]
    MissingTags {
        /// Byte offset where the tags were expected.
        offset: usize,
    },
}

/// A decoded CRI log line, borrowing the log from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// The time the runtime read the line, in Unix nanoseconds.
    pub time_ns: i64,
    /// The stream the container wrote to.
    pub stream: Stream,
    /// Tagged `P`: a piece of a longer line; more pieces follow.
    pub partial: bool,
    /// The log text (everything after the tags and one space), as written.
    pub log: &'a [u8],
}

/// Decodes one CRI log line (without its own trailing newline).
///
/// Tags are `:`-separated; the line is partial when one of them is `P`, and unknown tags are
/// ignored. A line that ends right after its tags has an empty log.
///
/// ```
/// use logship_parsers::cri::parse_cri;
/// use logship_parsers::stream::Stream;
///
/// let l = parse_cri(b"2016-10-06T00:17:09.669794202Z stdout F the message").unwrap();
/// assert_eq!(l.time_ns, 1_475_713_029_669_794_202);
/// assert_eq!(l.stream, Stream::Stdout);
/// assert!(!l.partial);
/// assert_eq!(l.log, b"the message");
/// ```
pub fn parse_cri(line: &[u8]) -> Result<CriLine<'_>, CriError> {
    let sp1 = memchr(b' ', line).ok_or(CriError::InvalidTime)?;
    // RFC 3339 only: an epoch number is not a CRI time.
    if line.get(4) != Some(&b'-') {
        return Err(CriError::InvalidTime);
    }
    let time_ns = parse_timestamp(&line[..sp1]).ok_or(CriError::InvalidTime)?;

    let stream_at = sp1 + 1;
    let sp2 = memchr(b' ', &line[stream_at..])
        .map(|p| stream_at + p)
        .ok_or(CriError::InvalidStream { offset: stream_at })?;
    let stream = Stream::from_bytes(&line[stream_at..sp2])
        .ok_or(CriError::InvalidStream { offset: stream_at })?;

    let tags_at = sp2 + 1;
    let (tags, log) = match memchr(b' ', &line[tags_at..]) {
        Some(p) => (&line[tags_at..tags_at + p], &line[tags_at + p + 1..]),
        None => (&line[tags_at..], &line[line.len()..]),
    };
    if tags.is_empty() {
        return Err(CriError::MissingTags { offset: tags_at });
    }
    let partial = tags.split(|&b| b == b':').any(|t| t == b"P");
    Ok(CriLine {
        time_ns,
        stream,
        partial,
        log,
    })
}

/// Kubernetes identity taken from a CRI log file's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriPath<'a> {
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The pod's name.
    pub pod: &'a str,
    /// The pod's UID.
    pub pod_uid: &'a str,
    /// The container's name.
    pub container: &'a str,
    /// The container's restart count (the file's name).
    pub restart_count: u32,
}

/// Reads `…/<namespace>_<pod>_<uid>/<container>/<restart>.log` (the layout under
/// `/var/log/pods`, wherever it is mounted). Rotated files named `<restart>.log.<suffix>`
/// (e.g. `0.log.20240610-120000`) are accepted too. `None` for any other shape.
///
/// Namespace and pod names cannot contain `_` in Kubernetes, which makes the split exact.
///
/// ```
/// use logship_parsers::cri::parse_cri_path;
///
/// let p = parse_cri_path("/var/log/pods/shop_order-api-7d4b9_0f1e2d3c-aaaa/api/2.log").unwrap();
/// assert_eq!((p.namespace, p.pod, p.pod_uid), ("shop", "order-api-7d4b9", "0f1e2d3c-aaaa"));
/// assert_eq!((p.container, p.restart_count), ("api", 2));
/// ```
pub fn parse_cri_path(path: &str) -> Option<CriPath<'_>> {
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let container = parts.next()?;
    let pod_dir = parts.next()?;

    let (restart, suffix) = file.split_once(".log")?;
    if !(suffix.is_empty() || suffix.starts_with('.')) {
        return None;
    }
    if restart.is_empty() || !restart.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let restart_count = restart.parse().ok()?;

    let mut ids = pod_dir.splitn(3, '_');
    let namespace = ids.next()?;
    let pod = ids.next()?;
    let pod_uid = ids.next()?;
    if [namespace, pod, pod_uid, container]
        .iter()
        .any(|s| s.is_empty())
    {
        return None;
    }
    Some(CriPath {
        namespace,
        pod,
        pod_uid,
        container,
        restart_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: i64 = 1_475_713_029_669_794_202;

    #[test]
    fn full_and_partial_lines() {
        let l = parse_cri(b"2016-10-06T00:17:09.669794202Z stderr P part one").unwrap();
        assert_eq!(
            l,
            CriLine {
                time_ns: T,
                stream: Stream::Stderr,
                partial: true,
                log: b"part one"
            }
        );
        let l = parse_cri(b"2016-10-06T00:17:09.669794202Z stdout F {\"a\":1}").unwrap();
        assert!(!l.partial);
        assert_eq!(l.log, br#"{"a":1}"#);
    }

    #[test]
    fn log_keeps_spaces_and_crlf_and_unicode() {
        let l = parse_cri("2016-10-06T00:17:09.669794202Z stdout F  two  spaces é\r".as_bytes())
            .unwrap();
        assert_eq!(l.log, " two  spaces é\r".as_bytes());
    }

    #[test]
    fn empty_log() {
        for line in [
            &b"2016-10-06T00:17:09.669794202Z stdout F"[..],
            b"2016-10-06T00:17:09.669794202Z stdout F ",
        ] {
            let l = parse_cri(line).unwrap();
            assert_eq!(l.log, b"");
            assert!(!l.partial);
        }
    }

    #[test]
    fn multiple_tags() {
        assert!(
            parse_cri(b"2016-10-06T00:17:09Z stdout P:X x")
                .unwrap()
                .partial
        );
        assert!(
            !parse_cri(b"2016-10-06T00:17:09Z stdout F:X x")
                .unwrap()
                .partial
        );
        assert!(
            !parse_cri(b"2016-10-06T00:17:09Z stdout PP x")
                .unwrap()
                .partial
        );
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(parse_cri(b""), Err(CriError::InvalidTime));
        assert_eq!(parse_cri(b"hello world"), Err(CriError::InvalidTime));
        assert_eq!(
            parse_cri(b"1718000000 stdout F x"),
            Err(CriError::InvalidTime)
        );
        assert_eq!(
            parse_cri(b"2016-10-06T00:17:09Z stdin F x"),
            Err(CriError::InvalidStream { offset: 21 })
        );
        assert_eq!(
            parse_cri(b"2016-10-06T00:17:09Z stdout"),
            Err(CriError::InvalidStream { offset: 21 })
        );
        assert_eq!(
            parse_cri(b"2016-10-06T00:17:09Z stdout "),
            Err(CriError::MissingTags { offset: 28 })
        );
        assert_eq!(
            parse_cri(b"2016-10-06T00:17:09Z stdout  x"),
            Err(CriError::MissingTags { offset: 28 })
        );
        assert_eq!(
            CriError::MissingTags { offset: 28 }.to_string(),
            "CRI line has no tags (F or P) at byte 28"
        );
    }

    #[test]
    fn pod_paths() {
        let p = parse_cri_path(
            "/var/log/pods/kube-system_coredns-5d78c9869d-abcde_9c1f-44aa-8b2e/coredns/0.log",
        )
        .unwrap();
        assert_eq!(
            p,
            CriPath {
                namespace: "kube-system",
                pod: "coredns-5d78c9869d-abcde",
                pod_uid: "9c1f-44aa-8b2e",
                container: "coredns",
                restart_count: 0
            }
        );
        let p = parse_cri_path("/host/pods/ns_pod_uid/c/12.log.20240610-120000.gz").unwrap();
        assert_eq!(p.restart_count, 12);
        assert_eq!(p.namespace, "ns");
        // Relative paths work as long as the three components are there.
        assert!(parse_cri_path("ns_pod_uid/c/0.log").is_some());
    }

    #[test]
    fn bad_pod_paths() {
        for path in [
            "",
            "0.log",
            "c/0.log",
            "/var/log/pods/ns_pod/c/0.log",
            "/var/log/pods/ns__uid/c/0.log",
            "/var/log/pods/ns_pod_uid//0.log",
            "/var/log/pods/ns_pod_uid/c/x.log",
            "/var/log/pods/ns_pod_uid/c/0.txt",
            "/var/log/pods/ns_pod_uid/c/0.logs",
            "/var/log/pods/ns_pod_uid/c/.log",
            "/var/log/pods/ns_pod_uid/c/99999999999.log",
        ] {
            assert_eq!(parse_cri_path(path), None, "{path:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(line in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_cri(&line);
        }

        #[test]
        fn never_panics_near_valid(line in "[0-9TZ:.-]{0,32}( (stdout|stderr|x)( [FP:]{0,3})?( .{0,10})?)?") {
            let _ = parse_cri(line.as_bytes());
        }

        #[test]
        fn paths_never_panic(path in "[a-z0-9_./-]{0,40}") {
            let _ = parse_cri_path(&path);
        }
    }
}
