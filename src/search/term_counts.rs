//! The total and the facet counts of a search, in one pass without scoring: per
//! segment, one counter per term ordinal of a `FAST` string column (`facets`), named
//! only at the end. A broad query hits a quarter of all events, so the pass reads the
//! matches in blocks (tantivy's no-score path) and looks the column up a block at a
//! time; the top hits are found apart, where scoring can skip what cannot rank.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{RowId, StrColumn};
use tantivy::query::Weight;
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts the hits, and the hits per value of a single-valued `FAST` string field.
pub struct TermCounts {
    field: &'static str,
}

impl TermCounts {
    pub fn for_field(field: &'static str) -> Self {
        Self { field }
    }
}

/// What a pass found: the hit count, and each value's.
#[derive(Debug, Default)]
pub struct Counted {
    pub total: usize,
    pub per_value: HashMap<String, u64>,
}

pub struct SegmentTermCounts {
    hits: usize,
    column: Option<StrColumn>,
    counts: Vec<u64>,
    /// A block's hits that have a value, their rows in the column, and the values
    /// (term ordinals): reused from block to block.
    valued: Vec<DocId>,
    rows: Vec<RowId>,
    ords: Vec<u64>,
    /// Hits handed over one at a time (beside a scoring collector), looked up a
    /// block at a time like the others.
    pending: [DocId; COLLECT_BLOCK_BUFFER_LEN],
    pending_len: usize,
}

impl Collector for TermCounts {
    type Fruit = Counted;
    type Child = SegmentTermCounts;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTermCounts> {
        let column = reader.fast_fields().str(self.field)?;
        let terms = column.as_ref().map_or(0, |c| c.num_terms());
        Ok(SegmentTermCounts {
            hits: 0,
            column,
            counts: vec![0; terms],
            valued: Vec::with_capacity(COLLECT_BLOCK_BUFFER_LEN),
            rows: Vec::with_capacity(COLLECT_BLOCK_BUFFER_LEN),
            ords: Vec::with_capacity(COLLECT_BLOCK_BUFFER_LEN),
            pending: [0; COLLECT_BLOCK_BUFFER_LEN],
            pending_len: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    /// tantivy hands out blocks only for segments without deletions; status changes
    /// re-index events, so most segments have some. Live documents are gathered into
    /// blocks here either way.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Counted> {
        let mut counts = self.for_segment(segment, reader)?;
        match reader.alive_bitset() {
            None => weight.for_each_no_score(reader, &mut |docs| counts.collect_block(docs))?,
            Some(alive) => {
                let mut live = [0; COLLECT_BLOCK_BUFFER_LEN];
                weight.for_each_no_score(reader, &mut |docs| {
                    let mut n = 0;
                    for &doc in docs.iter().filter(|&&doc| alive.is_alive(doc)) {
                        live[n] = doc;
                        n += 1;
                    }
                    counts.collect_block(&live[..n]);
                })?;
            }
        }
        Ok(counts.harvest())
    }

    fn merge_fruits(&self, segments: Vec<Counted>) -> tantivy::Result<Counted> {
        let mut merged = Counted::default();
        for segment in segments {
            merged.total += segment.total;
            for (value, count) in segment.per_value {
                *merged.per_value.entry(value).or_default() += count;
            }
        }
        Ok(merged)
    }
}

impl SegmentTermCounts {
    fn flush_pending(&mut self) {
        let pending = self.pending;
        self.collect_block(&pending[..self.pending_len]);
        self.pending_len = 0;
    }
}

impl SegmentCollector for SegmentTermCounts {
    type Fruit = Counted;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.pending[self.pending_len] = doc;
        self.pending_len += 1;
        if self.pending_len == COLLECT_BLOCK_BUFFER_LEN {
            self.flush_pending();
        }
    }

    /// The block's rows are found at once and their values read in one call
    /// (`Column::first_vals` would look a column where some documents have no value
    /// up one hit at a time).
    fn collect_block(&mut self, docs: &[DocId]) {
        self.hits += docs.len();
        let Some(column) = &self.column else {
            return;
        };
        let ords = column.ords();
        self.valued.clear();
        self.rows.clear();
        ords.row_ids_for_docs(docs, &mut self.valued, &mut self.rows);
        self.ords.resize(self.rows.len(), 0);
        ords.values.get_vals(&self.rows, &mut self.ords);
        for &ord in &self.ords {
            self.counts[ord as usize] += 1;
        }
    }

    fn harvest(mut self) -> Counted {
        self.flush_pending();
        let mut per_value = HashMap::new();
        if let Some(column) = &self.column {
            // Named in one ordered walk of the dictionary: looking each ordinal up
            // alone decodes its dictionary block from the start every time.
            let counted: Vec<u64> = (0..self.counts.len() as u64)
                .filter(|&ord| self.counts[ord as usize] > 0)
                .collect();
            let mut counts = counted.iter().map(|&ord| self.counts[ord as usize]);
            let named = column
                .dictionary()
                .sorted_ords_to_term_cb(&counted, |value| {
                    let count = counts.next().expect("one count per ordinal");
                    per_value.insert(String::from_utf8_lossy(value).into_owned(), count);
                });
            debug_assert!(named.is_ok_and(|all| all), "every ordinal has a value");
        }
        Counted {
            total: self.hits,
            per_value,
        }
    }
}
