//! Walking a paginated collection: which page to ask for next, and when to stop.
//!
//! Two machines with the same shape: [`next_request`](PagePaginator::next_request) says what to fetch (or `None`
//! when done), [`on_page`](PagePaginator::on_page) reports what came back. Asking again before reporting gives the
//! same request, so a page whose fetch failed is simply fetched again.
//!
//! - [`PagePaginator`]: numbered pages (`?page=N&per_page=M`). Stops after a short or empty page, or once the
//!   server-reported total has been fetched.
//! - [`CursorPaginator`]: a cursor handed back by the server. Written for Switchboard's history route
//!   (PROTOCOL §7: `GET /api/v1/channels/{c}/events?since=&limit=` → `{channel, epoch, events, next_since}`):
//!   send `since` (absent on the first request) and `limit` (at most 1000); stop when `next_since` is `null` or
//!   `events` is empty. Because offsets only mean something within one epoch, it also stops with
//!   [`PaginationError::EpochChanged`] if the epoch changes between pages (the history started afresh: the caller
//!   should re-read state rather than mix two histories).
//!
//! Both can also stop at a total the caller wants ([`max_items`](CursorPaginator::with_max_items)), shrinking the
//! last request so no more than that is fetched.

use alloc::string::String;
use core::fmt;

use super::request::RequestParts;
use crate::rest::MAX_PAGE_LIMIT;

/// Why a paginator stopped with an error, or refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaginationError {
    /// [`on_page`](CursorPaginator::on_page) was called with no request outstanding (before
    /// [`next_request`](CursorPaginator::next_request), or after the walk ended). Nothing changed.
    #[error("on_page called with no page request outstanding")]
    NoRequestOutstanding,
    /// The server returned a non-empty page whose cursor equals the one just sent: following it would loop
    /// forever. The walk has stopped.
    #[error("the server's cursor did not advance")]
    CursorDidNotAdvance,
    /// The history's epoch changed between pages: offsets from the old epoch mean nothing in the new one. The
    /// walk has stopped.
    #[error("history epoch changed from {expected:?} to {got:?} while paging")]
    EpochChanged {
        /// The epoch of the first page.
        expected: String,
        /// The epoch of this page.
        got: String,
    },
}

/// What the paginator waits for next (named after what it expects, like rustls's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Ready to hand out the next request.
    Request,
    /// A request is out; waiting for its page.
    Page,
    /// Walked to the end (or stopped on an error).
    Nothing,
}

/// The request for one numbered page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The page number (counting from the paginator's first page).
    pub page: u64,
    /// Items per page to ask for.
    pub per_page: u32,
}

impl PageRequest {
    /// Appends `page=…&per_page=…` to the request's query.
    pub fn apply(&self, request: &mut RequestParts) {
        request.push_query("page", self.page);
        request.push_query("per_page", self.per_page);
    }
}

/// Numbered-page pagination (see the [module docs](self)).
///
/// - **Loop**: [`next_request`](Self::next_request) → fetch → [`on_page`](Self::on_page), until `next_request`
///   returns `None`.
/// - **Look**: [`is_done`](Self::is_done), [`fetched`](Self::fetched), [`requests`](Self::requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePaginator {
    page: u64,
    per_page: u32,
    fetched: u64,
    max_items: Option<u64>,
    requests: u64,
    expect: Expect,
}

impl PagePaginator {
    /// Starts at page `first_page` (0 or 1, as the API counts) with `per_page` items per page. A `per_page` of 0
    /// is taken as 1.
    pub fn new(first_page: u64, per_page: u32) -> Self {
        PagePaginator {
            page: first_page,
            per_page: per_page.max(1),
            fetched: 0,
            max_items: None,
            requests: 0,
            expect: Expect::Request,
        }
    }

    /// Stops after `max_items` items in total.
    pub fn with_max_items(mut self, max_items: u64) -> Self {
        self.max_items = Some(max_items);
        if max_items == 0 {
            self.expect = Expect::Nothing;
        }
        self
    }

