//! Common-word bigrams ("common grams") for the `text` field, so that phrases with
//! words like "the" or "with" do not read those words' positions. Reading positions
//! is nearly all of a phrase query's time (callgrind), about the same per candidate
//! event and term, and more for a word that occurs many times in an event; on the
//! benchmark's 1M events pairs took a phrase with two common words in six from six
//! terms to four, and 37 % off its instructions.
//!
//! At index time each word is kept and every pair of adjacent words of which one is
//! common is added as one more term, `"the readme"`, at the first word's position.
//! At query time a phrase is rewritten to the fewest pairs and words that pin each of
//! its words in place: `"update the readme"` becomes `"update the" "the readme"`,
//! which matches exactly the events the words would have matched (each pair exists
//! only where its two words are adjacent), from fewer terms with a position or two
//! per event.

use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TextAnalyzerBuilder, Token,
    TokenFilter, TokenStream, Tokenizer,
};

/// The words paired with their neighbours: Lucene's classic English stop words.
/// Sorted, for `binary_search`. Changing the list changes the index (a schema bump).
const COMMON_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

fn is_common(word: &str) -> bool {
    COMMON_WORDS.binary_search(&word).is_ok()
}

/// Whether `next` directly follows `previous` and the two make a pair.
fn pairs(previous: &Token, next: &Token) -> bool {
    previous.position + 1 == next.position && (is_common(&previous.text) || is_common(&next.text))
}

fn write_pair(pair: &mut Token, previous: &Token, next: &Token) {
    pair.text.clear();
    pair.text.push_str(&previous.text);
    pair.text.push(' ');
    pair.text.push_str(&next.text);
    pair.position = previous.position;
    pair.position_length = 2;
    pair.offset_from = previous.offset_from;
    pair.offset_to = next.offset_to;
}

/// Words as tantivy's default analyzer cuts them: runs of letters and digits, at
/// most 40 bytes, lowercased. What a query looks for when its phrases are loose
/// (`"a b"~2`, `"a b"*`): the pairs only serve exact, adjacent words.
pub fn words_analyzer() -> TextAnalyzer {
    words().build()
}

/// What the index holds: every word and every pair.
pub fn index_analyzer() -> TextAnalyzer {
    words().filter(CommonGrams::Index).build()
}

/// What an exact phrase looks for: the fewest pairs and words that pin every word.
pub fn phrase_analyzer() -> TextAnalyzer {
    words().filter(CommonGrams::Query).build()
}

fn words() -> TextAnalyzerBuilder<impl Tokenizer> {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
}

#[derive(Clone, Copy)]
enum CommonGrams {
    Index,
    Query,
}

impl TokenFilter for CommonGrams {
    type Tokenizer<T: Tokenizer> = CommonGramsFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> CommonGramsFilter<T> {
        CommonGramsFilter { mode: self, inner }
    }
}

#[derive(Clone)]
pub struct CommonGramsFilter<T> {
    mode: CommonGrams,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for CommonGramsFilter<T> {
    type TokenStream<'a> = CommonGramsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let inner = self.inner.token_stream(text);
        match self.mode {
            CommonGrams::Index => CommonGramsStream::Index(IndexStream {
                inner,
                previous: Token::default(),
                pair: Token::default(),
                showing_pair: false,
            }),
            CommonGrams::Query => CommonGramsStream::Query(QueryStream::new(inner)),
        }
    }
}

pub enum CommonGramsStream<S> {
    Index(IndexStream<S>),
    Query(QueryStream),
}

impl<S: TokenStream> TokenStream for CommonGramsStream<S> {
    fn advance(&mut self) -> bool {
        match self {
            Self::Index(stream) => stream.advance(),
            Self::Query(stream) => stream.advance(),
        }
    }

    fn token(&self) -> &Token {
        match self {
            Self::Index(stream) => stream.token(),
            Self::Query(stream) => stream.token(),
        }
    }

    fn token_mut(&mut self) -> &mut Token {
        match self {
            Self::Index(stream) => stream.token_mut(),
            Self::Query(stream) => stream.token_mut(),
        }
    }
}

