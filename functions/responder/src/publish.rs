//! A post to a conversation or a user: appended to the audience's stream, then fanned out.
//!
//! The append comes first (`ws_shared::stream`): the message gets its offset and epoch, and a
//! client that misses the live post finds it with `resume`. It happens once per message key
//! (`messageId`, else the event's `correlationId` + `sequence`, else a key generated for this
//! publish and carried in its cursor): a retried publish gets the first offset back.
//!
//! The fan-out then claims the audience a page at a time on the message key before posting
//! (`ws_shared::stream::plan_claim`): a run (one publish and its cursor continuations) takes what
//! it claimed, and a retry of the whole publish (a new run, e.g. Step Functions retrying a task
//! whose answer was lost) skips what earlier runs claimed. No connection gets one offset twice
//! from the responder; one that an interrupted run claimed and never reached gets it from its
//! client's `resume` instead (at most once live, at least once with resume). docs/design.md
//! ("Streams") has the whole contract.

use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use tracing::{error, info};
use ws_shared::deadline::Deadline;
use ws_shared::metrics::Counters;
use ws_shared::segment::Segment;
use ws_shared::store::{Audience, ConnectionStore};
use ws_shared::stream::{self, Append, Claim, ClaimOutcome, END, MessageKey, StreamName, StreamStore};

use crate::cursor::{self, Position};
use crate::endpoint::Endpoint;
use crate::event::Request;
use crate::management::Poster;
use crate::{Listing, Metric, NO_TABLE, Next, Op, Outcome, PageRead, Responder, decode_cursor};

/// Where a post was appended, in the responder's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub stream: String,
    pub offset: u64,
    pub epoch: String,
    /// The message key was already published (by another invocation than this publish's own
    /// continuations): nothing was appended; this is the first publish's place, and only
    /// connections no earlier run claimed were posted to.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// Claims a streamed fan-out makes as it reads its audience. Pages are read one at a time, so
/// the claim last seen is plain state.
#[derive(Debug)]
pub struct Streaming {
    pub stream: StreamName,
    pub key: MessageKey,
    /// This run's id (16 hex digits, made as an epoch is): a publish and its cursor
    /// continuations share it.
    pub run: String,
    /// The segment this run takes: its claim is that segment's.
    pub segment: Segment,
    claim: Mutex<Claim>,
}

/// Most claim writes one page may take while other runs keep moving the claim.
const MAX_CLAIM_TRIES: u32 = 8;

impl Streaming {
    fn set(&self, claim: Claim) {
        *self.claim.lock().unwrap_or_else(PoisonError::into_inner) = claim;
    }

    /// Connections another run claimed: not this run's to take.
    pub fn skip_upto(&self) -> Option<String> {
        let claim = self.claim.lock().unwrap_or_else(PoisonError::into_inner);
        (claim.by.as_deref() != Some(self.run.as_str())).then(|| claim.upto.clone()).flatten()
    }

    /// Claims what `page` covers for this run before its connections are taken, and says which
    /// of them other runs claimed first (`skip_upto`). A claim that cannot be written fails the
    /// page as a failed read would (nothing of it is taken).
    pub(crate) async fn claim<S: StreamStore>(&self, store: &S, mut page: PageRead, deadline: &Deadline) -> PageRead {
        let end = match &page.read {
            Ok((_, Next::After(position))) => position.after.clone().unwrap_or_default(),
            Ok((_, Next::Done)) => END.to_owned(),
            Ok((_, Next::Failed(_))) | Err(_) => return page,
        };
        for _ in 0..MAX_CLAIM_TRIES {
            let seen = self.claim.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let plan = stream::plan_claim(&seen, &self.run, &end);
            if let Some(next) = &plan.write {
                match store.claim(&self.stream, &self.key, self.segment, &seen, next, deadline).await {
                    Ok(ClaimOutcome::Claimed) => self.set(next.clone()),
                    Ok(ClaimOutcome::Moved(now)) => {
                        self.set(now);
                        continue;
                    }
                    Err(err) => {
                        page.read = Err(err);
                        return page;
                    }
                }
            }
            page.skip_upto = plan.skip_upto;
            return page;
        }
        page.read = Err(ws_shared::store::StoreError {
            operation: "UpdateItem",
            table: String::new(),
            permanent: false,
            source: "other runs of this publish kept moving its claim".into(),
        });
        page
    }
}

