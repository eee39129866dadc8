//! Watching what leaves a component while the agent runs (`logship tap`).
//!
//! Every component's [`Fanout`](super::Fanout) holds the [`TapPoint`] of its id, taken from the
//! agent's one [`TapHub`]. While nobody watches, a point costs one atomic load per chunk. While
//! someone does, the fanout offers a copy of each event (reference counts, no line bytes) to a
//! bounded broadcast channel, and the watcher's own task renders it: a watcher that reads too
//! slowly loses the oldest tap events (and is told how many), never a pipeline event, and the
//! component never waits for it.
//!
//! The hub outlives reloads (it belongs to the supervisor, like the metrics), so a watcher
//! connected through the telemetry endpoint keeps watching the component of the same id in
//! the new pipeline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use super::Event;

/// Events buffered per watched component; a slower watcher loses the oldest.
pub const TAP_BUFFER: usize = 4096;

/// The tap points of every component, by id.
#[derive(Debug, Default)]
pub struct TapHub {
    points: Mutex<BTreeMap<Arc<str>, Arc<TapPoint>>>,
}

impl TapHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// The point of component `id`, made on first use.
    pub fn point(&self, id: &str) -> Arc<TapPoint> {
        let mut points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = points.get(id) {
            return p.clone();
        }
        let p = Arc::new(TapPoint::new(id));
        points.insert(Arc::from(id), p.clone());
        p
    }

    /// The point of `id` if a component of that id has been built.
    pub fn existing(&self, id: &str) -> Option<Arc<TapPoint>> {
        let points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        points.get(id).cloned()
    }

    /// The ids that can be tapped.
    pub fn ids(&self) -> Vec<String> {
        let points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        points.keys().map(|k| k.to_string()).collect()
    }
}

/// Where one component's output can be watched.
#[derive(Debug)]
pub struct TapPoint {
    id: Arc<str>,
    /// Made at the first watch: a component nobody taps holds no buffer.
    tx: OnceLock<broadcast::Sender<Event>>,
    watchers: AtomicUsize,
}

impl TapPoint {
    fn new(id: &str) -> Self {
        Self {
            id: Arc::from(id),
            tx: OnceLock::new(),
            watchers: AtomicUsize::new(0),
        }
    }

    /// Whether anyone is watching: the fanout's only cost while nobody is.
    #[inline]
    pub fn is_watched(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// The component's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Offers copies of these events to the watchers. Never waits.
    pub fn offer(&self, events: &[Event]) {
        let Some(tx) = self.tx.get() else { return };
        for event in events {
            // No receiver (the last one just left) is not an error here.
            let _ = tx.send(event.clone());
        }
    }

    /// Starts watching: events from now on, until the [`Watch`] is dropped.
    pub fn watch(self: &Arc<Self>) -> Watch {
        let tx = self.tx.get_or_init(|| broadcast::channel(TAP_BUFFER).0);
        let rx = tx.subscribe();
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Watch {
            rx,
            point: self.clone(),
        }
    }
}

/// One watcher of a [`TapPoint`].
#[derive(Debug)]
pub struct Watch {
    rx: broadcast::Receiver<Event>,
    point: Arc<TapPoint>,
}

/// What a watcher gets next.
#[derive(Debug)]
pub enum Tapped {
    /// One event that left the component.
    Event(Event),
    /// This many events were lost to the tap because the watcher read too slowly.
    Dropped(u64),
}

impl Watch {
    /// The next event, or how many were lost; `None` once the point is gone.
    pub async fn next(&mut self) -> Option<Tapped> {
        match self.rx.recv().await {
            Ok(event) => Some(Tapped::Event(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Tapped::Dropped(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.point.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::LabelSet;
    use bytes::Bytes;

    fn event(line: &[u8]) -> Event {
        let mut e = Event::new(
            1_718_000_000_123_456_789,
            Bytes::copy_from_slice(line),
            LabelSet::new([("service", "api")]),
        );
        e.metadata
            .push(("trace_id".into(), Bytes::from_static(b"4bf9")));
        e
    }

    #[tokio::test]
    async fn watchers_get_lines_and_learn_what_they_missed() {
        let hub = TapHub::new();
        let point = hub.point("parse");
        assert!(Arc::ptr_eq(&point, &hub.point("parse")));
        assert!(!point.is_watched());
        let mut watch = point.watch();
        assert!(point.is_watched());
        point.offer(&[event(b"one")]);
        match watch.next().await {
            Some(Tapped::Event(e)) => assert_eq!(&e.line[..], b"one"),
            other => panic!("{other:?}"),
        }
        // A watcher that does not read loses the oldest lines, and is told how many.
        let many: Vec<Event> = (0..TAP_BUFFER + 10).map(|_| event(b"x")).collect();
        point.offer(&many);
        assert!(matches!(watch.next().await, Some(Tapped::Dropped(10))));
        drop(watch);
        assert!(!point.is_watched());
        assert_eq!(hub.ids(), vec!["parse".to_owned()]);
        assert!(hub.existing("nope").is_none());
    }
}
