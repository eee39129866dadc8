//! Recognising the agent's own container, so it never ships its own output by accident (its
//! own log lines about shipping would be shipped, logged, shipped...).
//!
//! Inside a container the id shows up in three places, tried in order:
//! 1. `/proc/self/cgroup` (cgroup v1, or v2 without a private cgroup namespace):
//!    `…/docker/<id>`, `…/docker-<id>.scope`, `…/cri-containerd-<id>.scope`;
//! 2. `/proc/self/mountinfo`: Docker bind-mounts `/var/lib/docker/containers/<id>/hostname`
//!    (and `hosts`, `resolv.conf`) into every container, even with cgroup v2 namespaces;
//! 3. the hostname, which Docker sets to the first 12 digits of the id unless told otherwise.

use std::path::Path;

/// The agent's own container, as far as it can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfId {
    /// The full 64-digit id.
    Full(String),
    /// A prefix of the id (from the hostname).
    Prefix(String),
}

impl SelfId {
    /// True when container `id` is the agent's own.
    pub fn matches(&self, id: &str) -> bool {
        match self {
            SelfId::Full(full) => full == id,
            SelfId::Prefix(p) => id.starts_with(p.as_str()),
        }
    }
}

/// Looks at this process's `/proc` files and hostname.
pub fn detect() -> Option<SelfId> {
    let read = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .unwrap_or_else(|| read("/etc/hostname"));
    detect_from(
        &read("/proc/self/cgroup"),
        &read("/proc/self/mountinfo"),
        hostname.trim(),
    )
}

/// [`detect`] over given file contents (for tests and for other roots).
pub fn detect_from(cgroup: &str, mountinfo: &str, hostname: &str) -> Option<SelfId> {
    if let Some(id) = cgroup.lines().find_map(id_in_cgroup_line) {
        return Some(SelfId::Full(id.to_owned()));
    }
    if let Some(id) = mountinfo.lines().find_map(id_in_mountinfo_line) {
        return Some(SelfId::Full(id.to_owned()));
    }
    let h = hostname.trim();
    if h.len() == 12 && is_hex(h) {
        return Some(SelfId::Prefix(h.to_owned()));
    }
    None
}

/// The container id in one cgroup line (`hierarchy:controllers:path`): the last path
/// component that holds a 64-hex-digit run.
fn id_in_cgroup_line(line: &str) -> Option<&str> {
    let path = line.splitn(3, ':').nth(2)?;
    path.rsplit('/').find_map(hex64_in)
}

/// The container id in one mountinfo line, from a `/containers/<id>/` path in its root or
/// mount source.
fn id_in_mountinfo_line(line: &str) -> Option<&str> {
    let mut rest = line;
    while let Some(at) = rest.find("/containers/") {
        let after = &rest[at + "/containers/".len()..];
        if let Some(cand) = after.get(..64)
            && is_hex(cand)
            && after[64..].starts_with('/')
        {
            return Some(cand);
        }
        rest = after;
    }
    None
}

/// A 64-hex-digit run in `component`, bounded by non-hex characters (`docker-<id>.scope`).
fn hex64_in(component: &str) -> Option<&str> {
    let bytes = component.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_hexdigit() {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
            end += 1;
        }
        if end - start == 64 {
            return Some(&component[start..end]);
        }
        start = end;
    }
    None
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    #[test]
    fn cgroup_v1_docker_path() {
        let cg = format!("12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n0::/\n");
        assert_eq!(detect_from(&cg, "", ""), Some(SelfId::Full(ID.into())));
    }

    #[test]
    fn systemd_scope_and_containerd() {
        let cg = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(detect_from(&cg, "", ""), Some(SelfId::Full(ID.into())));
        let cg = format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope\n");
        assert_eq!(detect_from(&cg, "", ""), Some(SelfId::Full(ID.into())));
    }

    #[test]
    fn cgroup_namespace_falls_back_to_mountinfo() {
        let mi = format!(
            "1203 1182 0:51 / / rw,relatime master:1 - overlay overlay rw\n\
             1210 1182 254:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
        );
        assert_eq!(
            detect_from("0::/\n", &mi, ""),
            Some(SelfId::Full(ID.into()))
        );
    }

    #[test]
    fn hostname_prefix_is_the_last_resort() {
        let got = detect_from("0::/\n", "", &ID[..12]);
        assert_eq!(got, Some(SelfId::Prefix(ID[..12].into())));
        assert!(got.as_ref().is_some_and(|s| s.matches(ID)));
        assert!(!got.is_some_and(|s| s.matches("ffff")));
    }

    #[test]
    fn a_host_process_is_not_a_container() {
        let cg = "12:memory:/user.slice\n0::/user.slice/user-1000.slice/session-2.scope\n";
        let mi = "22 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n";
        assert_eq!(detect_from(cg, mi, "build-host"), None);
        assert_eq!(detect_from("", "", "deadbeef"), None);
        assert_eq!(detect_from("", "", ""), None);
    }
}
