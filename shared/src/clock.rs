//! Time and randomness, behind traits so handlers can be tested with fixed values.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Where fresh UUIDs come from (generated conversation ids).
pub trait IdSource: Send + Sync {
    fn uuid(&self) -> Uuid;
}

/// Random v4 UUIDs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn uuid(&self) -> Uuid {
        Uuid::new_v4()
    }
}

/// ISO-8601 UTC with millisecond precision and a `Z`: the one timestamp format of the table and
/// the logs (`2024-02-09T18:23:27.396Z`).
pub fn iso_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A `DateTime` from API Gateway's epoch-millisecond fields (`connectedAt`, `requestTimeEpoch`).
pub fn from_epoch_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_a_z() {
        let at = from_epoch_millis(1_707_503_007_396).unwrap();
        assert_eq!(iso_millis(at), "2024-02-09T18:23:27.396Z");
        let whole = from_epoch_millis(1_707_503_007_000).unwrap();
        assert_eq!(iso_millis(whole), "2024-02-09T18:23:27.000Z");
    }
}
