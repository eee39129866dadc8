//! [`MetadataName`]: the name of a structured-metadata pair, cheap to clone across threads.
//!
//! Every event that carries `trace_id` carries a copy of its name. With `Arc<str>` that copy
//! was an atomic increment on the transform's thread and an atomic decrement on the sink's,
//! on the same cache line for every line: the line bounced between cores, and the two
//! operations were about 3 % of W1's profile. Names fixed by the configuration are interned
//! once as `&'static str` instead, whose clone is a plain copy; names known only at run time
//! (labels demoted by the sink) stay shared.

use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// A structured-metadata name: a string that clones without touching a reference count when
/// it was [interned](MetadataName::interned).
///
/// ```
/// use logship_agent::pipeline::MetadataName;
///
/// let a = MetadataName::interned("trace_id");
/// let b = MetadataName::from("trace_id");
/// assert_eq!(a, b);
/// assert_eq!(&*a, "trace_id");
/// ```
#[derive(Clone)]
pub enum MetadataName {
    /// Interned for the life of the process: from the configuration, so the set is bounded.
    Static(&'static str),
    /// Reference-counted: a name known only at run time, such as a demoted label's. A
    /// `String` behind the `Arc` keeps the pointer thin, so the whole name is 16 bytes like
    /// a `&str` (with `Arc<str>` it was 24, and every event carries two inline).
    Shared(Arc<String>),
}

/// Every name interned so far; a name is leaked once and reused by later reloads.
static INTERNED: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);

impl MetadataName {
    /// The interned `name`: for names from the configuration (each distinct name is stored
    /// once for the life of the process, however often the configuration is reloaded).
    pub fn interned(name: &str) -> Self {
        let mut set = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
        match set.get(name) {
            Some(&s) => Self::Static(s),
            None => {
                let s: &'static str = Box::leak(name.into());
                set.insert(s);
                Self::Static(s)
            }
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Static(s) => s,
            Self::Shared(s) => s,
        }
    }
}

impl Deref for MetadataName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<Arc<str>> for MetadataName {
    fn from(name: Arc<str>) -> Self {
        Self::Shared(Arc::new(name.to_string()))
    }
}

impl From<&str> for MetadataName {
    fn from(name: &str) -> Self {
        Self::Shared(Arc::new(name.to_owned()))
    }
}

impl PartialEq for MetadataName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for MetadataName {}

impl PartialEq<&str> for MetadataName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for MetadataName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MetadataName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_reuses_one_allocation() {
        let (MetadataName::Static(a), MetadataName::Static(b)) = (
            MetadataName::interned("span_id"),
            MetadataName::interned(&String::from("span_id")),
        ) else {
            panic!("interned names are static");
        };
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn is_as_small_as_a_str() {
        assert_eq!(size_of::<MetadataName>(), size_of::<&str>());
    }

    #[test]
    fn static_and_shared_names_compare_by_text() {
        let a = MetadataName::interned("pod_uid");
        let b = MetadataName::from(Arc::<str>::from("pod_uid"));
        assert_eq!(a, b);
        assert_eq!(a, "pod_uid");
        assert_ne!(a, MetadataName::from("pod"));
        assert_eq!(format!("{a:?} {b}"), "\"pod_uid\" pod_uid");
    }
}
