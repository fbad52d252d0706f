//! The total and the facet counts of a search, in one pass without scoring: per
//! segment, one counter per term ordinal of each exact field's column, named only at
//! the end. A broad query hits a quarter of all events, so the pass reads the
//! matches in blocks (tantivy's no-score path) and looks the columns up a block at
//! a time; the top hits are found apart, where scoring can skip what cannot rank.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::Weight;
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts the hits, and the hits per value of each of some single-valued `FAST`
/// string fields.
pub struct TermCounts {
    fields: &'static [&'static str],
}

impl TermCounts {
    pub fn for_fields(fields: &'static [&'static str]) -> Self {
        Self { fields }
    }
}

/// What a pass found: the hit count, and per field (in the order given) each value's.
#[derive(Debug, Default)]
pub struct Counted {
    pub total: usize,
    pub per_field: Vec<HashMap<String, u64>>,
}

pub struct SegmentTermCounts {
    hits: usize,
    columns: Vec<ColumnCounts>,
    ords: [Option<u64>; COLLECT_BLOCK_BUFFER_LEN],
    /// Hits handed over one at a time (beside a scoring collector), looked up a
    /// block at a time like the others.
    pending: [DocId; COLLECT_BLOCK_BUFFER_LEN],
    pending_len: usize,
}

struct ColumnCounts {
    column: Option<StrColumn>,
    counts: Vec<u64>,
}

impl Collector for TermCounts {
    type Fruit = Counted;
    type Child = SegmentTermCounts;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTermCounts> {
        let columns = self
            .fields
            .iter()
            .map(|field| {
                let column = reader.fast_fields().str(field)?;
                let terms = column.as_ref().map_or(0, |c| c.num_terms());
                Ok(ColumnCounts {
                    column,
                    counts: vec![0; terms],
                })
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(SegmentTermCounts {
            hits: 0,
            columns,
            ords: [None; COLLECT_BLOCK_BUFFER_LEN],
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
        let mut merged = Counted {
            total: 0,
            per_field: vec![HashMap::new(); self.fields.len()],
        };
        for segment in segments {
            merged.total += segment.total;
            for (into, from) in merged.per_field.iter_mut().zip(segment.per_field) {
                for (term, count) in from {
                    *into.entry(term).or_default() += count;
                }
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

    fn collect_block(&mut self, docs: &[DocId]) {
        self.hits += docs.len();
        // Blocks are at most COLLECT_BLOCK_BUFFER_LEN long; longer slices go in parts.
        for docs in docs.chunks(COLLECT_BLOCK_BUFFER_LEN) {
            let ords = &mut self.ords[..docs.len()];
            for column in &mut self.columns {
                let Some(values) = &column.column else {
                    continue;
                };
                ords.fill(None);
                values.ords().first_vals(docs, ords);
                for ord in ords.iter().flatten() {
                    column.counts[*ord as usize] += 1;
                }
            }
        }
    }

    fn harvest(mut self) -> Counted {
        self.flush_pending();
        let per_field = self
            .columns
            .into_iter()
            .map(|ColumnCounts { column, counts }| {
                let mut named = HashMap::new();
                let Some(column) = column else {
                    return named;
                };
                for (ord, &count) in counts.iter().enumerate() {
                    let mut term = String::new();
                    if count > 0 && column.ord_to_str(ord as u64, &mut term).unwrap_or(false) {
                        named.insert(term, count);
                    }
                }
                named
            })
            .collect();
        Counted {
            total: self.hits,
            per_field,
        }
    }
}