/// Streams the words, each pair between its two words; the inner token is passed on
/// as it is (indexing allocates nothing per word here).
pub struct IndexStream<S> {
    inner: S,
    /// The word before the current one (its text buffer is reused); its position
    /// is `usize::MAX` before the first word.
    previous: Token,
    pair: Token,
    /// The pair is out now and the inner stream's word comes next.
    showing_pair: bool,
}

impl<S: TokenStream> IndexStream<S> {
    fn advance(&mut self) -> bool {
        if self.showing_pair {
            self.showing_pair = false;
            return true;
        }
        if !self.inner.advance() {
            return false;
        }
        let word = self.inner.token();
        let previous = &mut self.previous;
        // The pair goes out first: it sits at the previous word's position.
        if previous.position != usize::MAX && pairs(previous, word) {
            write_pair(&mut self.pair, previous, word);
            self.showing_pair = true;
        }
        previous.text.clear();
        previous.text.push_str(&word.text);
        previous.position = word.position;
        previous.offset_from = word.offset_from;
        true
    }

    fn token(&self) -> &Token {
        if self.showing_pair {
            &self.pair
        } else {
            self.inner.token()
        }
    }

    fn token_mut(&mut self) -> &mut Token {
        if self.showing_pair {
            &mut self.pair
        } else {
            self.inner.token_mut()
        }
    }
}

/// The terms an exact phrase is looked up by, worked out whole (phrases are short).
pub struct QueryStream {
    /// In reverse order: `advance` pops.
    tokens: Vec<Token>,
    current: Token,
}

impl QueryStream {
    /// The fewest terms that pin every word of the phrase to its place, pairs first:
    /// each term costs about the same to check per candidate event, and a pair has
    /// fewer positions to read than a common word.
    fn new(mut inner: impl TokenStream) -> Self {
        let mut words = Vec::new();
        inner.process(&mut |token| words.push(token.clone()));
        let paired = |i: usize| i + 1 < words.len() && pairs(&words[i], &words[i + 1]);
        let pair_at = |i: usize| {
            let mut pair = Token::default();
            write_pair(&mut pair, &words[i], &words[i + 1]);
            pair
        };
        let mut tokens = Vec::new();
        let mut i = 0;
        // Left to right, the first word not yet pinned is taken with its right
        // neighbour, or else with its left one (pinned already), or else alone.
        while i < words.len() {
            if paired(i) {
                tokens.push(pair_at(i));
                i += 2;
                continue;
            }
            if i > 0 && paired(i - 1) {
                tokens.push(pair_at(i - 1));
            } else {
                tokens.push(words[i].clone());
            }
            i += 1;
        }
        tokens.reverse();
        Self {
            tokens,
            current: Token::default(),
        }
    }

