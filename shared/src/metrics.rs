//! CloudWatch metrics in the embedded metric format (EMF): one JSON line per invocation that
//! CloudWatch Logs turns into metrics, no API calls, no extra latency.
//!
//! Every invocation emits every metric its service declares, zeros included, so an alarm on
//! `Errors` sees 0 rather than missing data on healthy traffic.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::output::LineSink;

/// A service's metric definitions and where its lines go.
#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    service: &'static str,
    names: &'static [&'static str],
    sink: Arc<dyn LineSink>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .field("service", &self.service)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// `service` is the `Service` dimension (`ws-connect`…); `names` the counters it emits.
    pub fn new(
        namespace: impl Into<String>,
        service: &'static str,
        names: &'static [&'static str],
        sink: Arc<dyn LineSink>,
    ) -> Self {
        Self { namespace: namespace.into(), service, names, sink }
    }

    /// Fresh counters for one invocation, all at zero.
    pub fn start(&self) -> Counters<'_> {
        Counters { metrics: self, counts: vec![0; self.names.len()] }
    }
}

/// One invocation's counters; [`Counters::emit`] writes them as one EMF line.
#[derive(Debug)]
pub struct Counters<'a> {
    metrics: &'a Metrics,
    counts: Vec<u64>,
}

impl Counters<'_> {
    /// Adds `n` to the counter `name`. A name the service did not declare is a bug, caught in
    /// debug builds; release builds ignore it rather than fail a request over a metric.
    pub fn add(&mut self, name: &str, n: u64) {
        match self.metrics.names.iter().position(|&declared| declared == name) {
            Some(index) => self.counts[index] += n,
            None => debug_assert!(false, "metric {name} is not declared by {}", self.metrics.service),
        }
    }

    pub fn incr(&mut self, name: &str) {
        self.add(name, 1);
    }

    /// Adds `other`'s counts (counters of the same service, e.g. one per concurrent task).
    pub fn merge(&mut self, other: &Counters<'_>) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// The EMF document for these counters at `at`, with `request_id` as a (non-dimension)
    /// property so a metric can be traced to its log lines.
    pub fn to_emf(&self, at: DateTime<Utc>, request_id: &str) -> Value {
        let definitions: Vec<Value> =
            self.metrics.names.iter().map(|name| json!({"Name": name, "Unit": "Count"})).collect();
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
        for (name, count) in self.metrics.names.iter().zip(&self.counts) {
            doc.insert((*name).into(), (*count).into());
        }
        doc.insert("requestId".into(), request_id.into());
        Value::Object(doc)
    }

    /// Writes the EMF line.
    pub fn emit(self, at: DateTime<Utc>, request_id: &str) {
        self.metrics.sink.write_line(&self.to_emf(at, request_id).to_string());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);
    impl LineSink for Lines {
        fn write_line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    #[test]
    fn an_invocation_emits_every_declared_metric_zeros_included() {
        let lines = Arc::new(Lines::default());
        let metrics =
            Metrics::new("ws-connection", "ws-disconnect", &["Disconnected", "NotFound", "Errors"], lines.clone());
        let mut counters = metrics.start();
        counters.incr("NotFound");
        counters.emit(crate::clock::from_epoch_millis(1_707_503_007_396).unwrap(), "req-1");

        let lines = lines.0.lock().unwrap();
        assert_eq!(lines.len(), 1);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
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
