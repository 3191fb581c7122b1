//! CloudWatch metrics in the embedded metric format (EMF): one JSON line per invocation that
//! CloudWatch Logs turns into metrics, no API calls, no extra latency.
//!
//! Every invocation emits every metric its service declares, zeros included, so an alarm on
//! `Errors` sees 0 rather than missing data on healthy traffic.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::output::LineSink;

/// One service's counters, as an enum: a name that is not a variant does not compile.
///
/// ```
/// ws_shared::metrics! {
///     /// What the example emits.
///     pub enum Metric { Sent = "Sent", Errors = "Errors" }
/// }
/// assert_eq!(<Metric as ws_shared::metrics::Metric>::names(), ["Sent", "Errors"]);
/// ```
pub trait Metric: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// Every counter, in the order the EMF line lists them.
    const ALL: &'static [Self];
    /// The counter the shared invocation code raises on a failure (a 5xx, a panic).
    const ERRORS: Self;
    /// The name CloudWatch shows.
    fn name(self) -> &'static str;

    /// Every counter's name, in [`Metric::ALL`]'s order (the manifest lists the same).
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.name()).collect()
    }
}

/// Declares a service's [`Metric`] enum: each variant with the name CloudWatch shows. One
/// variant must be `Errors`.
#[macro_export]
macro_rules! metrics {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $($variant),+ }

        impl $crate::metrics::Metric for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            const ERRORS: Self = Self::Errors;
            fn name(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
    };
}

/// A service's metric definitions and where its lines go.
#[derive(Clone)]
pub struct Metrics<M> {
    namespace: String,
    service: &'static str,
    sink: Arc<dyn LineSink>,
    _metric: std::marker::PhantomData<M>,
}

impl<M: Metric> std::fmt::Debug for Metrics<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .field("service", &self.service)
            .field("names", &M::names())
            .finish_non_exhaustive()
    }
}

impl<M: Metric> Metrics<M> {
    /// `service` is the `Service` dimension (`ws-connect`…); `M` the counters it emits.
    pub fn new(namespace: impl Into<String>, service: &'static str, sink: Arc<dyn LineSink>) -> Self {
        Self { namespace: namespace.into(), service, sink, _metric: std::marker::PhantomData }
    }

    /// Fresh counters for one invocation, all at zero.
    pub fn start(&self) -> Counters<'_, M> {
        Counters { metrics: self, counts: vec![0; M::ALL.len()], properties: Vec::new() }
    }
}

/// One invocation's counters; [`Counters::emit`] writes them as one EMF line.
#[derive(Debug)]
pub struct Counters<'a, M: Metric> {
    metrics: &'a Metrics<M>,
    counts: Vec<u64>,
    /// Properties of the line that are not dimensions (what the invocation was, e.g. a segment).
    properties: Vec<(&'static str, Value)>,
}

impl<M: Metric> Counters<'_, M> {
    /// Adds `n` to `metric`.
    pub fn add(&mut self, metric: M, n: u64) {
        let index = M::ALL.iter().position(|&m| m == metric).expect("ALL lists every variant");
        self.counts[index] += n;
    }

    pub fn incr(&mut self, metric: M) {
        self.add(metric, 1);
    }

    /// A property of this invocation's EMF line that is not a dimension (no metric costs more;
    /// Logs Insights can group by it).
    pub fn property(&mut self, name: &'static str, value: impl Into<Value>) {
        self.properties.retain(|(n, _)| *n != name);
        self.properties.push((name, value.into()));
    }

    /// Adds `other`'s counts (counters of the same service, e.g. one per concurrent task).
    pub fn merge(&mut self, other: &Counters<'_, M>) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// The EMF document for these counters at `at`, with `request_id` as a (non-dimension)
    /// property so a metric can be traced to its log lines.
    pub fn to_emf(&self, at: DateTime<Utc>, request_id: &str) -> Value {
        let definitions: Vec<Value> = M::ALL.iter().map(|m| json!({"Name": m.name(), "Unit": "Count"})).collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": self.metrics.namespace,
                    "Dimensions": [["Service"]],
                    "Metrics": definitions,
                }],
            }),
        );
        doc.insert("Service".into(), self.metrics.service.into());
        for (metric, count) in M::ALL.iter().zip(&self.counts) {
            doc.insert(metric.name().into(), (*count).into());
        }
        doc.insert("requestId".into(), request_id.into());
        for (name, value) in &self.properties {
            doc.insert((*name).into(), value.clone());
        }
        Value::Object(doc)
    }

    /// Writes the EMF line.
    pub fn emit(self, at: DateTime<Utc>, request_id: &str) {
        self.metrics.sink.write_line(&self.to_emf(at, request_id).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Captured;

    #[test]
    fn an_invocation_emits_every_declared_metric_zeros_included() {
        let lines = Captured::default();
        crate::metrics! {
            enum Disconnect { Disconnected = "Disconnected", NotFound = "NotFound", Errors = "Errors" }
        }
        let metrics = Metrics::<Disconnect>::new("ws-connection", "ws-disconnect", Arc::new(lines.clone()));
        let mut counters = metrics.start();
        counters.incr(Disconnect::NotFound);
        counters.emit(crate::clock::from_epoch_millis(1_707_503_007_396).unwrap(), "req-1");

        let lines = lines.json();
        assert_eq!(lines.len(), 1);
        let doc = &lines[0];
        insta::assert_json_snapshot!(doc, @r#"
        {
          "_aws": {
            "Timestamp": 1707503007396,
            "CloudWatchMetrics": [
              {
                "Namespace": "ws-connection",
                "Dimensions": [
                  [
                    "Service"
                  ]
                ],
                "Metrics": [
                  {
                    "Name": "Disconnected",
                    "Unit": "Count"
                  },
                  {
                    "Name": "NotFound",
                    "Unit": "Count"
                  },
                  {
                    "Name": "Errors",
                    "Unit": "Count"
                  }
                ]
              }
            ]
          },
          "Service": "ws-disconnect",
          "Disconnected": 0,
          "NotFound": 1,
          "Errors": 0,
          "requestId": "req-1"
        }
        "#);
    }
}