    fn advance(&mut self) -> bool {
        match self.tokens.pop() {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(mut analyzer: TextAnalyzer, text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        analyzer
            .token_stream(text)
            .process(&mut |t| out.push((t.position, t.text.clone())));
        out
    }

    fn at(list: &[(usize, &str)]) -> Vec<(usize, String)> {
        list.iter().map(|(p, t)| (*p, (*t).to_owned())).collect()
    }

    #[test]
    fn the_list_is_sorted_for_binary_search() {
        assert!(COMMON_WORDS.is_sorted());
    }

    #[test]
    fn the_index_keeps_every_word_and_adds_pairs_with_common_words() {
        assert_eq!(
            tokens(index_analyzer(), "Update the README, with new info"),
            at(&[
                (0, "update"),
                (0, "update the"),
                (1, "the"),
                (1, "the readme"),
                (2, "readme"),
                (2, "readme with"),
                (3, "with"),
                (3, "with new"),
                (4, "new"),
                (5, "info"),
            ])
        );
        // No pair across a word dropped for its length (positions are not adjacent).
        let long = "x".repeat(41);
        assert_eq!(
            tokens(index_analyzer(), &format!("the {long} end")),
            at(&[(0, "the"), (2, "end")])
        );
    }

    #[test]
    fn a_phrase_asks_for_the_fewest_terms_that_pin_every_word() {
        assert_eq!(
            tokens(phrase_analyzer(), "Update the README with new information"),
            at(&[
                (0, "update the"),
                (2, "readme with"),
                (3, "with new"),
                (5, "information"),
            ])
        );
        // A common word last is taken with the word before it, not alone.
        assert_eq!(
            tokens(phrase_analyzer(), "fix build of the"),
            at(&[(0, "fix"), (1, "build of"), (2, "of the")])
        );
        assert_eq!(
            tokens(phrase_analyzer(), "merge pull request"),
            at(&[(0, "merge"), (1, "pull"), (2, "request")])
        );
        assert_eq!(tokens(phrase_analyzer(), "the"), at(&[(0, "the")]));
    }

    /// Matches of `phrase` among `docs`, with the query's words cut by `analyzer`,
    /// on an index of words and pairs.
    fn matches(docs: &[String], phrase: &str, analyzer: TextAnalyzer) -> Vec<u64> {
        use tantivy::collector::DocSetCollector;
        use tantivy::query::QueryParser;
        use tantivy::schema::{IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
        use tantivy::tokenizer::TokenizerManager;

        let mut builder = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer("t")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let text = builder.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(indexing),
        );
        let index = tantivy::Index::create_in_ram(builder.build());
        index.tokenizers().register("t", index_analyzer());
        let mut writer: tantivy::IndexWriter =
            index.writer_with_num_threads(1, 15_000_000).unwrap();
        for doc in docs {
            writer
                .add_document(tantivy::doc!(text => doc.as_str()))
                .unwrap();
        }
        writer.commit().unwrap();
        let tokenizers = TokenizerManager::default();
        tokenizers.register("t", analyzer);
        let parser = QueryParser::new(index.schema(), vec![text], tokenizers);
        let query = parser.parse_query(&format!("\"{phrase}\"")).unwrap();
        let searcher = index.reader().unwrap().searcher();
        let mut found: Vec<u64> = searcher
            .search(&query, &DocSetCollector)
            .unwrap()
            .into_iter()
            .map(|address| u64::from(address.doc_id))
            .collect();
        found.sort_unstable();
        found
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 64,
            // Beside the integration tests' seeds, not in a folder at the top.
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "tests/proptest-regressions/common_grams.txt",
                ),
            )),
            ..Default::default()
        })]
        /// Pairs change how a phrase is found, never what is found.
        #[test]
        fn pairs_find_exactly_what_words_find(
            docs in proptest::collection::vec(
                proptest::collection::vec(0..8usize, 0..24), 1..24),
            phrase in proptest::collection::vec(0..8usize, 1..5),
            from in 0..24usize,
        ) {
            const VOCABULARY: [&str; 8] = ["the", "a", "of", "with", "fix", "bug", "build", "readme"];
            let text = |words: &[usize]| {
                words.iter().map(|w| VOCABULARY[*w]).collect::<Vec<_>>().join(" ")
            };
            let docs: Vec<String> = docs.iter().map(|d| text(d)).collect();
            // Half the time, a phrase that occurs: a slice of one of the documents.
            let words = &docs[from % docs.len()];
            let phrase = if from % 2 == 0 && !words.is_empty() {
                let words: Vec<&str> = words.split(' ').collect();
                let start = from % words.len();
                words[start..(start + phrase.len()).min(words.len())].join(" ")
            } else {
                text(&phrase)
            };
            proptest::prop_assert_eq!(
                matches(&docs, &phrase, phrase_analyzer()),
                matches(&docs, &phrase, words_analyzer())
            );
        }
    }

    #[test]
    fn pairs_carry_the_offsets_of_both_words() {
        let mut analyzer = index_analyzer();
        let mut spans = Vec::new();
        analyzer.token_stream("fix the bug").process(&mut |t| {
            spans.push((t.text.clone(), t.offset_from..t.offset_to));
        });
        assert!(spans.contains(&("fix the".to_owned(), 0..7)));
        assert!(spans.contains(&("the bug".to_owned(), 4..11)));
    }
}