    /// The next page to fetch, or `None` when done. Asking again before [`on_page`](Self::on_page) returns the
    /// same request.
    pub fn next_request(&mut self) -> Option<PageRequest> {
        match self.expect {
            Expect::Nothing => None,
            Expect::Request | Expect::Page => {
                if self.expect == Expect::Request {
                    self.requests += 1;
                }
                self.expect = Expect::Page;
                Some(PageRequest {
                    page: self.page,
                    per_page: self.per_page,
                })
            }
        }
    }

    /// The page asked for came back with `items` items, and the server's `total` item count if it gave one.
    /// Returns how many of those items to keep: all of them, except past [`with_max_items`](Self::with_max_items).
    ///
    /// The walk ends after a page shorter than `per_page` (an empty one included), once `total` items have been
    /// fetched, or at `max_items`.
    pub fn on_page(&mut self, items: usize, total: Option<u64>) -> Result<usize, PaginationError> {
        if self.expect != Expect::Page {
            return Err(PaginationError::NoRequestOutstanding);
        }
        let items = items as u64;
        let keep = self
            .max_items
            .map_or(items, |max| items.min(max - self.fetched));
        self.fetched += keep;
        let short = items < u64::from(self.per_page);
        let reached_total = total.is_some_and(|t| self.fetched >= t);
        let reached_max = self.max_items.is_some_and(|m| self.fetched >= m);
        if short || reached_total || reached_max {
            self.expect = Expect::Nothing;
        } else {
            self.page += 1;
            self.expect = Expect::Request;
        }
        Ok(keep as usize)
    }

    /// Whether the walk has ended.
    pub fn is_done(&self) -> bool {
        self.expect == Expect::Nothing
    }

    /// Items kept so far.
    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    /// Distinct page requests handed out so far (a repeated request counts once).
    pub fn requests(&self) -> u64 {
        self.requests
    }
}

/// The request for one cursor page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorRequest<C> {
    /// The cursor to continue after; `None` on the first request (start from the beginning).
    pub since: Option<C>,
    /// Items to ask for.
    pub limit: u32,
}

impl<C: fmt::Display> CursorRequest<C> {
    /// Appends `since=…` (when set) and `limit=…` to the request's query, the parameter names of Switchboard's
    /// history route.
    pub fn apply(&self, request: &mut RequestParts) {
        if let Some(since) = &self.since {
            request.push_query("since", since);
        }
        request.push_query("limit", self.limit);
    }
}

/// One page as the cursor paginator needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorPage<'a, C> {
    /// How many items the page held (`events.len()`).
    pub items: usize,
    /// The server's cursor for the next page (`next_since`); `None` when there is no more.
    pub next: Option<C>,
    /// The history's epoch, for APIs that have one (Switchboard's does); `None` skips the check.
    pub epoch: Option<&'a str>,
}

/// Cursor pagination (see the [module docs](self)). `C` is the cursor type: `u64` offsets for Switchboard.
///
/// - **Loop**: [`next_request`](Self::next_request) → fetch → [`on_page`](Self::on_page), until `next_request`
///   returns `None`.
/// - **Look**: [`is_done`](Self::is_done), [`fetched`](Self::fetched), [`requests`](Self::requests),
///   [`cursor`](Self::cursor), [`epoch`](Self::epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorPaginator<C> {
    since: Option<C>,
    limit: u32,
    fetched: u64,
    max_items: Option<u64>,
    requests: u64,
    epoch: Option<String>,
    expect: Expect,
}

impl<C: Clone + PartialEq> CursorPaginator<C> {
    /// Starts after `since` (`None`: from the beginning), asking for `limit` items per page. A `limit` of 0 is
    /// taken as 1. For Switchboard's history route use [`CursorPaginator::history`], which also caps the limit.
    pub fn new(since: Option<C>, limit: u32) -> Self {
        CursorPaginator {
            since,
            limit: limit.max(1),
            fetched: 0,
            max_items: None,
            requests: 0,
            epoch: None,
            expect: Expect::Request,
        }
    }

