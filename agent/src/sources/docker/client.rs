//! Reaching the Docker daemon: which address, and connecting.

use bollard::Docker;

/// Where the daemon listens when neither the config nor `DOCKER_HOST` says.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long one API call (not a stream) may take before the daemon counts as unresponsive.
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// The address to use: the config's `docker_host`, else `DOCKER_HOST`, else the default socket.
pub fn resolve_host(configured: Option<&str>, env_docker_host: Option<&str>) -> String {
    configured
        .or(env_docker_host)
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or(DEFAULT_DOCKER_HOST)
        .to_owned()
}

/// True for the address schemes this agent can use: `unix://` (or a bare socket path),
/// `tcp://` and `http://`.
pub fn supported_host(host: &str) -> bool {
    host.starts_with('/')
        || host.starts_with("unix://")
        || host.starts_with("tcp://")
        || host.starts_with("http://")
}

/// Builds a client for `host` and checks the daemon answers, agreeing on an API version both
/// sides speak (so an older daemon works too).
pub async fn connect(host: &str) -> Result<Docker, bollard::errors::Error> {
    let version = bollard::API_DEFAULT_VERSION;
    let docker = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version)?
    } else if host.starts_with('/') {
        Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, version)?
    } else {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, version)?
    };
    docker.ping().await?;
    docker.negotiate_version().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_precedence() {
        assert_eq!(
            resolve_host(Some("tcp://a:2375"), Some("unix:///b")),
            "tcp://a:2375"
        );
        assert_eq!(resolve_host(None, Some("unix:///b")), "unix:///b");
        assert_eq!(resolve_host(None, Some("  ")), DEFAULT_DOCKER_HOST);
        assert_eq!(resolve_host(None, None), DEFAULT_DOCKER_HOST);
        assert!(supported_host("unix:///var/run/docker.sock"));
        assert!(supported_host("/run/docker.sock"));
        assert!(supported_host("tcp://127.0.0.1:2375"));
        assert!(!supported_host("ssh://host"));
    }

    #[tokio::test]
    async fn connecting_to_a_missing_socket_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/nope.sock", dir.path().display());
        assert!(connect(&host).await.is_err());
    }
}
