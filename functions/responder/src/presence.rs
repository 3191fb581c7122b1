//! Who is online (docs/design.md §12): `{"action":"presence","conversationId"|"userId"}` answers the
//! users with a live connection in the audience, with how many and since when, a page of the
//! index at a time (`cursor`, as a fan-out's).
//!
//! `$disconnect` is best effort: a record whose `$disconnect` was lost stays `CONNECTED` until its
//! TTL. So a listed connection older than `PRESENCE_STALE_MINUTES` is asked about through the
//! Management API (`GET @connections/{id}`, which answers 410 for a connection API Gateway no
//! longer has) before it counts: a gone one is marked `GONE` (as a fan-out's 410 marks it) and
//! left out. A younger one counts as it is: it started less than the window ago, so it cannot
//! have ended longer ago than that. No write per heartbeat, no write per connection-hour: the
//! cost is one `GET` per connection older than the window per presence query (the same calls
//! count against the account's Management API quota as posts do).

use std::collections::BTreeMap;

use futures_util::StreamExt as _;
use serde::Serialize;
use tracing::{info, warn};
use ws_shared::deadline::Deadline;
use ws_shared::id::ConnectionId;
use ws_shared::log::error_chain;
use ws_shared::metrics::Counters;
use ws_shared::record::Route;
use ws_shared::segment::Segment;
use ws_shared::store::{Audience, ConnectionStore, Member, Part, StoreError};
use ws_shared::stream::StreamStore;

use crate::cursor::{self, CursorError, Position, Target};
use crate::endpoint::{Endpoint, EndpointTemplate};
use crate::management::{PostError, Poster};
use crate::{Metric, NO_TABLE, Outcome, Responder, decode_cursor};

/// One user's part of a presence answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Present {
    pub user_id: String,
    /// Their live connections in this page of the audience.
    pub connections: usize,
    /// When the earliest of them connected.
    pub since: String,
}

/// A presence answer's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceAnswer {
    pub users: Vec<Present>,
    /// Live connections that no user owns (no authorizer ran and they named no user).
    #[serde(skip_serializing_if = "is_zero")]
    pub anonymous: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What binds a presence cursor to presence (not to a fan-out of the same audience).
fn digest() -> String {
    cursor::message_digest(b"presence")
}

/// How one listed connection turned out.
enum Seen {
    Live,
    Gone,
}

/// What a presence page counted so far.
#[derive(Debug, Default)]
struct Roll {
    /// Per user: live connections and the earliest `connectedAt`.
    users: BTreeMap<String, (usize, String)>,
    anonymous: usize,
    gone: usize,
    taken: usize,
}

impl Roll {
    fn add(&mut self, member: Option<&Member>, seen: &Seen) {
        self.taken += 1;
        if matches!(seen, Seen::Gone) {
            self.gone += 1;
            return;
        }
        let Some(user) = member.and_then(|m| m.user_id.as_ref()) else {
            self.anonymous += 1;
            return;
        };
        let since = member.and_then(|m| m.connected_at.clone()).unwrap_or_default();
        let entry = self.users.entry(user.as_str().to_owned()).or_insert((0, since.clone()));
        entry.0 += 1;
        if since < entry.1 {
            entry.1 = since;
        }
    }

    fn answer(self) -> PresenceAnswer {
        let users = self
            .users
            .into_iter()
            .map(|(user_id, (connections, since))| Present { user_id, connections, since })
            .collect();
        PresenceAnswer { users, anonymous: self.anonymous }
    }
}

/// What one presence page needs; the responder's `presence` action and a client's `presence`
/// route both read pages through it.
#[derive(Debug)]
pub struct Query<'a, P, S> {
    pub store: &'a S,
    /// Asks whether a connection is live (`GET @connections`).
    pub poster: &'a P,
    /// A connection whose record names its API is asked through that API…
    pub template: &'a EndpointTemplate,
    /// …any other through this endpoint (none: counted without asking).
    pub fallback: Option<&'a Endpoint>,
    pub now: chrono::DateTime<chrono::Utc>,
    /// `PRESENCE_STALE_MINUTES`: older connections are asked about.
    pub stale: chrono::Duration,
    pub page_size: u32,
    /// Questions in flight at once.
    pub concurrency: usize,
}

/// One page's answer, and where the next starts.
#[derive(Debug)]
pub struct PresencePage {
    pub answer: PresenceAnswer,
    pub cursor: Option<String>,
    /// Connections found gone (and marked `GONE`).
    pub gone: usize,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error("presence could not read the connections")]
    Store(#[from] StoreError),
}

