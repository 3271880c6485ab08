//! The workbench's in-memory search index: incremental `/` search over the exception
//! queue (transaction id, partner id and name, customer) without scanning SQLite.
//!
//! Built once off the render loop (the search worker thread) from the queue's rows:
//! one lowercase text buffer (`hay`, entries separated by `\n`) scanned with a substring
//! search, the sort keys of each entry and its position in each sort order, and the
//! static filter facts (kinds, amount, partner's tier and region). A query matches the
//! buffer, walks the entries in the current sort order from the page cursor, and asks
//! SQLite only for the next few candidates by rowid (with every filter applied again
//! there, so the store stays the authority on status and membership).
//!
//! Memory: about 130 bytes per queue row plus its text (~6 MB for 45,000 rows).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::queue::{
    PageDir, QueueCursor, QueueFilter, QueueOrder, QueueRow, QueueSort, SearchSource,
};
use crate::store::Store;

/// Separates fields inside an entry (never typed in a query).
const FIELD_SEP: char = '\u{1}';
/// Separates entries.
const ENTRY_SEP: char = '\n';

/// The search index over the queue.
#[derive(Debug, Default)]
pub struct SearchIndex {
    /// Lowercase `id SEP partner_id SEP partner name SEP customer` per entry, `\n`-joined.
    hay: String,
    /// Byte offset of each entry in `hay` (ascending).
    starts: Vec<u32>,
    /// Original transaction ids (sort tie-break), one buffer.
    ids: String,
    id_starts: Vec<u32>,
    rowid: Vec<i64>,
    score: Vec<f64>,
    at_stake: Vec<i64>,
    amount: Vec<i64>,
    /// Submission dates as the age sort compares them (`age_key`).
    submitted: Vec<Box<str>>,
    /// Bit i = entry has kind `kind_names[i]` (bit 63: a kind past the 63rd).
    kinds: Vec<u64>,
    kind_names: Vec<String>,
    /// Index into `partners` (u32::MAX: unknown partner).
    partner: Vec<u32>,
    /// (current tier id, region) per partner.
    partners: Vec<(String, String)>,
    /// Entry numbers in each sort's queue order (not reversed), indexed like `QueueSort::ALL`.
    order: [Vec<u32>; 4],
    /// The last query and its matches (paging through one search reuses them).
    last: Option<(String, Vec<u64>)>,
    pub built_in: Duration,
}

