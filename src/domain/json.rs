//! JSON reads that build no more than they need: pointer lookups without allocation
//! ([`at`]) and a parse that builds only named parts of a document ([`parse_only`]).
//!
//! `serde_json::Value::pointer` unescapes every segment into two fresh `String`s
//! (`~1`, `~0`), even when there is nothing to unescape. An event goes through about
//! a hundred fixed pointers (fields, content key, structure check, search document),
//! and those allocations were 7% of the server's CPU under load. The pointers here are
//! constants without escapes; one with a `~` is still handed to serde_json.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The value at `pointer` (RFC 6901), as `Value::pointer` finds it.
pub fn at<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.contains('~') {
        return value.pointer(pointer);
    }
    if pointer.is_empty() {
        return Some(value);
    }
    pointer
        .strip_prefix('/')?
        .split('/')
        .try_fold(value, |target, token| match target {
            Value::Object(map) => map.get(token),
            Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
            _ => None,
        })
}

/// The parts of a document some code reads, as a tree of object keys: where a
/// pointer ends, the whole value under it is kept; an array is walked with the same
/// node for each item, so a pointer through an array index (`/pages/0/sha`) keeps
/// the whole value before the index.
#[derive(Debug, Default)]
pub struct Paths {
    whole: bool,
    children: BTreeMap<String, Paths>,
}

impl Paths {
    /// The tree of these pointers (constants without `~` escapes).
    pub fn new<'p>(pointers: impl IntoIterator<Item = &'p str>) -> Self {
        let mut root = Self::default();
        for pointer in pointers {
            debug_assert!(
                pointer.starts_with('/') && !pointer.contains('~'),
                "{pointer}"
            );
            let mut node = &mut root;
            for token in pointer.trim_start_matches('/').split('/') {
                if array_index(token).is_some() {
                    break;
                }
                node = node.children.entry(token.to_owned()).or_default();
            }
            node.whole = true;
        }
        root
    }
}

/// Parses JSON text like `serde_json::from_slice`, and refuses what it refuses, but
/// builds only the parts `paths` names; everything else is checked and skipped
/// without an allocation. For the search index, which reads a few dozen strings of
/// a ~10 KB payload, this is several times cheaper than building the whole tree.
///
/// Also refuses a document nested deeper than [`MAX_NESTING`], so that whatever it
/// accepts can be read back whole, inside the API's and the export's envelopes.
pub fn parse_only(text: &[u8], paths: &Paths) -> serde_json::Result<Value> {
    // One UTF-8 check of the whole text is several times cheaper than serde_json's
    // check of each string in turn. Text that fails it takes the slice reader, whose
    // error names the line and column.
    let value = match std::str::from_utf8(text) {
        Ok(text) => parse_pruned(serde_json::Deserializer::from_str(text), paths)?,
        Err(_) => parse_pruned(serde_json::Deserializer::from_slice(text), paths)?,
    };
    if !nesting_fits(text) {
        return Err(serde::de::Error::custom(format!(
            "nested deeper than {MAX_NESTING} levels"
        )));
    }
    Ok(value)
}