impl<P: Poster, S: ConnectionStore> Query<'_, P, S> {
    /// One page of `audience`'s presence, from `raw_cursor` (where the last page stopped).
    pub async fn page(
        &self,
        audience: &Audience,
        raw_cursor: Option<&str>,
        deadline: &Deadline,
    ) -> Result<PresencePage, PresenceError> {
        let target = Target::Audience(audience.clone(), Segment::WHOLE);
        let resume = decode_cursor(raw_cursor, &target, &digest())?;
        let after = resume.position.after.as_deref().and_then(|id| ConnectionId::parse(id).ok());
        let page = self.store.connected_page(audience, Part::WHOLE, after.as_ref(), self.page_size, deadline).await?;
        let stale_before = ws_shared::clock::iso_millis(self.now - self.stale);
        let stale_before = stale_before.as_str();
        // Asked in index order, several at once; stopped (and the rest left to the cursor) when
        // the deadline comes.
        let checks = page.ids.iter().map(|id| {
            let member = page.members.get(id).cloned();
            let route = page.routes.get(id);
            async move {
                let fresh = member.as_ref().and_then(|m| m.connected_at.as_deref()).is_some_and(|at| at > stale_before);
                let seen = if fresh { Seen::Live } else { self.ask(id, route, deadline).await };
                (id, member, seen)
            }
        });
        let mut results = futures_util::stream::iter(checks).buffered(self.concurrency.max(1));
        let mut roll = Roll::default();
        let mut last: Option<&ConnectionId> = None;
        while !deadline.is_short_of(crate::MIN_CALL) {
            let Ok(Some((id, member, seen))) = tokio::time::timeout(deadline.budget(), results.next()).await else {
                break;
            };
            last = Some(id);
            roll.add(member.as_ref(), &seen);
        }
        let whole_page = roll.taken == page.ids.len();
        let next = if whole_page {
            page.resume_after.map(|id| id.as_str().to_owned())
        } else {
            // Cut by the deadline: the next page starts after the last connection counted.
            last.map(|id| id.as_str().to_owned()).or_else(|| resume.position.after.clone())
        };
        let cursor = (!whole_page || next.is_some()).then(|| {
            let position = Position { shard: 0, after: next };
            cursor::encode(&target, &digest(), &cursor::Resume { position, ..cursor::Resume::default() })
        });
        info!(
            listed = page.ids.len(),
            counted = roll.taken,
            gone = roll.gone,
            users = roll.users.len(),
            anonymous = roll.anonymous,
            more = cursor.is_some(),
            "presence"
        );
        let gone = roll.gone;
        Ok(PresencePage { answer: roll.answer(), cursor, gone })
    }

    /// Whether API Gateway still has `id` (asked through its own API, else the fallback); a gone
    /// one is marked `GONE`. Not known either way (no endpoint, a throttle, an error): live, so
    /// presence does not flicker on a throttle.
    async fn ask(&self, id: &ConnectionId, route: Option<&Route>, deadline: &Deadline) -> Seen {
        let endpoint = match route {
            Some(route) => self.template.render(route).ok(),
            None => self.fallback.cloned(),
        };
        let Some(endpoint) = endpoint else {
            warn!(connectionId = id.as_str(), "no endpoint to ask whether it is live; counted");
            return Seen::Live;
        };
        match self.poster.check(&endpoint, id, deadline.budget()).await {
            Ok(()) => Seen::Live,
            Err(PostError::Gone) => {
                if let Err(err) = self.store.mark_gone(id, endpoint.route(), self.now, deadline).await {
                    warn!(connectionId = id.as_str(), error = error_chain(&err), "could not mark it GONE");
                }
                Seen::Gone
            }
            Err(err) => {
                warn!(
                    connectionId = id.as_str(),
                    error = error_chain(&err),
                    "could not ask whether it is live; counted"
                );
                Seen::Live
            }
        }
    }
}

impl<P: Poster, S: ConnectionStore + StreamStore> Responder<P, S> {
    /// `{"action":"presence",…}`: one page of `audience`'s presence.
    pub(crate) async fn presence(
        &self,
        audience: &Audience,
        raw_cursor: Option<&str>,
        fallback: Option<&Endpoint>,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Outcome {
        let Some(store) = self.store.as_ref() else { return Outcome::refused(400, NO_TABLE) };
        let query = Query {
            store,
            poster: self.poster(),
            template: &self.template,
            fallback,
            now: self.clock.now(),
            stale: self.presence_stale,
            page_size: self.page_size,
            concurrency: self.concurrency,
        };
        match query.page(audience, raw_cursor, deadline).await {
            Ok(page) => {
                counters.add(Metric::Gone, page.gone as u64);
                let mut outcome = Outcome::status(200);
                outcome.presence = Some(page.answer);
                outcome.cursor = page.cursor;
                outcome
            }
            Err(PresenceError::Cursor(err)) => Outcome::refused(400, err),
            Err(PresenceError::Store(err)) => {
                counters.incr(Metric::Errors);
                tracing::error!(error = error_chain(&err), "presence could not read the connections");
                Outcome::refused(500, "presence could not read the connections; retry (with the cursor)")
            }
        }
    }
}