/// Why a search page was not produced.
#[derive(Debug)]
pub enum SearchError {
    /// A newer query superseded this one.
    Cancelled,
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for SearchError {
    fn from(e: crate::store::StoreError) -> Self {
        SearchError::Store(e)
    }
}

fn sort_slot(sort: QueueSort) -> usize {
    QueueSort::ALL.iter().position(|s| *s == sort).unwrap_or(0)
}

/// Lowercases `s` into `out`, turning separators into spaces.
fn push_folded(out: &mut String, s: &str) {
    for c in s.chars() {
        if c == FIELD_SEP || c == ENTRY_SEP || c.is_control() {
            out.push(' ');
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// The query as matched: trimmed, lowercase, control characters dropped.
pub fn fold_query(q: &str) -> String {
    let mut out = String::new();
    for c in q.trim().chars().filter(|c| !c.is_control()) {
        out.extend(c.to_lowercase());
    }
    out
}

impl SearchIndex {
    /// Reads the queue from the store; `cancelled` is polled to give up early (None).
    pub fn build(
        store: &Store,
        cancelled: &dyn Fn() -> bool,
    ) -> crate::store::Result<Option<SearchIndex>> {
        let t = Instant::now();
        let mut ix = SearchIndex::default();
        let mut partner_pos: HashMap<String, u32> = HashMap::new();
        for (pid, tier, region) in store.partner_tier_region()? {
            partner_pos.insert(pid, ix.partners.len() as u32);
            ix.partners.push((tier, region));
        }
        let mut kind_pos: HashMap<String, u32> = HashMap::new();
        let mut stopped = false;
        let mut n = 0usize;
        store.for_each_queue_search_row(&mut |r: &SearchSource<'_>| {
            n += 1;
            if n % 4096 == 0 && cancelled() {
                stopped = true;
                return false;
            }
            ix.push(r, &partner_pos, &mut kind_pos);
            true
        })?;
        if stopped {
            return Ok(None);
        }
        ix.sort_orders();
        ix.hay.shrink_to_fit();
        ix.ids.shrink_to_fit();
        ix.built_in = t.elapsed();
        Ok(Some(ix))
    }

    fn push(
        &mut self,
        r: &SearchSource<'_>,
        partner_pos: &HashMap<String, u32>,
        kind_pos: &mut HashMap<String, u32>,
    ) {
        if !self.starts.is_empty() {
            self.hay.push(ENTRY_SEP);
        }
        self.starts.push(self.hay.len() as u32);
        for (i, f) in [r.transaction_id, r.partner_id, r.partner_name, r.customer]
            .iter()
            .enumerate()
        {
            if i > 0 {
                self.hay.push(FIELD_SEP);
            }
            push_folded(&mut self.hay, f);
        }
        self.id_starts.push(self.ids.len() as u32);
        self.ids.push_str(r.transaction_id);
        self.rowid.push(r.rowid);
        self.score.push(r.score);
        self.at_stake.push(r.at_stake_minor);
        self.amount.push(r.amount_minor);
        self.submitted.push(r.submitted_at.into());
        let mut bits = 0u64;
        for k in serde_json::from_str::<Vec<String>>(r.kinds).unwrap_or_default() {
            let next = kind_pos.len() as u32;
            let i = *kind_pos.entry(k.clone()).or_insert_with(|| {
                self.kind_names.push(k);
                next
            });
            bits |= 1u64 << i.min(63);
        }
        self.kinds.push(bits);
        self.partner
            .push(partner_pos.get(r.partner_id).copied().unwrap_or(u32::MAX));
    }

    fn sort_orders(&mut self) {
        for sort in QueueSort::ALL {
            let mut o: Vec<u32> = (0..self.rowid.len() as u32).collect();
            o.sort_unstable_by(|&a, &b| self.cmp_entries(sort, a as usize, b as usize));
            self.order[sort_slot(sort)] = o;
        }
    }

    pub fn len(&self) -> usize {
        self.rowid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rowid.is_empty()
    }

    /// Bytes held (approximate), for the benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.hay.capacity()
            + self.ids.capacity()
            + self.starts.capacity() * 4
            + self.id_starts.capacity() * 4
            + self.rowid.capacity() * 8
            + self.score.capacity() * 8
            + self.at_stake.capacity() * 8
            + self.amount.capacity() * 8
            + self.submitted.iter().map(|d| d.len() + 16).sum::<usize>()
            + self.kinds.capacity() * 8
            + self.partner.capacity() * 4
            + self.order.iter().map(|o| o.capacity() * 4).sum::<usize>()
            + self
                .partners
                .iter()
                .map(|(a, b)| a.capacity() + b.capacity() + 48)
                .sum::<usize>()
    }

    fn id(&self, i: usize) -> &str {
        let s = self.id_starts[i] as usize;
        let e = self
            .id_starts
            .get(i + 1)
            .map_or(self.ids.len(), |e| *e as usize);
        &self.ids[s..e]
    }

    /// Queue order (descending keys; ascending for age, oldest first), so "less" means
    /// "earlier in the queue".
    fn cmp_entries(&self, sort: QueueSort, a: usize, b: usize) -> Ordering {
        let keys = match sort {
            QueueSort::Rank => self.score[b]
                .total_cmp(&self.score[a])
                .then(self.at_stake[b].cmp(&self.at_stake[a])),
            QueueSort::AtStake => self.at_stake[b].cmp(&self.at_stake[a]),
            QueueSort::Amount => self.amount[b].cmp(&self.amount[a]),
            QueueSort::Age => {
                return self.submitted[a]
                    .cmp(&self.submitted[b])
                    .then_with(|| self.id(a).cmp(self.id(b)))
            }
        };
        keys.then_with(|| self.id(b).cmp(self.id(a)))
    }

    /// Entry `i` against a cursor, in queue order.
    fn cmp_cursor(&self, sort: QueueSort, i: usize, c: &QueueCursor) -> Ordering {
        let keys = match sort {
            QueueSort::Rank => c
                .score
                .total_cmp(&self.score[i])
                .then(c.at_stake_minor.cmp(&self.at_stake[i])),
            QueueSort::AtStake => c.at_stake_minor.cmp(&self.at_stake[i]),
            QueueSort::Amount => c.amount_minor.cmp(&self.amount[i]),
            QueueSort::Age => {
                return (*self.submitted[i])
                    .cmp(c.submitted_at.as_str())
                    .then_with(|| self.id(i).cmp(c.transaction_id.as_str()))
            }
        };
        keys.then_with(|| c.transaction_id.as_str().cmp(self.id(i)))
    }

    /// Bitset of the entries whose text contains `q` (folded); cached for the last query.
    fn matches(&mut self, q: &str, cancelled: &dyn Fn() -> bool) -> Option<&[u64]> {
        if self.last.as_ref().is_none_or(|(lq, _)| lq != q) {
            let n = self.starts.len();
            let mut bits = vec![0u64; n.div_ceil(64)];
            // A longer query matches a subset of a shorter one's matches: typing narrows.
            let narrow = self
                .last
                .as_ref()
                .filter(|(lq, _)| !lq.is_empty() && q.contains(lq.as_str()))
                .map(|(_, b)| b.clone());
            match narrow {
                Some(prev) => {
                    for (w, word) in prev.iter().enumerate() {
                        let mut word = *word;
                        while word != 0 {
                            let i = w * 64 + word.trailing_zeros() as usize;
                            word &= word - 1;
                            if self.entry_text(i).contains(q) {
                                bits[i / 64] |= 1 << (i % 64);
                            }
                        }
                    }
                }
                None => {
                    let mut from = 0usize;
                    let mut k = 0usize;
                    while let Some(off) = self.hay[from..].find(q) {
                        let at = from + off;
                        // The entry holding byte `at`.
                        let i = self.starts.partition_point(|&s| s as usize <= at) - 1;
                        bits[i / 64] |= 1 << (i % 64);
                        from = self
                            .starts
                            .get(i + 1)
                            .map_or(self.hay.len(), |s| *s as usize);
                        k += 1;
                        if k % 8192 == 0 && cancelled() {
                            return None;
                        }
                        if from >= self.hay.len() {
                            break;
                        }
                    }
                }
            }
            self.last = Some((q.to_string(), bits));
        }
        self.last.as_ref().map(|(_, b)| b.as_slice())
    }

    fn entry_text(&self, i: usize) -> &str {
        let s = self.starts[i] as usize;
        let e = self
            .starts
            .get(i + 1)
            .map_or(self.hay.len(), |e| *e as usize - 1);
        &self.hay[s..e]
    }

    /// Whether entry `i` can pass `filter` (status is checked by the store).
    fn may_pass(&self, i: usize, filter: &QueueFilter) -> bool {
        if let Some(min) = filter.min_amount_minor {
            if self.amount[i] < min {
                return false;
            }
        }
        if !filter.kind.is_empty() {
            // Any of the kinds: the bits of the known ones (bit 63 for a kind past the 63rd).
            let mut want = 0u64;
            for k in &filter.kind {
                if let Some(b) = self.kind_names.iter().position(|n| n == k) {
                    want |= 1 << b.min(63);
                }
            }
            if self.kinds[i] & want == 0 {
                return false;
            }
        }
        if filter.tier.is_some() || filter.region.is_some() {
            let Some((tier, region)) = self.partners.get(self.partner[i] as usize) else {
                return false;
            };
            if filter.tier.as_ref().is_some_and(|t| t != tier)
                || filter.region.as_ref().is_some_and(|r| r != region)
            {
                return false;
            }
        }
        true
    }

    /// One page of the search's results, like [`Store::queue_page`] with `filter.search`:
    /// `limit` rows after/before/from `cursor` in `sort` order, returned in queue order.
    /// `cancelled` is polled; a superseded query returns [`SearchError::Cancelled`].
    #[allow(clippy::too_many_arguments)]
    pub fn page(
        &mut self,
        store: &Store,
        filter: &QueueFilter,
        order: impl Into<QueueOrder>,
        cursor: Option<&QueueCursor>,
        dir: PageDir,
        limit: usize,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<QueueRow>, SearchError> {
        let qo: QueueOrder = order.into();
        let q = fold_query(filter.search.as_deref().unwrap_or(""));
        if q.is_empty() {
            return Ok(store.queue_page(filter, qo, cursor, dir, limit)?);
        }
        let sort = qo.sort;
        if self.matches(&q, cancelled).is_none() {
            return Err(SearchError::Cancelled);
        }
        let bits = match &self.last {
            Some((_, b)) => b,
            None => return Err(SearchError::Cancelled),
        };
        let order = &self.order[sort_slot(sort)];
        // Walk `order` (the sort's own order) forwards from `pos` or backwards from
        // `pos - 1`: backwards for Before, and the other way round when reversed.
        let backwards = (dir == PageDir::Before) != qo.reverse;
        let after_cursor = |c: &QueueCursor| {
            order.partition_point(|&i| self.cmp_cursor(sort, i as usize, c) != Ordering::Greater)
        };
        let at_cursor = |c: &QueueCursor| {
            order.partition_point(|&i| self.cmp_cursor(sort, i as usize, c) == Ordering::Less)
        };
        let mut pos = match (cursor, dir, backwards) {
            (None, _, true) => order.len(),
            (None, _, false) => 0,
            // Forwards: strictly after the cursor, or from it (From).
            (Some(c), PageDir::From, false) => at_cursor(c),
            (Some(c), _, false) => after_cursor(c),
            // Backwards: strictly before the cursor, or from it (From, reversed).
            (Some(c), PageDir::From, true) => after_cursor(c),
            (Some(c), _, true) => at_cursor(c),
        };
        let mut out: Vec<QueueRow> = Vec::new();
        let mut chunk = limit.max(16);
        loop {
            let mut ids: Vec<i64> = Vec::with_capacity(chunk);
            while ids.len() < chunk {
                let i = if backwards {
                    if pos == 0 {
                        break;
                    }
                    pos -= 1;
                    order[pos] as usize
                } else {
                    if pos >= order.len() {
                        break;
                    }
                    pos += 1;
                    order[pos - 1] as usize
                };
                if bits[i / 64] & (1 << (i % 64)) != 0 && self.may_pass(i, filter) {
                    ids.push(self.rowid[i]);
                }
            }
            if ids.is_empty() {
                break;
            }
            let rows =
                store.queue_rows_by_rowid(&ids, filter, sort, backwards, limit - out.len())?;
            out.extend(rows);
            let exhausted = if backwards {
                pos == 0
            } else {
                pos >= order.len()
            };
            if out.len() >= limit || exhausted {
                break;
            }
            if cancelled() {
                return Err(SearchError::Cancelled);
            }
            chunk = (chunk * 4).min(4096);
        }
        if dir == PageDir::Before {
            out.reverse();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::synthetic;

    fn cache() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        synthetic::fill(
            &mut s,
            &synthetic::Options {
                transactions: 3000,
                seed: 11,
                currency: "EUR".into(),
                anomaly_rate: 0.5,
            },
        )
        .unwrap();
        s
    }

    fn ids(rows: &[QueueRow]) -> Vec<String> {
        rows.iter().map(|r| r.transaction_id.clone()).collect()
    }

    /// Every page the index serves equals the store's own (LIKE) search page, for
    /// queries that hit many, few and no rows, in every sort, both directions, with filters.
    #[test]
    fn index_pages_equal_the_stores_search_pages() {
        let s = cache();
        let mut ix = SearchIndex::build(&s, &|| false).unwrap().unwrap();
        assert!(ix.len() > 100, "queue too small: {}", ix.len());
        // Queries taken from the data: a partner name word, a customer, an id fragment.
        let any = s
            .queue_page(
                &QueueFilter::default(),
                QueueSort::Rank,
                None,
                PageDir::After,
                50,
            )
            .unwrap();
        let r = &any[7];
        let name_word = r
            .partner_name
            .split_whitespace()
            .next()
            .unwrap()
            .to_uppercase();
        let customer = r.customer[..r.customer.len().min(6)].to_string();
        let id_part = r.transaction_id[r.transaction_id.len() - 3..].to_string();
        let queries = [
            name_word,
            customer,
            id_part,
            r.partner_id.clone(),
            "zzzq".into(),
            "e".into(),
        ];
        let kinds = any[0].kinds.clone();
        let filters = [
            QueueFilter::default(),
            QueueFilter {
                kind: kinds.iter().take(2).cloned().collect(),
                ..Default::default()
            },
            QueueFilter {
                status: vec!["flagged".into(), "in_review".into()],
                min_amount_minor: Some(any[20].amount_minor),
                ..Default::default()
            },
        ];
        let mut compared = 0;
        for q in &queries {
            for base in &filters {
                let f = QueueFilter {
                    search: Some(format!(" {q} ")),
                    ..base.clone()
                };
                for sort in QueueSort::ALL
                    .into_iter()
                    .flat_map(|sort| [false, true].map(|reverse| QueueOrder { sort, reverse }))
                {
                    // Walk forwards page by page, then back from the end.
                    let mut cur: Option<QueueCursor> = None;
                    loop {
                        let want = s
                            .queue_page(&f, sort, cur.as_ref(), PageDir::After, 7)
                            .unwrap();
                        let got = ix
                            .page(&s, &f, sort, cur.as_ref(), PageDir::After, 7, &|| false)
                            .unwrap();
                        assert_eq!(ids(&got), ids(&want), "{q:?} {sort:?} {f:?}");
                        compared += 1;
                        if want.is_empty() {
                            break;
                        }
                        if let Some(c) = want.get(2).map(QueueRow::cursor) {
                            let want = s.queue_page(&f, sort, Some(&c), PageDir::From, 4).unwrap();
                            let got = ix
                                .page(&s, &f, sort, Some(&c), PageDir::From, 4, &|| false)
                                .unwrap();
                            assert_eq!(ids(&got), ids(&want));
                        }
                        cur = want.last().map(QueueRow::cursor);
                        if compared > 400 {
                            break;
                        }
                    }
                    let want = s.queue_page(&f, sort, None, PageDir::Before, 5).unwrap();
                    let got = ix
                        .page(&s, &f, sort, None, PageDir::Before, 5, &|| false)
                        .unwrap();
                    assert_eq!(ids(&got), ids(&want));
                    if let Some(c) = want.first().map(QueueRow::cursor) {
                        let want = s
                            .queue_page(&f, sort, Some(&c), PageDir::Before, 5)
                            .unwrap();
                        let got = ix
                            .page(&s, &f, sort, Some(&c), PageDir::Before, 5, &|| false)
                            .unwrap();
                        assert_eq!(ids(&got), ids(&want));
                    }
                }
            }
        }
        assert!(compared > 50);
    }

    #[test]
    fn typing_narrows_to_the_stores_rows() {
        let s = cache();
        let mut ix = SearchIndex::build(&s, &|| false).unwrap().unwrap();
        let f = |q: &str| QueueFilter {
            search: Some(q.into()),
            ..Default::default()
        };
        let wide = ix
            .page(
                &s,
                &f("e"),
                QueueSort::Rank,
                None,
                PageDir::After,
                10_000,
                &|| false,
            )
            .unwrap();
        let narrow = ix
            .page(
                &s,
                &f("es"),
                QueueSort::Rank,
                None,
                PageDir::After,
                10_000,
                &|| false,
            )
            .unwrap();
        assert!(!narrow.is_empty() && narrow.len() < wide.len());
        let want = s
            .queue_page(&f("es"), QueueSort::Rank, None, PageDir::After, 10_000)
            .unwrap();
        assert_eq!(ids(&narrow), ids(&want));
    }

    #[test]
    fn fold_query_trims_lowercases_and_drops_controls() {
        assert_eq!(fold_query("  AcMe\u{1}\n "), "acme");
        assert_eq!(fold_query("ÉCOLE"), "école");
    }

    /// On the search worker a first page comes in two messages (a screenful first),
    /// together equal to the store's page; a superseded request gets an empty answer.
    #[test]
    fn the_worker_streams_a_search_page_and_drops_superseded_ones() {
        use crate::tui::effects::{self, Effect, Env, Msg, PageMode, Select, WorkerState};
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let mut s = cache();
        let env = Env {
            user: "u".into(),
            role: crate::config::Role::Analyst,
            config: crate::config::Config::default(),
        };
        let latest = Arc::new(AtomicU64::new(7));
        let mut state = WorkerState::for_search(latest.clone());
        let mut got = Vec::new();
        effects::execute_stream(
            &mut s,
            &env,
            &mut state,
            Effect::BuildSearchIndex,
            &mut |m| {
                got.push(m);
                true
            },
        );
        assert!(matches!(got.as_slice(), [Msg::SearchIndex { entries, .. }] if *entries > 100));
        let filter = QueueFilter {
            search: Some("e".into()),
            ..Default::default()
        };
        let load = |req| Effect::LoadQueue {
            req,
            filter: filter.clone(),
            sort: QueueSort::Rank.into(),
            cursor: None,
            dir: PageDir::After,
            limit: 200,
            mode: PageMode::Replace(Select::First),
        };
        let mut msgs = Vec::new();
        effects::execute_stream(&mut s, &env, &mut state, load(7), &mut |m| {
            msgs.push(m);
            true
        });
        let want = s
            .queue_page(&filter, QueueSort::Rank, None, PageDir::After, 200)
            .unwrap();
        assert_eq!(want.len(), 200, "fixture too small for two parts");
        match msgs.as_slice() {
            [Msg::Queue {
                mode: PageMode::Replace(_),
                rows: a,
                more: true,
                ..
            }, Msg::Queue {
                mode: PageMode::Append,
                rows: b,
                more: false,
                ..
            }] => {
                assert_eq!(a.len(), effects::SEARCH_FIRST);
                let all: Vec<QueueRow> = a.iter().chain(b.iter()).cloned().collect();
                assert_eq!(ids(&all), ids(&want));
            }
            other => panic!("unexpected messages: {other:?}"),
        }
        // The UI sent a newer request: this one is answered empty (and ignored there).
        latest.store(9, Ordering::SeqCst);
        let mut msgs = Vec::new();
        effects::execute_stream(&mut s, &env, &mut state, load(8), &mut |m| {
            msgs.push(m);
            true
        });
        assert!(
            matches!(msgs.as_slice(), [Msg::Queue { req: 8, rows, .. }] if rows.is_empty()),
            "{msgs:?}"
        );
    }
}
