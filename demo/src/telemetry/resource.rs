//! The service's name, resolved the way the OpenTelemetry specification says, so that the
//! `service` field of every log line equals the `service.name` of every span.

/// `OTEL_SERVICE_NAME` wins, then `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, then the
/// binary's own default (`order-api`, `order-worker`).
pub fn resolve_service_name(
    otel_service_name: Option<&str>,
    resource_attributes: Option<&str>,
    default: &str,
) -> String {
    if let Some(name) = otel_service_name.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    if let Some(name) = resource_attributes.and_then(|attrs| attribute(attrs, "service.name")) {
        return name;
    }
    default.to_owned()
}

/// The value of `key` in an `OTEL_RESOURCE_ATTRIBUTES` list (`k1=v1,k2=v2`, values
/// percent-encoded), if present and not empty.
pub fn attribute(list: &str, key: &str) -> Option<String> {
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| percent_decode(v.trim()))
        .rfind(|v| !v.is_empty())
}

/// Decodes `%XX` escapes; a malformed escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otel_service_name_wins_over_resource_attributes() {
        assert_eq!(
            resolve_service_name(Some("checkout"), Some("service.name=other"), "order-api"),
            "checkout"
        );
    }

    #[test]
    fn resource_attribute_is_used_when_no_service_name() {
        assert_eq!(
            resolve_service_name(
                None,
                Some("deployment.environment=dev, service.name=orders%2Dapi"),
                "order-api"
            ),
            "orders-api"
        );
    }

    #[test]
    fn default_when_nothing_is_set() {
        assert_eq!(
            resolve_service_name(Some("  "), Some("a=b"), "order-worker"),
            "order-worker"
        );
        assert_eq!(
            resolve_service_name(None, None, "order-worker"),
            "order-worker"
        );
    }

    #[test]
    fn malformed_escape_is_kept() {
        assert_eq!(
            attribute("service.name=a%zz%4", "service.name").as_deref(),
            Some("a%zz%4")
        );
    }
}