    /// Stops after `max_items` items in total; the last request asks only for what is still wanted.
    pub fn with_max_items(mut self, max_items: u64) -> Self {
        self.max_items = Some(max_items);
        if max_items == 0 {
            self.expect = Expect::Nothing;
        }
        self
    }

    /// The next page to fetch, or `None` when done. Asking again before [`on_page`](Self::on_page) returns the
    /// same request.
    pub fn next_request(&mut self) -> Option<CursorRequest<C>> {
        if self.expect == Expect::Nothing {
            return None;
        }
        if self.expect == Expect::Request {
            self.requests += 1;
        }
        self.expect = Expect::Page;
        let wanted = self
            .max_items
            .map_or(u64::MAX, |max| max.saturating_sub(self.fetched));
        Some(CursorRequest {
            since: self.since.clone(),
            limit: u32::try_from(wanted).unwrap_or(u32::MAX).min(self.limit),
        })
    }

    /// The page asked for came back. Returns how many of its items to keep (all, except past
    /// [`with_max_items`](Self::with_max_items)).
    ///
    /// The walk ends when `next` is `None`, when the page is empty, or at `max_items`; it ends with an error when
    /// the epoch changed or the cursor did not advance (the page's items are still counted: they were valid).
    pub fn on_page(&mut self, page: CursorPage<'_, C>) -> Result<usize, PaginationError> {
        if self.expect != Expect::Page {
            return Err(PaginationError::NoRequestOutstanding);
        }
        if let Some(got) = page.epoch {
            match &self.epoch {
                Some(expected) if expected != got => {
                    self.expect = Expect::Nothing;
                    return Err(PaginationError::EpochChanged {
                        expected: expected.clone(),
                        got: String::from(got),
                    });
                }
                Some(_) => {}
                None => self.epoch = Some(String::from(got)),
            }
        }
        let items = page.items as u64;
        let keep = self
            .max_items
            .map_or(items, |max| items.min(max - self.fetched));
        self.fetched += keep;
        let reached_max = self.max_items.is_some_and(|m| self.fetched >= m);
        self.expect = Expect::Nothing;
        match page.next {
            _ if items == 0 || reached_max => {}
            None => {}
            Some(next) if self.since.as_ref() == Some(&next) => {
                return Err(PaginationError::CursorDidNotAdvance);
            }
            Some(next) => {
                self.since = Some(next);
                self.expect = Expect::Request;
            }
        }
        Ok(keep as usize)
    }

    /// Whether the walk has ended.
    pub fn is_done(&self) -> bool {
        self.expect == Expect::Nothing
    }

    /// Items kept so far.
    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    /// Distinct page requests handed out so far (a repeated request counts once).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The cursor the next request continues after (after the walk: the last one the server gave). Save it to
    /// resume later.
    pub fn cursor(&self) -> Option<&C> {
        self.since.as_ref()
    }

    /// The epoch of the pages seen so far, once one arrived.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }
}