fn parse_pruned<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
    paths: &Paths,
) -> serde_json::Result<Value> {
    let value = Pruned(paths).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Deepest nesting accepted. GitHub's payloads nest about ten deep. A stored payload
/// is read back inside other documents (the API's envelope, an export line, which an
/// import parses again), and serde_json refuses anything nested 128 deep, so the
/// limit leaves room for those envelopes.
pub const MAX_NESTING: usize = 100;

/// True when valid JSON `text` nests no deeper than [`MAX_NESTING`]. Strings
/// (most of a payload) are crossed with `memchr`, not byte by byte.
fn nesting_fits(text: &[u8]) -> bool {
    // Text with fewer brackets than the limit cannot nest that deep: one quick count
    // settles most payloads (seven in eight of the fixtures).
    if memchr::memchr2_iter(b'[', b'{', text).count() <= MAX_NESTING {
        return true;
    }
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = text.get(at) {
        at += 1;
        match byte {
            b'"' => loop {
                let rest = text.get(at..).unwrap_or_default();
                let Some(offset) = memchr::memchr2(b'"', b'\\', rest) else {
                    return true;
                };
                at += offset + 1;
                if text[at - 1] == b'"' {
                    break;
                }
                at += 1; // the escaped byte
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

struct Pruned<'p>(&'p Paths);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            serde::Deserialize::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            match self.0.children.get(key.as_ref()) {
                Some(child) => {
                    kept.insert(key.into_owned(), map.next_value_seed(Pruned(child))?);
                }
                None => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Pruned(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A skipped value, checked as a full parse would check it. serde's `IgnoredAny`
/// lets through what building the value refuses: numbers beyond `f64` (`1e400`),
/// strings that are not UTF-8 or hold a lone surrogate (`"\ud800"`). A payload
/// accepted with those could be stored but never read back, so they are parsed
/// (into borrowed or scalar values, without an allocation) and dropped.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
}

/// An object key, borrowed from the input unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// An array index as RFC 6901 spells it: digits, no sign, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Every pointer to every node of every fixture, plus pointers that miss, resolve
    /// as serde_json resolves them.
    #[test]
    fn agrees_with_serde_json_on_every_fixture() {
        let mut checked = 0;
        for fixture in every_fixture().into_iter().map(|(_, value)| value) {
            let mut pointers = Vec::new();
            collect_pointers(&fixture, String::new(), &mut pointers);
            for pointer in &pointers {
                for probe in [
                    pointer.clone(),
                    format!("{pointer}/missing"),
                    format!("{pointer}/0"),
                ] {
                    assert_eq!(at(&fixture, &probe), fixture.pointer(&probe), "{probe}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000, "only {checked} pointers checked");
    }

    #[test]
    fn indexes_escapes_and_odd_tokens_follow_the_rfc() {
        let value = json!({"a/b": 1, "m~n": 2, "list": [10, 20], "": {"": 3}});
        for pointer in [
            "",
            "/",
            "//",
            "/a~1b",
            "/m~0n",
            "/list/1",
            "/list/01",
            "/list/+1",
            "/list/-1",
            "/list/2",
            "/list/",
            "a",
            "/list/1/x",
        ] {
            assert_eq!(at(&value, pointer), value.pointer(pointer), "{pointer:?}");
        }
    }

    /// Every example payload in `fixtures/`: (its JSON text, parsed).
    pub(crate) fn every_fixture() -> Vec<(Vec<u8>, Value)> {
        every_fixture_by_event()
            .into_iter()
            .map(|(_, text, value)| (text, value))
            .collect()
    }

    /// Every example payload in `fixtures/`: (its event type's folder, JSON text, parsed).
    pub(crate) fn every_fixture_by_event() -> Vec<(String, Vec<u8>, Value)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut payloads = Vec::new();
        for event in std::fs::read_dir(root).unwrap() {
            let event = event.unwrap().path();
            if !event.is_dir() {
                continue;
            }
            let name = event.file_name().unwrap().to_str().unwrap().to_owned();
            for example in std::fs::read_dir(&event).unwrap() {
                let text = std::fs::read(example.unwrap().path()).unwrap();
                let value = serde_json::from_slice(&text).unwrap();
                payloads.push((name.clone(), text, value));
            }
        }
        assert!(payloads.len() > 300, "fixtures missing");
        payloads
    }

    /// `value` cut down to `paths` the slow way: whole subtrees, then pruned.
    fn pruned(value: &Value, paths: &Paths) -> Value {
        if paths.whole {
            return value.clone();
        }
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| paths.children.get(k).map(|p| (k.clone(), pruned(v, p))))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| pruned(v, paths)).collect()),
            scalar => scalar.clone(),
        }
    }

    #[test]
    fn parse_only_builds_exactly_the_named_parts() {
        let paths = Paths::new([
            "/action",
            "/repository/full_name",
            "/pull_request/labels",
            "/commits/message",
            "/commits/author/name",
            "/issue",
            "/issue/title",
            "/sender/id",
        ]);
        for (text, value) in every_fixture() {
            assert_eq!(parse_only(&text, &paths).unwrap(), pruned(&value, &paths));
        }
        let (text, _) = &every_fixture()[0];
        assert_eq!(parse_only(text, &Paths::new([])).unwrap(), json!({}));
    }

    #[test]
    fn parse_only_refuses_what_serde_json_refuses() {
        let paths = Paths::new(["/a/b"]);
        // Nested deeper than the limit, in a part that is skipped.
        let too_deep = format!(
            "{{\"a\": 1, \"deep\": {}{}}}",
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        );
        for bad in [
            &b"{\"a\": {\"b\": 1}"[..],
            b"{\"a\": 1} trailing",
            b"{\"skipped\": [1, 2,]}",
            b"{\"skipped\": \"\\x\"}",
            b"{\"a\": {\"b\": nul}}",
            b"",
        ] {
            assert!(serde_json::from_slice::<Value>(bad).is_err());
            assert!(
                parse_only(bad, &paths).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_only(too_deep.as_bytes(), &paths).is_err());
        let deepest = format!(
            "{{\"a\": {{\"b\": \"\\\"[{{\"}}, \"d\": {}{}}}",
            "[".repeat(MAX_NESTING - 1),
            "]".repeat(MAX_NESTING - 1)
        );
        assert!(serde_json::from_slice::<Value>(deepest.as_bytes()).is_ok());
        assert!(parse_only(deepest.as_bytes(), &paths).is_ok());
        let escaped_key = br#"{"\u0061": {"b": "x", "c": 2}, "z": [true]}"#;
        assert_eq!(
            parse_only(escaped_key, &paths).unwrap(),
            json!({"a": {"b": "x"}})
        );
        let whole_and_part = Paths::new(["/a", "/a/b"]);
        assert_eq!(
            parse_only(escaped_key, &whole_and_part).unwrap(),
            json!({"a": {"b": "x", "c": 2}})
        );
        let through_index = Paths::new(["/pages/0/sha"]);
        assert_eq!(
            parse_only(
                br#"{"pages": [{"sha": "a", "x": 1}], "y": 2}"#,
                &through_index
            )
            .unwrap(),
            json!({"pages": [{"sha": "a", "x": 1}]})
        );
    }

    /// What `IgnoredAny` would skip but a full parse refuses is refused in the
    /// skipped parts too, so every accepted document reads back whole.
    #[test]
    fn parse_only_checks_the_parts_it_skips() {
        let paths = Paths::new(["/zen"]);
        for bad in [
            &b"{\"zen\": \"x\", \"n\": 1e400}"[..],
            b"{\"zen\": \"x\", \"n\": [-1e309]}",
            b"{\"zen\": \"x\", \"s\": \"\\ud800\"}",
            b"{\"zen\": \"x\", \"s\": {\"\\udc00\": 1}}",
            b"{\"zen\": \"x\", \"s\": \"\xff\"}",
            b"{\"zen\": \"x\", \"\xc3\": 1}",
        ] {
            assert!(
                parse_only(bad, &paths).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(serde_json::from_slice::<Value>(bad).is_err());
        }
        let fine = br#"{"zen": "x", "n": 1e300, "s": "\ud83d\ude00", "k": {"\u00e9": [0.5]}}"#;
        assert!(parse_only(fine, &paths).is_ok());
        assert!(serde_json::from_slice::<Value>(fine).is_ok());
    }

    fn collect_pointers(value: &Value, here: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    collect_pointers(child, format!("{here}/{escaped}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    collect_pointers(child, format!("{here}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(here);
    }
}
