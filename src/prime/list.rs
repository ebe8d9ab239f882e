//! Listing tunnels: one page, or every page within bounds on entries, bytes and time.

use super::client::PrimeClient;
use super::error::PrimeError;
use super::read;
use super::types::{ListQuery, TunnelInfo, TunnelPage};
use reqwest::Method;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// [`PrimeClient::list_all_tunnels`] stops after this many pages (a server that keeps saying
/// `has_next` would otherwise keep it going forever).
const MAX_LIST_PAGES: u32 = 1000;

/// Why [`PrimeClient::list_all_tunnels`] stopped before the end of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListCut {
    /// The list reached this many tunnels ([`super::ClientOptions::list_max_entries`]) and
    /// the API had more.
    Entries(usize),
    /// The answers read added up to this many bytes ([`super::ClientOptions::list_max_bytes`])
    /// and the API had more.
    Bytes(usize),
    /// This much time ([`super::ClientOptions::list_max_time`]) passed before the last page.
    Time(Duration),
    /// The API still said there were more after this many pages.
    Pages(u32),
}

impl ListCut {
    /// A short name for scripts: `max_entries`, `max_bytes`, `max_time` or `max_pages`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ListCut::Entries(_) => "max_entries",
            ListCut::Bytes(_) => "max_bytes",
            ListCut::Time(_) => "max_time",
            ListCut::Pages(_) => "max_pages",
        }
    }
}

impl fmt::Display for ListCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListCut::Entries(n) => write!(
                f,
                "the list stops at {n} tunnels, the most one listing collects; more exist"
            ),
            ListCut::Bytes(n) => write!(
                f,
                "the list stops after {} KiB of answers, the most one listing reads; more \
                 tunnels exist",
                n / 1024
            ),
            ListCut::Time(d) => write!(
                f,
                "the list stops after {:.1} s, the longest one listing takes; more tunnels may \
                 exist",
                d.as_secs_f64()
            ),
            ListCut::Pages(n) => write!(
                f,
                "the list stops after {n} pages; the API still said there were more"
            ),
        }
    }
}

/// What [`PrimeClient::list_all_tunnels`] collected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TunnelList {
    /// The tunnels, in the API's order.
    pub tunnels: Vec<TunnelInfo>,
    /// Why the list is incomplete; `None` when it holds every matching tunnel.
    pub cut: Option<ListCut>,
}

impl PrimeClient {
    /// One page of tunnels (`GET /api/v1/tunnel`).
    pub async fn list_tunnels(&self, query: &ListQuery) -> Result<TunnelPage, PrimeError> {
        self.list_page(query).await.map(|(page, _)| page)
    }

    /// One page and the size of the body it came in.
    async fn list_page(&self, query: &ListQuery) -> Result<(TunnelPage, usize), PrimeError> {
        if query.page == 0 || query.per_page == 0 {
            return Err(PrimeError::InvalidRequest(
                "page and page size start at 1".to_owned(),
            ));
        }
        let mut params: Vec<(&str, String)> = vec![
            ("page", query.page.to_string()),
            ("perPage", query.per_page.to_string()),
            ("sortBy", query.sort_by.as_str().to_owned()),
            ("sortOrder", query.sort_order.as_str().to_owned()),
        ];
        if let Some(team) = self.team_or_default(query.team_id.as_deref()) {
            params.push(("teamId", team.to_owned()));
        }
        for label in &query.labels {
            params.push(("labels", label.clone()));
        }
        if let Some(status) = &query.status {
            params.push(("status", status.as_str().to_owned()));
        }
        let reply = self.execute(Method::GET, "", &params, None).await?;
        Ok((read::page(&reply)?, reply.body.len()))
    }

    /// Every tunnel matching `query`, walking the pages from `query.page` while the API says
    /// `has_next`, within the bounds of [`super::ClientOptions`]: at most `list_max_entries`
    /// tunnels, no further page once `list_max_bytes` of answers were read, `list_max_time` in
    /// all (retries included), and 1000 pages. Reaching a bound is not an error: the tunnels
    /// collected so far come back with [`TunnelList::cut`] saying why the list stops there.
    /// Only when not a single page arrived in time is the result an error.
    pub async fn list_all_tunnels(&self, query: &ListQuery) -> Result<TunnelList, PrimeError> {
        let opts = self.options();
        // A bound too large to add to now means no time bound.
        let deadline = Instant::now().checked_add(opts.list_max_time);
        let mut query = query.clone();
        let mut list = TunnelList::default();
        let mut bytes = 0usize;
        for pages_done in 0..MAX_LIST_PAGES {
            let fetched = match deadline {
                Some(at) => tokio::time::timeout_at(at, self.list_page(&query)).await,
                None => Ok(self.list_page(&query).await),
            };
            let (page, size) = match fetched {
                Ok(result) => result?,
                Err(_) if pages_done == 0 => {
                    return Err(PrimeError::Transport {
                        message: format!(
                            "listing tunnels: no answer within {:.1} s",
                            opts.list_max_time.as_secs_f64()
                        ),
                        timeout: true,
                    })
                }
                Err(_) => {
                    list.cut = Some(ListCut::Time(opts.list_max_time));
                    return Ok(list);
                }
            };
            bytes = bytes.saturating_add(size);
            // An empty page that claims more would repeat forever; stop there.
            let more = page.has_next && !page.tunnels.is_empty();
            let room = opts.list_max_entries.saturating_sub(list.tunnels.len());
            if page.tunnels.len() > room {
                list.tunnels.extend(page.tunnels.into_iter().take(room));
                list.cut = Some(ListCut::Entries(opts.list_max_entries));
                return Ok(list);
            }
            list.tunnels.extend(page.tunnels);
            if !more {
                return Ok(list);
            }
            if list.tunnels.len() >= opts.list_max_entries {
                list.cut = Some(ListCut::Entries(opts.list_max_entries));
                return Ok(list);
            }
            if bytes >= opts.list_max_bytes {
                list.cut = Some(ListCut::Bytes(opts.list_max_bytes));
                return Ok(list);
            }
            query.page = query.page.checked_add(1).ok_or_else(|| {
                PrimeError::InvalidResponse("the tunnel list never ends".to_owned())
            })?;
        }
        list.cut = Some(ListCut::Pages(MAX_LIST_PAGES));
        Ok(list)
    }
}
