//! Facet counts from an exact field's column: per segment, one counter per term
//! ordinal, named only at the end. A broad query hits a quarter of all events, and
//! this costs an array increment per hit where tantivy's `FacetCollector` reads and
//! maps facet paths.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts the hits per value of a `FAST` string field.
pub struct TermCounts {
    field: &'static str,
}

impl TermCounts {
    pub fn for_field(field: &'static str) -> Self {
        Self { field }
    }
}

pub struct SegmentTermCounts {
    column: Option<StrColumn>,
    counts: Vec<u64>,
}

impl Collector for TermCounts {
    type Fruit = HashMap<String, u64>;
    type Child = SegmentTermCounts;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTermCounts> {
        let column = reader.fast_fields().str(self.field)?;
        let terms = column.as_ref().map_or(0, |c| c.num_terms());
        Ok(SegmentTermCounts {
            column,
            counts: vec![0; terms],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        segments: Vec<HashMap<String, u64>>,
    ) -> tantivy::Result<HashMap<String, u64>> {
        let mut total = HashMap::new();
        for counts in segments {
            for (term, count) in counts {
                *total.entry(term).or_default() += count;
            }
        }
        Ok(total)
    }
}

impl SegmentCollector for SegmentTermCounts {
    type Fruit = HashMap<String, u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(column) = &self.column {
            for ord in column.term_ords(doc) {
                self.counts[ord as usize] += 1;
            }
        }
    }

    fn harvest(self) -> HashMap<String, u64> {
        let Some(column) = self.column else {
            return HashMap::new();
        };
        let mut named = HashMap::new();
        for (ord, &count) in self.counts.iter().enumerate() {
            let mut term = String::new();
            if count > 0 && column.ord_to_str(ord as u64, &mut term).unwrap_or(false) {
                named.insert(term, count);
            }
        }
        named
    }
}
