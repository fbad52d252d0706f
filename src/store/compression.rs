//! Payload compression: zstd with a dictionary trained on GitHub's webhook payloads
//! (`benches/train_dictionary.rs`, from the fixtures). The dictionary already knows
//! their keys and URL templates, so a payload compresses about three times better
//! than with plain zstd, and faster. Each frame names its dictionary's id, so plain
//! frames written before the dictionary existed still decode. A dictionary in use is
//! never replaced: a new one gets a new file and id, and this one stays for decoding.

use std::cell::RefCell;
use std::io;
use std::num::NonZeroU32;
use std::sync::LazyLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

const DICTIONARY_V1: &[u8] = include_bytes!("payloads-v1.dict");

/// Level 3 with the dictionary is both smaller and faster than plain level 19.
const LEVEL: i32 = 3;

static ENCODER: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY_V1, LEVEL));
static DECODER: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY_V1));
static DICTIONARY_ID: LazyLock<Option<NonZeroU32>> =
    LazyLock::new(|| zstd::zstd_safe::get_dict_id_from_dict(DICTIONARY_V1));

thread_local! {
    // One compression context per thread: creating one costs more than compressing
    // a typical payload.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

pub fn compress(body: &[u8]) -> io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(compressor) => compressor,
            None => slot.insert(Compressor::with_prepared_dictionary(&ENCODER)?),
        };
        compressor.compress(body)
    })
}

/// Inflates a stored frame of `len` bytes, with or without the dictionary.
pub fn decompress(frame: &[u8], len: usize) -> io::Result<Vec<u8>> {
    let frame_dictionary = zstd::zstd_safe::get_dict_id_from_frame(frame);
    if frame_dictionary.is_none() {
        return zstd::bulk::decompress(frame, len);
    }
    if frame_dictionary != *DICTIONARY_ID {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("payload compressed with unknown dictionary {frame_dictionary:?}"),
        ));
    }
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(decompressor) => decompressor,
            None => slot.insert(Decompressor::with_prepared_dictionary(&DECODER)?),
        };
        decompressor.decompress(frame, len)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Vec<u8> {
        let pretty = include_bytes!("../../fixtures/push/0.json");
        let value: serde_json::Value = serde_json::from_slice(pretty).unwrap();
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn payloads_round_trip_and_name_the_dictionary() {
        let body = payload();
        let frame = compress(&body).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&frame),
            *DICTIONARY_ID
        );
        assert!(DICTIONARY_ID.is_some());
        assert_eq!(decompress(&frame, body.len()).unwrap(), body);
    }

    #[test]
    fn plain_frames_from_before_the_dictionary_still_decode() {
        let body = payload();
        let plain = zstd::bulk::compress(&body, 3).unwrap();
        assert_eq!(decompress(&plain, body.len()).unwrap(), body);
    }

    #[test]
    fn the_dictionary_pays_for_itself() {
        let body = payload();
        let plain = zstd::bulk::compress(&body, LEVEL).unwrap().len();
        let with_dictionary = compress(&body).unwrap().len();
        assert!(
            with_dictionary * 2 < plain,
            "{with_dictionary} B with the dictionary vs {plain} B plain"
        );
    }
}