impl CursorPaginator<u64> {
    /// For Switchboard's history route: events after offset `since` (`None`: the oldest kept), `limit` per page,
    /// capped at [`MAX_PAGE_LIMIT`].
    pub fn history(since: Option<u64>, limit: u32) -> Self {
        CursorPaginator::new(since, limit.min(MAX_PAGE_LIMIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::request::Method;
    use alloc::vec::Vec;

    /// A fake numbered-page server over `total` items.
    fn serve_pages(total: u64, req: PageRequest, first_page: u64) -> usize {
        let start = (req.page - first_page) * u64::from(req.per_page);
        total.saturating_sub(start).min(u64::from(req.per_page)) as usize
    }

    /// A fake Switchboard history: offsets 1..=last; `since` is the last offset seen, `next_since` the last
    /// offset returned while more remain, else null (PROTOCOL §7).
    fn serve_history(last: u64, req: &CursorRequest<u64>) -> (Vec<u64>, Option<u64>) {
        let from = req.since.unwrap_or(0) + 1;
        let events: Vec<u64> = (from..=last).take(req.limit as usize).collect();
        let next = events.last().copied().filter(|&o| o < last);
        (events, next)
    }

    #[test]
    fn pages_of_1000_over_2500_items_take_3_requests() {
        let mut p = PagePaginator::new(1, 1000);
        let mut got = Vec::new();
        while let Some(req) = p.next_request() {
            got.push(req);
            let n = serve_pages(2500, req, 1);
            p.on_page(n, None).unwrap();
        }
        assert_eq!(
            got,
            [1, 2, 3].map(|page| PageRequest {
                page,
                per_page: 1000
            })
        );
        assert_eq!((p.fetched(), p.requests()), (2500, 3));
        assert!(p.is_done());
        assert_eq!(p.next_request(), None);
    }

    #[test]
    fn an_exact_multiple_needs_the_empty_page_unless_the_total_is_known() {
        let mut p = PagePaginator::new(0, 1000);
        while let Some(req) = p.next_request() {
            p.on_page(serve_pages(2000, req, 0), None).unwrap();
        }
        assert_eq!(p.requests(), 3); // 1000, 1000, then an empty page ends it
        let mut p = PagePaginator::new(0, 1000);
        while let Some(req) = p.next_request() {
            p.on_page(serve_pages(2000, req, 0), Some(2000)).unwrap();
        }
        assert_eq!(p.requests(), 2); // the total says the second page was the last
        assert_eq!(p.fetched(), 2000);
    }

    #[test]
    fn page_max_items_and_misuse() {
        let mut p = PagePaginator::new(1, 100).with_max_items(250);
        let mut kept = 0;
        while let Some(req) = p.next_request() {
            kept += p
                .on_page(serve_pages(10_000, req, 1), Some(10_000))
                .unwrap();
        }
        assert_eq!((kept, p.requests()), (250, 3));
        assert_eq!(
            p.on_page(5, None),
            Err(PaginationError::NoRequestOutstanding)
        );

        let mut p = PagePaginator::new(1, 0);
        assert_eq!(
            p.on_page(1, None),
            Err(PaginationError::NoRequestOutstanding)
        );
        let first = p.next_request();
        assert_eq!(
            first,
            Some(PageRequest {
                page: 1,
                per_page: 1
            })
        );
        // Asked again (say the fetch failed): the same page, counted once.
        assert_eq!(p.next_request(), first);
        assert_eq!(p.requests(), 1);
        p.on_page(0, None).unwrap();
        assert!(p.is_done());

        let mut none = PagePaginator::new(1, 10).with_max_items(0);
        assert_eq!(none.next_request(), None);

        let mut r = RequestParts::new(Method::Get, "/items");
        PageRequest {
            page: 3,
            per_page: 50,
        }
        .apply(&mut r);
        assert_eq!(r.target, "/items?page=3&per_page=50");
    }

    #[test]
    fn history_over_2500_events_takes_3_requests() {
        let mut p = CursorPaginator::history(None, 1000);
        let mut seen = Vec::new();
        let mut targets = Vec::new();
        while let Some(req) = p.next_request() {
            let mut r = RequestParts::new(Method::Get, "/api/v1/channels/c/events");
            req.apply(&mut r);
            targets.push(r.target);
            let (events, next) = serve_history(2500, &req);
            let kept = p
                .on_page(CursorPage {
                    items: events.len(),
                    next,
                    epoch: Some("e1"),
                })
                .unwrap();
            seen.extend_from_slice(&events[..kept]);
        }
        assert_eq!(
            targets,
            [
                "/api/v1/channels/c/events?limit=1000",
                "/api/v1/channels/c/events?since=1000&limit=1000",
                "/api/v1/channels/c/events?since=2000&limit=1000",
            ]
        );
        assert_eq!(seen, (1..=2500).collect::<Vec<_>>());
        assert_eq!((p.requests(), p.fetched()), (3, 2500));
        assert_eq!(p.cursor(), Some(&2000));
        assert_eq!(p.epoch(), Some("e1"));
    }

    #[test]
    fn history_stops_on_null_cursor_or_empty_page() {
        // Empty history: one request, nothing.
        let mut p = CursorPaginator::history(Some(7), 50);
        let req = p.next_request().unwrap();
        assert_eq!(
            req,
            CursorRequest {
                since: Some(7),
                limit: 50
            }
        );
        assert_eq!(
            p.on_page(CursorPage {
                items: 0,
                next: Some(8),
                epoch: None
            }),
            Ok(0)
        );
        assert!(p.is_done());
        // A short page with a non-null cursor continues (the server decides), then null ends it.
        let mut p = CursorPaginator::history(None, 5000);
        assert_eq!(p.next_request().unwrap().limit, MAX_PAGE_LIMIT);
        p.on_page(CursorPage {
            items: 3,
            next: Some(3),
            epoch: None,
        })
        .unwrap();
        assert_eq!(
            p.next_request(),
            Some(CursorRequest {
                since: Some(3),
                limit: 1000
            })
        );
        p.on_page(CursorPage {
            items: 2,
            next: None,
            epoch: None,
        })
        .unwrap();
        assert_eq!(p.next_request(), None);
        assert_eq!(p.fetched(), 5);
    }

    #[test]
    fn history_max_items_shrinks_the_last_request() {
        let mut p = CursorPaginator::history(None, 1000).with_max_items(2300);
        let mut limits = Vec::new();
        while let Some(req) = p.next_request() {
            limits.push(req.limit);
            let (events, next) = serve_history(10_000, &req);
            p.on_page(CursorPage {
                items: events.len(),
                next,
                epoch: None,
            })
            .unwrap();
        }
        assert_eq!(limits, [1000, 1000, 300]);
        assert_eq!(p.fetched(), 2300);
        // A server that ignores the limit still gets only what was wanted counted.
        let mut p = CursorPaginator::<u64>::new(None, 10).with_max_items(4);
        p.next_request();
        assert_eq!(
            p.on_page(CursorPage {
                items: 10,
                next: Some(10),
                epoch: None
            }),
            Ok(4)
        );
        assert!(p.is_done());
    }

    #[test]
    fn peer_errors_stop_the_walk() {
        let mut p = CursorPaginator::history(None, 10);
        p.next_request();
        p.on_page(CursorPage {
            items: 10,
            next: Some(10),
            epoch: Some("a"),
        })
        .unwrap();
        p.next_request();
        assert_eq!(
            p.on_page(CursorPage {
                items: 10,
                next: Some(20),
                epoch: Some("b")
            }),
            Err(PaginationError::EpochChanged {
                expected: "a".into(),
                got: "b".into()
            })
        );
        assert!(p.is_done());
        assert_eq!(p.fetched(), 10);

        let mut p = CursorPaginator::history(Some(5), 10);
        p.next_request();
        assert_eq!(
            p.on_page(CursorPage {
                items: 3,
                next: Some(5),
                epoch: None
            }),
            Err(PaginationError::CursorDidNotAdvance)
        );
        assert!(p.is_done());
        assert_eq!(p.fetched(), 3);
        assert_eq!(
            p.on_page(CursorPage {
                items: 3,
                next: None,
                epoch: None
            }),
            Err(PaginationError::NoRequestOutstanding)
        );
    }

    #[test]
    fn string_cursors_work_too() {
        let mut p = CursorPaginator::<String>::new(None, 2);
        let pages = [(2, Some("b")), (2, Some("d")), (1, None)];
        let mut sent = Vec::new();
        for (items, next) in pages {
            let req = p.next_request().unwrap();
            sent.push(req.since.clone());
            p.on_page(CursorPage {
                items,
                next: next.map(String::from),
                epoch: None,
            })
            .unwrap();
        }
        assert_eq!(sent, [None, Some("b".into()), Some("d".into())]);
        assert!(p.next_request().is_none());
        let mut r = RequestParts::new(Method::Get, "/x");
        CursorRequest {
            since: Some("a b"),
            limit: 3,
        }
        .apply(&mut r);
        assert_eq!(r.target, "/x?since=a%20b&limit=3");
    }
}