/// The longest the envelope of a post to `audience` can be once its stream fields are added.
pub fn wire_len_bound(body: &[u8], audience: &Audience, region: &str) -> usize {
    let Ok(name) = StreamName::of(audience, region) else { return body.len() };
    let longest_epoch = "f".repeat(16);
    stream::wire(&String::from_utf8_lossy(body), &name, u64::MAX, &longest_epoch).len()
}

impl<P: Poster, S: ConnectionStore + StreamStore> Responder<P, S> {
    /// Appends the post to `audience`'s stream (once per key) and fans the stored message out to
    /// the connections no run of this publish has claimed.
    pub(crate) async fn publish(
        &self,
        audience: &Audience,
        request: &Request,
        body: &[u8],
        fallback: Option<&Endpoint>,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Outcome {
        let Some(store) = self.store.as_ref() else { return Outcome::refused(400, NO_TABLE) };
        let segment = request.segment;
        if !self.streams {
            // STREAMS=false: the fan-out as it was before streams (its cursor binds to the body).
            let digest = cursor::message_digest(body);
            let listing = Listing::Audience(audience, segment);
            let resume = match decode_cursor(request.cursor.as_deref(), &listing.target(), &digest) {
                Ok(resume) => resume,
                Err(refused) => return Outcome::refused(400, refused),
            };
            let body = bytes::Bytes::copy_from_slice(body);
            return self.fan_out(&listing, resume, &digest, fallback, Op::Post(&body), None, deadline, counters).await;
        }
        // The cursor binds to the message as the caller gave it (its offset is not known before
        // the append): the same event plus its cursor continues.
        if !segment.is_whole() && request.key.is_none() {
            // Every segment appends the message: only a key the segments share makes that one append.
            return Outcome::refused(400, crate::event::EventError::SegmentsWithoutKey);
        }
        let digest = cursor::message_digest(body);
        let listing = Listing::Audience(audience, segment);
        let mut resume = match decode_cursor(request.cursor.as_deref(), &listing.target(), &digest) {
            Ok(resume) => resume,
            Err(refused) => return Outcome::refused(400, refused),
        };
        let stream = StreamName::of(audience, &self.region).expect("the region was checked at start");
        let key = request
            .key
            .clone()
            .or_else(|| resume.key.clone())
            .unwrap_or_else(|| MessageKey::generated(self.ids.uuid()));
        let run = resume.run.clone().unwrap_or_else(|| stream::new_epoch(self.ids.uuid()));
        let message = String::from_utf8_lossy(body);
        let append = Append {
            stream: &stream,
            key: &key,
            message: &message,
            at: self.clock.now(),
            retention: self.retention,
            new_epoch: &stream::new_epoch(self.ids.uuid()),
        };
        let appended = match store.append(append, deadline).await {
            Ok(appended) => appended,
            Err(err) => {
                counters.incr(Metric::Errors);
                error!(stream = stream.as_str(), error = ws_shared::log::error_chain(&err), "append failed");
                return Outcome::refused(
                    500,
                    "the message could not be appended to its stream, so nothing was posted; retry (with a \
                     messageId, or correlationId and sequence, a retry is published once)",
                );
            }
        };
        info!(
            stream = stream.as_str(),
            offset = appended.offset,
            epoch = appended.epoch.as_str(),
            duplicate = appended.duplicate,
            "appended"
        );
        let published = Published {
            stream: stream.as_str().to_owned(),
            offset: appended.offset,
            epoch: appended.epoch.clone(),
            // A cursor's continuation is the same publish, not a repeat of it.
            duplicate: appended.duplicate && request.cursor.is_none(),
        };
        let wire = bytes::Bytes::from(stream::wire(&appended.message, &stream, appended.offset, &appended.epoch));
        // The append's claim is the whole audience's; a segment's own is read at its first page.
        let claim = if segment.is_whole() { appended.claim } else { Claim::default() };
        let streaming = Streaming { stream, key, run, segment, claim: Mutex::new(claim) };
        if request.cursor.is_none()
            && let Some(upto) = streaming.skip_upto()
        {
            if upto == END {
                // Every connection was claimed by an earlier run of this publish: nothing to do.
                let mut outcome = Outcome::status(200);
                outcome.published = Some(published);
                outcome.counts = Some(crate::FanOutCounts { posted: Some(0), ..crate::FanOutCounts::default() });
                return outcome;
            }
            resume.position = Position { shard: 0, after: Some(upto) };
        }
        let mut outcome = self
            .fan_out(&listing, resume, &digest, fallback, Op::Post(&wire), Some(&streaming), deadline, counters)
            .await;
        outcome.published = Some(published);
        outcome
    }
}
