//! The portal's AWS instances as the registrar last saw them: one paged
//! listing of them all (each run's first), and what narrower listings
//! showed since of the accounts awaiting a test's result (only their
//! instances' names asked for: one page for up to 100 of them, where the
//! whole listing takes one page per 100 accounts).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::portal::RemoteInstance;
use crate::portal::client::PAGE;
use crate::time::signed_millis;

use super::members::Seen;
use super::table::Row;

/// The portal's AWS instances, as the listings showed them.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// When the listing of them all began (milliseconds since the epoch):
    /// what was sent after it may not show in it.
    pub taken_at: i64,
    /// When the newest listing began, whole or narrow.
    pub latest: i64,
    /// The accounts a narrower listing showed anew, and when it began.
    fresh: HashMap<String, i64>,
    by_id: HashMap<String, RemoteInstance>,
    by_name: HashMap<String, Vec<String>>,
}

/// An account a narrow listing asks about: the names its instance may bear
/// (the row's and the member's), and the instance its row records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    pub account: String,
    pub names: Vec<String>,
    pub instance: Option<String>,
}

impl Listing {
    pub fn new(taken_at: i64, instances: Vec<RemoteInstance>) -> Self {
        let mut listing = Self {
            taken_at,
            latest: taken_at,
            ..Self::default()
        };
        for i in instances {
            listing.insert(i);
        }
        listing
    }

    /// When the listings began, as far as `account`'s instance goes.
    pub fn taken_for(&self, account: &str) -> i64 {
        self.fresh.get(account).copied().unwrap_or(self.taken_at)
    }

    /// Folds in a listing, begun at `taken_at`, of the instances bearing
    /// the names of `asked`. An account counts as seen anew only when the
    /// instance its row records showed (or it records none): then what was
    /// shown under its names is replaced by what this one shows. One whose
    /// instance did not show (renamed in the portal since, say) keeps what
    /// was known of it, as old as it is: an instance is never taken as
    /// gone on a narrow listing's word. Returns the accounts not seen anew
    /// (the next listing of them all tells).
    pub fn refresh(
        &mut self,
        taken_at: i64,
        asked: &[Asked],
        instances: Vec<RemoteInstance>,
    ) -> Vec<String> {
        let shown: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
        let (anew, missed): (Vec<&Asked>, Vec<&Asked>) = asked
            .iter()
            .partition(|a| a.instance.as_deref().is_none_or(|id| shown.contains(id)));
        for name in anew.iter().flat_map(|a| &a.names) {
            for id in self.by_name.remove(name).unwrap_or_default() {
                self.by_id.remove(&id);
            }
        }
        for i in instances {
            if let Some(old) = self.by_id.remove(&i.id)
                && let Some(ids) = self.by_name.get_mut(&old.name)
            {
                ids.retain(|id| *id != old.id);
            }
            self.insert(i);
        }
        self.latest = self.latest.max(taken_at);
        for a in anew {
            self.fresh.insert(a.account.clone(), taken_at);
        }
        missed.into_iter().map(|a| a.account.clone()).collect()
    }

    fn insert(&mut self, i: RemoteInstance) {
        self.by_name
            .entry(i.name.clone())
            .or_default()
            .push(i.id.clone());
        self.by_id.insert(i.id.clone(), i);
    }

    pub fn get(&self, id: &str) -> Option<&RemoteInstance> {
        self.by_id.get(id)
    }

    pub fn named(&self, name: &str) -> Vec<&RemoteInstance> {
        self.by_name
            .get(name)
            .map(|ids| ids.iter().filter_map(|id| self.by_id.get(id)).collect())
            .unwrap_or_default()
    }

    pub fn instances(&self) -> impl Iterator<Item = &RemoteInstance> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// A run's listing, kept in its execution environment when the run ends
/// (unless a narrow listing missed an account, or one failed), for the
/// run after it.
#[derive(Debug)]
pub struct Kept {
    /// The run's request id: the lease's holder.
    pub holder: String,
    pub listing: Listing,
}

impl Kept {
    /// The listing, for a run that goes on straight from the one that kept
    /// it: the lease was last given back by `before`, that run (no run of
    /// another execution environment came between: the portal changed only
    /// by what the table records), and its listing of every instance began
    /// less than `within` before `now` (ms). Anything else lists them all.
    pub fn for_run(self, before: Option<&str>, now: i64, within: Duration) -> Option<Listing> {
        let young = now.saturating_sub(self.listing.taken_at) < signed_millis(within);
        (before == Some(self.holder.as_str()) && young).then_some(self.listing)
    }
}

/// What the next listing asks about, for the accounts `awaiting` a
/// test's result: `None` for every instance (`whole`, or a narrow one
/// would take as many pages); else the names their instances bear (the
/// row's, and the member's when it wants another) and the instance each
/// row records.
pub fn next(
    listing: &Listing,
    whole: bool,
    awaiting: &BTreeSet<String>,
    rows: &BTreeMap<String, Row>,
    seen: &HashMap<String, Seen>,
) -> Option<Vec<Asked>> {
    if whole || awaiting.is_empty() {
        return None;
    }
    let asked: Vec<Asked> = awaiting
        .iter()
        .map(|account| {
            let row = rows.get(account);
            let mut names: Vec<String> = row.map(|r| r.name.clone()).into_iter().collect();
            if let Some(Seen::Member(m)) = seen.get(account) {
                names.push(m.name.clone());
            }
            names.retain(|n| !n.is_empty());
            names.dedup();
            Asked {
                account: account.clone(),
                names,
                instance: row.and_then(|r| r.instance.clone()),
            }
        })
        .collect();
    (pages(listing, Some(&asked)) < pages(listing, None)).then_some(asked)
}

/// The names a narrow listing asks for, each once.
pub fn names(asked: &[Asked]) -> Vec<&str> {
    let names: BTreeSet<&str> = asked
        .iter()
        .flat_map(|a| a.names.iter().map(String::as_str))
        .collect();
    names.into_iter().collect()
}

/// The pages the next listing takes: of every instance (`asked`: `None`),
/// or of those `asked` about.
pub fn pages(listing: &Listing, asked: Option<&[Asked]>) -> u64 {
    let instances = asked.map_or(listing.len(), |a| names(a).len());
    instances.div_ceil(PAGE).max(1) as u64
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
